# SPDX-License-Identifier: Apache-2.0
"""The empty-list placeholders: written into empty lists, never read as indicators."""

from __future__ import annotations

from pathlib import Path

import jinja2
import yaml

from pdnssoc_agent.correlate import run_correlate, run_retro
from pdnssoc_agent.correlate.indicators import Matcher, read_list
from pdnssoc_agent.health import collect
from pdnssoc_agent.iocs import lists
from tests.support.correlate import dns_line, make_config, read_alerts
from tests.support.paths import REPO_ROOT as REPO


def _empty_lists(data: Path) -> Path:
    """What fetch-iocs (or the dnscollector role) leaves when MISP has no indicator."""
    cfg = make_config(data)
    corr = cfg.correlation
    corr.malicious_domains_file.parent.mkdir(parents=True)
    corr.malicious_domains_file.write_bytes(lists.render([], lists.DOMAIN_PLACEHOLDER))
    corr.malicious_ips_file.write_bytes(lists.render([], lists.IP_PLACEHOLDER))
    return corr.queries_file


def test_placeholders_never_alert(tmp_path: Path) -> None:
    log = _empty_lists(tmp_path)
    cfg = make_config(tmp_path)
    log.write_bytes(
        dns_line("mapped.example", [("mapped.example", "AAAA", "::ffff:0:0")], qtype="AAAA")
        + dns_line("mapped2.example", [("mapped2.example", "AAAA", "::ffff:0.0.0.0")])
        + dns_line(lists.DOMAIN_PLACEHOLDER)
        + dns_line("x.example", [("x.example", "CNAME", lists.DOMAIN_PLACEHOLDER)])
    )
    assert run_correlate(cfg).alerts == 0
    assert run_retro(cfg, [log]).alerts == 0
    assert read_alerts(cfg) == []


def test_every_reader_skips_them(tmp_path: Path) -> None:
    _empty_lists(tmp_path)
    cfg = make_config(tmp_path)
    corr = cfg.correlation
    m = Matcher()
    m.add_domain_file(corr.malicious_domains_file)
    for v in read_list(corr.malicious_ips_file):
        m.add_network(v)
    assert m.empty
    assert lists.read_values(corr.malicious_domains_file) == []
    assert list(read_list(corr.malicious_domains_file)) == []
    status = collect(cfg)
    assert (status.iocs["domains"], status.iocs["ips"]) == (0, 0)
    corr.malicious_ips_file.write_text("192.0.2.1\n198.51.100.0/24")  # no final newline
    assert collect(cfg).iocs["ips"] == 2


def test_the_role_seeds_the_same_placeholders() -> None:
    """The dnscollector role writes missing lists itself: its values must be the agent's."""
    role_vars = yaml.safe_load((REPO / "roles/dnscollector/vars/main.yml").read_text())
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701 - YAML

    def render(name: str) -> str:
        return env.from_string(role_vars[name]).render(role_vars)

    assert render("_dnscollector_domain_placeholder") == lists.DOMAIN_PLACEHOLDER
    assert render("_dnscollector_ip_placeholder") == lists.IP_PLACEHOLDER
