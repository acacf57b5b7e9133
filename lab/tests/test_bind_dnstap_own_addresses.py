# SPDX-License-Identifier: Apache-2.0
"""The bind_dnstap role's guard against dropping the resolver's own responses.

In ``resolver response`` mode the dnstap "client" of every reply is the resolver host
itself; if ``dnscollector_sensor_drop_query_ips`` covers one of its addresses the sensor
drops all of them. The role's check (roles/bind_dnstap/tasks/own_addresses.yml, part of
its preflight) runs here for real with ansible-playbook on this machine (connection
local, its own facts), the way a sensor's play runs it before it changes anything.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
NO_ADDRESS = "this machine has no address besides loopback"
PLAYBOOK = f"""
- name: The bind_dnstap role's check of the drop list against the host's addresses
  hosts: localhost
  connection: local
  gather_facts: true
  vars:
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  tasks:
    - name: An address of this machine is needed.
      ansible.builtin.assert:
        that: ansible_facts['all_ipv4_addresses'] | length > 0
        fail_msg: {NO_ADDRESS}
    - name: The role's check.
      ansible.builtin.include_role:
        name: bind_dnstap
        tasks_from: own_addresses.yml
"""
# This machine's first IPv4 address, in a /24 as an operator would list a server network.
OWN_NETWORK = "{{ ansible_facts['all_ipv4_addresses'][0] }}/24"


def run(tmp_path: Path, **variables: object) -> subprocess.CompletedProcess[str]:
    playbook = shutil.which("ansible-playbook")
    if playbook is None:
        pytest.skip("ansible-playbook not on PATH (make venv)")
    (tmp_path / "check.yml").write_text(PLAYBOOK)
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(REPO_ROOT / "roles"),
        "ANSIBLE_NOCOLOR": "1",
    }
    check, extra = tmp_path / "check.yml", tmp_path / "vars.json"
    done = subprocess.run(
        [playbook, "-i", "localhost,", str(check), "-e", f"@{extra}"],
        capture_output=True, text=True, env=env, check=False, timeout=300,
    )  # fmt: skip
    if NO_ADDRESS in done.stdout:
        pytest.skip(NO_ADDRESS)
    return done


def test_own_address_in_the_drop_list_stops_the_play_in_resolver_mode(tmp_path: Path) -> None:
    done = run(
        tmp_path,
        bind_dnstap_messages=["resolver response"],
        dnscollector_sensor_drop_query_ips=["127.0.0.0/8", OWN_NETWORK],
    )
    assert done.returncode != 0
    message = " ".join(done.stdout.split())
    assert "dnscollector_sensor_drop_query_ips drops replies to" in message
    assert "bind_dnstap_messages ['resolver response']" in message
    assert "bind_dnstap_accept_dropped_own_responses: true" in message
    assert "/24)" in message  # the network that covers the address is named


RESOLVER = {"bind_dnstap_messages": ["resolver response"]}


@pytest.mark.parametrize(
    "variables",
    [
        pytest.param(
            {**RESOLVER, "bind_dnstap_accept_dropped_own_responses": True,
             "dnscollector_sensor_drop_query_ips": [OWN_NETWORK]},
            id="accepted",
        ),
        pytest.param(
            {"bind_dnstap_messages": ["client response"],
             "dnscollector_sensor_drop_query_ips": [OWN_NETWORK]},
            id="client-responses",
        ),
        pytest.param(
            {**RESOLVER, "dnscollector_sensor_drop_query_ips": ["127.0.0.0/8", "::1/128"]},
            id="default-drop-list",
        ),
        pytest.param(RESOLVER, id="no-collector-in-the-play"),
    ],
)  # fmt: skip
def test_the_check_passes_when_nothing_is_dropped_or_it_was_accepted(
    tmp_path: Path, variables: dict[str, object]
) -> None:
    done = run(tmp_path, **variables)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_bad_drop_list_entry_is_named(tmp_path: Path) -> None:
    done = run(
        tmp_path,
        bind_dnstap_messages=["resolver response"],
        dnscollector_sensor_drop_query_ips=["127.0.0.0/8", "resolver.example"],
    )
    assert done.returncode != 0
    assert "'resolver.example' is not an IP address or network" in done.stdout
