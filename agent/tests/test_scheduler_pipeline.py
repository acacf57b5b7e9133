# SPDX-License-Identifier: Apache-2.0
"""End to end through ``daemonize --once``: MISP -> indicators -> correlation -> delivery.

Every step is the real one: fetch-iocs talks to the MISP stand-in through
PyMISP, correlate reads a go-dnscollector JSON line, alert delivers over SMTP,
a webhook and MISP sightings, and status reads what they left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from misp_standin import MispStandin
from pdnssoc_agent.config import load_config
from pdnssoc_agent.scheduler import read_steps, state_path
from tests.support.alerts import start_receiver, start_smtp

KEY = "pipeline-test-key-0123456789"
DOMAIN = "evil-pipeline.example"


def misp_event(now: int) -> dict[str, object]:
    return {
        "Event": {
            "id": "77",
            "info": "Pipeline <b>test</b> event",
            "uuid": "5f0c1a2b-0000-4000-8000-000000000077",
            "date": "2026-11-01",
            "timestamp": str(now),
            "published": True,
            "Orgc": {"id": "1", "name": "CERT-X"},
            "Tag": [{"name": "tlp:green"}],
            "Attribute": [
                {
                    "id": "7701",
                    "event_id": "77",
                    "category": "Network activity",
                    "type": "domain",
                    "value": DOMAIN,
                    "to_ids": True,
                    "uuid": "6f0c1a2b-0000-4000-8000-000000007701",
                    "timestamp": str(now - 3600),
                    "comment": "C2 <script>x</script>",
                    "deleted": False,
                }
            ],
        }
    }


def collector_line(when: str) -> str:
    return json.dumps(
        {
            "network": {"family": "IPv4", "protocol": "UDP", "query-ip": "192.0.2.44"},
            "dns": {
                "rcode": "NOERROR",
                "qname": f"www.{DOMAIN}",
                "qtype": "A",
                "resource-records": {
                    "an": [
                        {
                            "name": f"www.{DOMAIN}",
                            "rdatatype": "A",
                            "ttl": 60,
                            "rdata": "203.0.113.9",
                        }
                    ],
                    "ns": [],
                    "ar": [],
                },
            },
            "dnstap": {
                "operation": "CLIENT_RESPONSE",
                "identity": "inst-a",
                "timestamp-rfc3339ns": when,
            },
        }
    )


def test_daemonize_once_runs_the_whole_pipeline(tmp_path: Path) -> None:
    now = int(time.time())
    misp = MispStandin(api_keys={KEY: "PDNSSOC"}, events=[misp_event(now)]).start()
    hook = start_receiver()
    smtp = start_smtp("none")
    try:
        config_path = tmp_path / "agent.yml"
        config_path.write_text(
            yaml.safe_dump(
                {
                    "data_dir": str(tmp_path),
                    "misp_servers": [
                        {
                            "domain": misp.url,
                            "name": "labmisp",
                            "api_key_env": "PIPELINE_MISP_KEY",
                            "sightings": {"enabled": True},
                        }
                    ],
                    "fetch_iocs": {"collector_pid_file": str(tmp_path / "collector.pid")},
                    "alerting": {
                        "webhook": {"webhook_url": hook.url()},
                        "email": {
                            "from": "pdnssoc@csirt.example",
                            "summary_to": "soc@csirt.example",
                            "server": "127.0.0.1",
                            "port": smtp.port,
                            "mappings": [{"client_id": "inst-a", "contact": "sec@inst-a.example"}],
                        },
                    },
                }
            )
        )
        cfg = load_config(config_path)
        matches = cfg.correlation.queries_file  # what the server's collector writes
        matches.parent.mkdir(parents=True, exist_ok=True)
        when = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime(now - 60))
        matches.write_text(collector_line(when) + "\n")

        env = {**os.environ, "PIPELINE_MISP_KEY": KEY}
        proc = subprocess.run(
            [sys.executable, "-m", "pdnssoc_agent", "-c", str(config_path), "daemonize", "--once"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )
        records = read_steps(state_path(cfg))
        assert {k: v["outcome"] for k, v in records.items()} == {
            "fetch-iocs": "ok",
            "correlate": "ok",
            "retro": "ok",
            "alert": "ok",
            "retention": "ok",
        }, proc.stderr
        assert proc.returncode == 0, proc.stderr
        assert KEY not in proc.stderr

        (body,) = hook.bodies()
        (alert,) = body["alerts"]
        assert alert["query"]["name"] == f"www.{DOMAIN}"
        assert alert["match"]["indicator"] == DOMAIN
        assert alert["sensor"] == "inst-a"
        assert alert["misp"][0]["server"] == "labmisp"

        assert len(smtp.to("soc@csirt.example")) == 1
        (inst,) = smtp.to("sec@inst-a.example")
        html = inst.get_body(("html",))
        assert html is not None
        assert "&lt;b&gt;test&lt;/b&gt;" in html.get_content()

        (sighting,) = misp.sightings
        assert sighting["value"] == DOMAIN
        assert sighting["source"] == "pdnssoc"

        status = subprocess.run(
            [sys.executable, "-m", "pdnssoc_agent", "-c", str(config_path), "status", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert status.returncode == 0, status.stdout + status.stderr
        data = json.loads(status.stdout)
        assert data["iocs"]["domains"] == 1
        assert all(c["pending"] == 0 for c in data["channels"])
    finally:
        misp.stop()
        hook.stop()
        smtp.stop()
