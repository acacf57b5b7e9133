# SPDX-License-Identifier: Apache-2.0
"""The clickhouse role creates the tables the agent creates, statement for statement."""

from __future__ import annotations

import jinja2
import yaml

from pdnssoc_agent.history.clickhouse.schema import statements
from tests.support.paths import REPO_ROOT


def _flat(sql: str) -> str:
    return " ".join(sql.replace("(", " ( ").replace(")", " ) ").replace(",", " , ").split())


def test_the_roles_statements_are_the_agents() -> None:
    role_vars = yaml.safe_load((REPO_ROOT / "roles/clickhouse/vars/main.yml").read_text())
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701
    context = {"clickhouse_database": "pdnssoc", **role_vars}
    rendered = [
        env.from_string(env.from_string(s).render(context)).render(context)
        for s in role_vars["_clickhouse_statements"]
    ]
    assert [_flat(s) for s in rendered] == [_flat(s) for s in statements("pdnssoc")]
    assert sorted(role_vars["_clickhouse_tables_wanted"]) == [
        "batches", "batches_local", "history", "history_local",
    ]  # fmt: skip
