# SPDX-License-Identifier: Apache-2.0
"""End-to-end checks of the pDNSSOC lab (molecule/default's verifier).

The lab is converged with playbooks/site.yml; this drives it from the
controller the way people use it: a client resolves names through the
institution's resolver (the sensor), the server's collector and agent do their
work, and the results are read where an analyst reads them (alerts file, mail
sink). Faults are injected by stopping real services. Each check prints what
it did and measured; the exit status is non-zero when one fails.

No check sleeps for a fixed time: each waits, with a bound, on the condition
it proves. Where that condition is the agent's next scheduled step (a notice,
a delivery), the check runs the step itself (``Lab.nudge``: the same command
the daemon runs, under the same step lock) instead of waiting for the
daemon's minute; the live checks measure the daemon's own schedule.

    python3 e2e.py PARAMS.json [--only NAME ...]

PARAMS.json (written by verify.yml from the inventory) names the hosts, the
agent's command line, the collector's and agent's supervisor programs, and
each sensor's identity, contact and client mask.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import ipaddress
import json
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from subprocess import CompletedProcess
from typing import Any

LIVE_DEADLINE = 120.0  # the bound: an alert within 2 minutes
# The server's collector stays down this long: twice the sensors' reconnect
# interval (dnscollector_sensor_retry_interval, 10 s), so that each streaming
# sensor loses its connection, fails at least one reconnect and must come back
# by itself. A streaming sensor's silence across the outage check (the
# pre-outage name logged, up to 10 s: two 5 s flushes; the outage, 20 s; the
# reconnect seen, up to 10 s retry + 10 s of flushes + a 2 s probe: about 45 s,
# at most 52 s) stays under the silent-sensor threshold (1 minute), so that no
# operator is told: silent-sensor proves the notice itself.
OUTAGE = 20.0
# A streaming sensor reconnects by itself within this after the collector's restart.
RECONNECT_WAIT = 120.0
# What the agent may add to the silence the outage check bounds: a record's time
# stamp is read to the second, and the alert step runs just after correlate.
NOTICE_SLACK = 5.0
SILENT_MARGIN = 120.0  # the bound: a silent-sensor notice within threshold + 2 minutes
NOTICE = re.compile(r"\bsensor (?P<sensor>\S+) (?P<what>is silent|sends again)$")


class CheckFailedError(Exception):
    """A check's expectation was not met."""


PODMAN = shutil.which("podman") or "/usr/bin/podman"


def podman(*args: str, stdin: str | None = None, timeout: float = 300) -> CompletedProcess[str]:
    """Run podman on the controller (the lab's hosts are its containers)."""
    return subprocess.run(  # noqa: S603 (fixed program; arguments built by this script)
        [PODMAN, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Lab:
    params: dict[str, Any]
    figures: dict[str, str] = field(default_factory=dict)
    token: str = field(default_factory=lambda: secrets.token_hex(3))
    resolved: dict[str, float] = field(default_factory=dict)
    notice_mark: set[str] = field(default_factory=set)
    """Silent-sensor notices in the operators' mailbox before the checks began."""
    notices_expected: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(sensor, "is silent" or "sends again") -> notices the checks caused and saw."""
    spans: list[tuple[str, float, float]] = field(default_factory=list)
    """(check, wall-clock start, end) of each check run so far."""
    late_fetch: tuple[float, float] | None = None
    """Wall-clock start and end of the fetch-iocs run that took in the late event."""

    # -- hosts ---------------------------------------------------------------------------
    def sh(self, host: str, command: str, *, check: bool = True, timeout: float = 300) -> str:
        """Run ``command`` with sh on a lab host; return its stdout."""
        proc = podman("exec", host, "sh", "-c", command, timeout=timeout)
        if check and proc.returncode != 0:
            raise CheckFailedError(
                f"{host}: `{command}` exited {proc.returncode}: {proc.stderr.strip()[-800:]}"
            )
        return proc.stdout

    @property
    def server(self) -> str:
        return str(self.params["server"]["host"])

    @property
    def data_dir(self) -> str:
        return str(self.params["server"]["data_dir"])

    def agent(self, *args: str, check: bool = True, timeout: float = 600) -> tuple[int, str]:
        """Run a pdnssoc-agent subcommand on the server as its service user."""
        cmd = " ".join(shlex.quote(a) for a in [*self.params["server"]["agent_cmd"], *args])
        proc = podman("exec", self.server, "sh", "-c", cmd + " 2>&1", timeout=timeout)
        if check and proc.returncode != 0:
            raise CheckFailedError(
                f"pdnssoc-agent {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-1500:]}"
            )
        return proc.returncode, proc.stdout

    def nudge(self, *steps: str) -> None:
        """Run agent steps now (e.g. correlate, alert) rather than wait for the
        daemon's schedule; a step the daemon is running (exit 6) is skipped."""
        for step in steps:
            self.agent(step, check=False, timeout=300)

    def status(self) -> dict[str, Any]:
        """The agent's ``status --json``."""
        _rc, out = self.agent("status", "--json", check=False)
        try:
            return dict(json.loads(out[out.index("{") :]))
        except ValueError as exc:
            raise CheckFailedError(f"pdnssoc-agent status --json: {out[-500:]!r}") from exc

    def channel(self, name: str) -> dict[str, Any]:
        """The delivery channel ``name`` as status shows it ({} before its first alert)."""
        found = [c for c in self.status().get("channels", []) if c["channel"] == name]
        return dict(found[0]) if found else {}

    def supervisorctl(self, host: str, *args: str) -> str:
        return self.sh(host, "supervisorctl " + " ".join(shlex.quote(a) for a in args), check=False)

    # -- DNS -----------------------------------------------------------------------------
    def resolve(self, names: Iterable[str], sensor: dict[str, Any] | None = None) -> None:
        """The client resolves each name through the sensor (one dig batch)."""
        sensor = sensor or self.params["sensors"][0]
        names = list(names)
        if not names:
            return
        batch = "\n".join(names) + "\n"
        cmd = (
            f"cat > /tmp/e2e-batch && dig +time=5 +tries=2 +noall +answer "
            f"@{sensor['address']} -f /tmp/e2e-batch"
        )
        proc = podman(
            "exec",
            "-i",
            self.params["client"],
            "sh",
            "-c",
            cmd,
            stdin=batch,
            timeout=60 + 3 * len(names),
        )
        if proc.returncode != 0:
            raise CheckFailedError(f"dig on the client failed: {proc.stderr.strip()[-500:]}")

    def resolve_once(self, names: Iterable[str]) -> float:
        """Resolve the names not resolved yet (checks share a first batch); when they were."""
        todo = [n for n in names if n not in self.resolved]
        if todo:
            self.resolve(todo)
            for n in todo:
                self.resolved[n] = time.monotonic()
        return min(self.resolved[n] for n in names)

    def client_address(self) -> str:
        out = podman(
            "inspect", "--format", "{{json .NetworkSettings.Networks}}", self.params["client"]
        ).stdout
        networks = json.loads(out)
        return str(next(iter(networks.values()))["IPAddress"])

    # -- what the server holds ------------------------------------------------------------
    def alert_lines(self) -> list[dict[str, Any]]:
        raw = self.sh(self.server, f"cat {self.data_dir}/alerts/matches.json 2>/dev/null || true")
        out = []
        for line in raw.splitlines():
            if line.strip():
                out.append(json.loads(line))
        return out

    def alerts(self) -> dict[str, dict[str, Any]]:
        """Alerts by id, each at its highest revision."""
        latest: dict[str, dict[str, Any]] = {}
        for alert in self.alert_lines():
            old = latest.get(alert["id"])
            if old is None or alert["revision"] > old["revision"]:
                latest[alert["id"]] = alert
        return latest

    def alerts_for(self, name: str) -> list[dict[str, Any]]:
        return [a for a in self.alerts().values() if a["query"]["name"].rstrip(".") == name]

    def logged_names(self, names: set[str]) -> set[str]:
        """Which of ``names`` the server's collector wrote to its query log or archive."""
        raw = self.sh(
            self.server,
            f"cd {self.data_dir} && find . \\( -name 'queries*' -o -path './archive/*' \\) "
            f"-type f -print0 | xargs -0 -r zcat -f 2>/dev/null "
            f'| grep -Eo \'"qname": ?"[^"]*\' | grep -F {self.token} || true',
        )
        seen = set()
        for line in raw.splitlines():
            qname = line.split('"')[-1].rstrip(".").lower()
            if qname in names:
                seen.add(qname)
        return seen

    def mails(self) -> list[dict[str, Any]]:
        raw = self.sh(
            self.params["mail"],
            "python3 /opt/pdnssoc-lab/sinks/mailsink.py list --dir /var/lib/mailsink --json",
        )
        return [json.loads(line) for line in raw.splitlines() if line.strip()]

    def webhooks(self) -> list[dict[str, Any]]:
        """What the generic webhook sink received: each POST's JSON body."""
        raw = self.sh(
            self.params["mail"],
            "python3 /opt/pdnssoc-lab/sinks/webhooksink.py list --dir /var/lib/webhooksink",
        )
        out = []
        for line in raw.splitlines():
            if line.strip():
                with contextlib.suppress(ValueError):
                    out.append(json.loads(json.loads(line)["body"]))
        return out

    def notices(self) -> list[tuple[str, str, str]]:
        """(mail file, sensor, "is silent" or "sends again") of each silent-sensor
        notice in the operators' mailbox (alerting.email.summary_to)."""
        operators = str(self.params["server"]["operators_mail"])
        out = []
        for mail in self.mails():
            found = NOTICE.search(mail["subject"])
            if found and operators in mail["envelope_to"]:
                out.append((mail["file"], found["sensor"], found["what"]))
        return out

    def notice_lines(self, mark: set[str]) -> list[str]:
        """Each notice not in ``mark``: when the mail sink took it (its file's
        name is the epoch in ns), during which check, its subject and its
        first line (the sensor's newest reply, its silence, its threshold)."""
        operators = str(self.params["server"]["operators_mail"])
        out = []
        for mail in self.mails():
            found = NOTICE.search(mail["subject"])
            if not found or operators not in mail["envelope_to"] or mail["file"] in mark:
                continue
            with contextlib.suppress(ValueError):
                at = int(mail["file"].rsplit("/", 1)[-1].split("-")[0]) / 1e9
                during = [c for c, t0, t1 in self.spans if t0 <= at <= t1 + 1]
                when = time.strftime("%H:%M:%S", time.localtime(at))
                where = f"during {during[-1]}" if during else "between checks"
                first = (mail["body"].strip().splitlines() or [""])[0]
                out.append(f"{when} ({where}): {mail['subject']}: {first}")
                continue
            out.append(f"{mail['file']}: {mail['subject']}")
        return out

    def new_notices(self, mark: set[str]) -> list[tuple[str, str]]:
        """(sensor, what) of the notices not in ``mark`` (mail files seen before)."""
        return [(sensor, what) for f, sensor, what in self.notices() if f not in mark]

    def wait(self, what: str, probe: Callable[[], Any], timeout: float, step: float = 3) -> Any:
        start = time.monotonic()
        while True:
            result = probe()
            if result:
                print(f"    {what}: after {time.monotonic() - start:.0f} s")
                return result
            if time.monotonic() - start > timeout:
                raise CheckFailedError(f"{what}: not within {timeout:.0f} s")
            time.sleep(step)


# -- the checks ---------------------------------------------------------------------------


def live_name(lab: Lab) -> str:
    # A benign-looking name whose address is an indicator: unique per run, so
    # a fresh cache miss and a fresh alert.
    return f"live-{lab.token}.campus-cdn.test"


def kind_cases(lab: Lab) -> dict[str, tuple[str, str]]:
    return {
        "evil.example": ("exact", "evil.example"),
        "files.sharehost.test": ("cidr", "203.0.113.0/28"),
    }


def gap_cases(lab: Lab) -> dict[str, tuple[str, str]]:
    return {
        f"kind-{lab.token}.c2.badcorp.test": ("subdomain", "c2.badcorp.test"),
        "mail.partner-univ.test": ("cname", "evil.example"),
    }


def benign_names(lab: Lab) -> list[str]:
    return [f"b{i}-{lab.token}.load.univ-a.test" for i in range(5)] + [
        "www.univ-a.test",
        "library.univ-a.test",
        "portal.univ-a.test",
        "news.research.test",
    ]


def marker(lab: Lab, what: str) -> str:
    """A name that alerts (IP match), resolved after the names of a check."""
    return f"{what}-marker-{lab.token}.campus-cdn.test"


def prime(lab: Lab) -> None:
    """Resolve the names of the first checks in one batch: they then wait together."""
    lab.resolve_once(
        [
            *benign_names(lab),
            *kind_cases(lab),
            *gap_cases(lab),
            live_name(lab),
            marker(lab, "benign"),
            marker(lab, "kinds"),
            marker(lab, "gaps"),
        ]
    )
    resolve_other_live(lab)


def masked_client(lab: Lab, sensor: dict[str, Any]) -> tuple[str, str]:
    """The workstation's address and the alert's client for a lookup it made
    through ``sensor``: that address masked as the sensor masks it, or, for a
    dnstap sensor in the default capture mode (resolver responses only), the
    address the resolver reports for itself (Unbound: its outgoing socket,
    0.0.0.0)."""
    client = lab.client_address()
    if sensor["input"] == "dnstap" and "client response" not in sensor["messages"]:
        if sensor["resolver"] != "unbound":
            raise CheckFailedError(
                f"{sensor['host']}: no expected client for {sensor['resolver']} "
                f"with {sensor['messages']}"
            )
        return client, str(ipaddress.IPv4Address(0))
    net = ipaddress.ip_network(f"{client}/{sensor['mask_v4']}", strict=False)
    return client, str(net.network_address)


def live_alert_from(lab: Lab, sensor: dict[str, Any], name: str, t0: float) -> dict[str, Any]:
    """Wait for the live alert for ``name`` (resolved through ``sensor`` at ``t0``)
    and check it: kind live, the sensor's identity, the masked client, the
    indicator 198.51.100.66 with its MISP event; then the e-mail to the
    sensor's contact. Every alert for the name must say the same."""
    found = lab.wait(f"alert for {name}", lambda: lab.alerts_for(name), LIVE_DEADLINE)
    where = sensor["identity"]
    lab.figures[f"live alert latency, {where} (resolution to alert line)"] = (
        f"{time.monotonic() - t0:.0f} s"
    )
    client, masked = masked_client(lab, sensor)
    for alert in found:
        if alert["kind"] != "live":
            raise CheckFailedError(f"kind is {alert['kind']!r}, not 'live'")
        if alert["sensor"] != where:
            raise CheckFailedError(f"sensor is {alert['sensor']!r}, expected {where!r}")
        if alert["client"] != masked:
            raise CheckFailedError(
                f"client is {alert['client']!r}, expected {client} masked: {masked!r}"
            )
        if alert["match"]["how"] != "ip" or alert["match"]["indicator"] != "198.51.100.66":
            raise CheckFailedError(f"match is {alert['match']}, expected ip 198.51.100.66")
        infos = [str(c.get("event_info", "")) for c in alert["misp"]]
        if not any("Phishing kit" in i for i in infos):
            raise CheckFailedError(f"MISP context lacks the event: {alert['misp']}")
    alert = found[0]
    print(
        f"    alert: sensor={alert['sensor']} client={alert['client']} (client {client}) "
        f"match={alert['match']['how']}:{alert['match']['indicator']} "
        f"misp={[c.get('event_info') for c in alert['misp']]}"
        + (f" ({len(found)} alerts, all alike)" if len(found) > 1 else "")
    )

    def mail_for_contact() -> list[dict[str, Any]]:
        return [
            m for m in lab.mails() if sensor["contact"] in m["envelope_to"] and name in m["body"]
        ]

    mail = lab.wait(f"e-mail to {sensor['contact']}", mail_for_contact, LIVE_DEADLINE)[0]
    lab.figures[f"live alert latency, {where} (resolution to e-mail)"] = (
        f"{time.monotonic() - t0:.0f} s"
    )
    print(f"    mail: to={mail['envelope_to']} subject={mail['subject']!r}")
    return dict(alert)


def check_live_alert(lab: Lab) -> None:
    """A malicious name -> alert within 2 min (sensor, masked client, MISP) and an e-mail."""
    name = live_name(lab)
    t0 = lab.resolve_once([name])
    alert = live_alert_from(lab, lab.params["sensors"][0], name, t0)

    def webhook_for_alert() -> list[dict[str, Any]]:
        return [
            a
            for body in lab.webhooks()
            for a in body.get("alerts", [])
            if a.get("query", {}).get("name") == name and a.get("id") == alert["id"]
        ]

    hook = lab.wait(f"webhook with the alert for {name}", webhook_for_alert, LIVE_DEADLINE)[0]
    print(f"    webhook: alert {hook['id']} ({hook['match']['how']}) posted to the generic webhook")


def other_live_sensors(lab: Lab) -> list[dict[str, Any]]:
    """The streaming sensors after the first: other resolvers, other capture (sniffing)."""
    return [s for s in lab.params["sensors"][1:] if s["transport"] == "stream"]


def other_live_name(lab: Lab, sensor: dict[str, Any]) -> str:
    return f"live-{sensor['identity']}-{lab.token}.campus-cdn.test"


def resolve_other_live(lab: Lab) -> None:
    """Resolve each other sensor's live name through it, once a run."""
    for sensor in other_live_sensors(lab):
        name = other_live_name(lab, sensor)
        if name not in lab.resolved:
            lab.resolve([name], sensor)
            lab.resolved[name] = time.monotonic()


def check_live_other_resolvers(lab: Lab) -> None:
    """The same live alert through each other streaming sensor (Unbound's dnstap in
    the default capture mode, the sniffed resolver): its identity, the client
    as that mode tells it, e-mail to its own contact."""
    sensors = other_live_sensors(lab)
    if not sensors:
        raise CheckFailedError("the lab has one streaming sensor only: nothing to check")
    resolve_other_live(lab)
    for sensor in sensors:
        name = other_live_name(lab, sensor)
        print(
            f"    {sensor['identity']} ({sensor['resolver']}, collector input {sensor['input']}, "
            f"{', '.join(sensor['messages']) if sensor['input'] == 'dnstap' else 'sniffed'}):"
        )
        live_alert_from(lab, sensor, name, lab.resolved[name])


def _check_kinds(lab: Lab, cases: dict[str, tuple[str, str]], mark: str) -> None:
    lab.resolve_once([*cases, mark])
    # The marker is resolved last: once it has alerted, the others were read.
    lab.wait(f"alert for the marker {mark}", lambda: lab.alerts_for(mark), LIVE_DEADLINE)
    time.sleep(5)
    problems = []
    for name, (how, indicator) in cases.items():
        found = lab.alerts_for(name)
        if not found:
            problems.append(f"{name}: no alert (expected {how} on {indicator})")
            continue
        got = (found[0]["match"]["how"], found[0]["match"]["indicator"])
        if got != (how, indicator):
            problems.append(f"{name}: {got}, expected {(how, indicator)}")
        else:
            print(f"    {name}: {how} on {indicator}")
    if problems:
        raise CheckFailedError("; ".join(problems))


def check_match_kinds(lab: Lab) -> None:
    """Exact and CIDR matches each alert, with the right kind."""
    _check_kinds(lab, kind_cases(lab), marker(lab, "kinds"))


def check_subdomain_cname(lab: Lab) -> None:
    """Subdomain and CNAME-chain matches alert live, with the right kind."""
    _check_kinds(lab, gap_cases(lab), marker(lab, "gaps"))


def check_benign_silent(lab: Lab) -> None:
    """Benign names produce no alert and no match line (but are logged)."""
    names = benign_names(lab)
    mark = marker(lab, "benign")
    lab.resolve_once([*names, mark])
    # Once the malicious marker resolved after them has alerted, correlation has
    # read past the benign replies.
    lab.wait(f"alert for the marker {mark}", lambda: lab.alerts_for(mark), LIVE_DEADLINE)
    unique = {n for n in names if lab.token in n}
    logged = lab.wait("benign replies in the query log", lambda: lab.logged_names(unique), 60)
    alerted = [n for n in names if lab.alerts_for(n)]
    if alerted:
        raise CheckFailedError(f"benign names alerted: {alerted}")
    matches = lab.sh(lab.server, f"cat {lab.data_dir}/matches/*.json 2>/dev/null || true")
    leaked = [n for n in names if n in matches]
    if leaked:
        raise CheckFailedError(f"benign names reached the matches files: {leaked}")
    print(f"    {len(names)} benign names: no alert, no match line; {len(logged)} seen in the log")


def check_retro(lab: Lab) -> None:
    """An IOC published after the resolution is found by retro, marked retro."""
    name = f"r-{lab.token}.late-intel.test"
    lab.resolve([name])
    lab.wait(f"{name} in the query log", lambda: lab.logged_names({name}), 60)
    if lab.alerts_for(name):
        raise CheckFailedError(f"{name} alerted before its IOC was published")
    publish_late_intel(lab)
    lab.agent("retro")
    # Live correlation may also find it, if it had not read the line before the
    # fetch; retro must find it either way.
    alerts = [a for a in lab.alerts_for(name) if a["kind"] == "retro"]
    if not alerts:
        kinds = [a["kind"] for a in lab.alerts_for(name)]
        raise CheckFailedError(f"retro found no alert for {name} (alerts of kind {kinds})")
    alert = alerts[0]
    if not alert.get("ioc_added"):
        raise CheckFailedError("a retro alert must carry ioc_added")
    print(
        f"    retro alert: {name} first_seen={alert['first_seen']} ioc_added={alert['ioc_added']}"
    )
    withdraw_late_intel(lab)


def publish_late_intel(lab: Lab) -> tuple[float, float]:
    """Publish the late event (late-intel.test) at the MISP stand-in and run
    fetch-iocs, once a run (retro and rpz-log-only share it); when the fetch
    started and ended (wall clock, as the hosts' logs count)."""
    if lab.late_fetch is None:
        misp = lab.params["misp"]
        lab.sh(
            misp["host"],
            f"python3 {misp['stamp']} {misp['events_dir']} {misp['later_dir']}/*.json"
            f" && chown -R root:misp {misp['events_dir']}",
        )
        start = time.time()
        lab.agent("fetch-iocs")
        lab.late_fetch = (start, time.time())
    return lab.late_fetch


def withdraw_late_intel(lab: Lab) -> None:
    """Take the late event off the stand-in (the next fetch drops its indicator)."""
    misp = lab.params["misp"]
    lab.sh(misp["host"], f"rm -f {misp['events_dir']}/1003-*.json")


RPZ_LISTED = "late-intel.test"  # the late event's indicator (lab/events/retro/)
RPZ_ANSWER = "192.168.66.7"  # the lab's answer for it and every name below (lab/dns/db.test.j2)
RPZ_TRANSFER = 120.0  # build, NOTIFY and transfer: seconds, generously
# BIND applies a new version of a policy zone at most once a minute
# (min-update-interval): the first hit may come that long after the transfer.
RPZ_APPLY = 150.0


def rpz_serial(lab: Lab, host: str, zone: str) -> int | None:
    """The serial of ``zone`` that named on ``host`` serves; None when it has no such zone."""
    proc = podman("exec", host, "rndc", "zonestatus", zone, timeout=30)
    found = re.search(r"^serial: (\d+)$", proc.stdout, re.M)
    return int(found[1]) if proc.returncode == 0 and found else None


def rpz_ask(lab: Lab, sensor: dict[str, Any], name: str) -> tuple[str, list[tuple[str, str]]]:
    """The client asks the sensor's resolver for ``name`` (A): status and (type, data) answers."""
    out = lab.sh(
        lab.params["client"],
        f"dig +time=5 +tries=2 +noall +comments +answer @{sensor['address']} {name} A",
    )
    status = re.search(r"status: (\w+)", out)
    answers = []
    for line in out.splitlines():
        fields = line.split()
        if fields and not line.startswith(";") and len(fields) >= 5:
            answers.append((fields[3], fields[4]))
    return (status[1] if status else "no answer"), answers


def rpz_hits(lab: Lab, sensor: dict[str, Any], name: str, zone: str) -> list[str]:
    """Log-only hits (BIND's rpz category) for ``name`` via ``zone`` in the resolver's journal."""
    out = lab.sh(
        sensor["host"],
        f"journalctl -u named --no-pager -o cat --since -15min | grep -F {shlex.quote(name + '/')}"
        " || true",
    )
    return [
        line
        for line in out.splitlines()
        if "disabled rpz" in line and f" {name}/A/IN " in line and line.rstrip().endswith(zone)
    ]


def rpz_transfer_log(lab: Lab, sensor: dict[str, Any], zone: str, serial: int) -> dict[str, Any]:
    """What the resolver logged of ``serial``: when the NOTIFY for it came and
    when the transfer ended (wall clock), and how many records it carried."""
    out = lab.sh(
        sensor["host"],
        "journalctl -u named --no-pager -o short-unix --since -30min"
        f" | grep -F {shlex.quote(zone)} || true",
    )
    found: dict[str, Any] = {}
    for line in out.splitlines():
        stamp = line.split(maxsplit=1)[0]
        if "notify from " in line and line.endswith(f": serial {serial}"):
            found.setdefault("notify", float(stamp))
        done = re.search(rf"Transfer completed: .*?(\d+) records.*\(serial {serial}\)$", line)
        if done:
            found.setdefault("transferred", float(stamp))
            found.setdefault("records", int(done[1]))
    return found


def check_rpz_log_only(lab: Lab) -> None:
    """The institution in log-only mode gets the zone by NOTIFY/transfer after a fetch,
    answers a listed name normally and logs the hit; the other one has no zone."""
    subscribed = [s for s in lab.params["sensors"] if s.get("rpz_mode") == "log"]
    others = [
        s
        for s in lab.params["sensors"]
        if s.get("rpz_mode", "off") == "off" and s.get("resolver", "bind") == "bind"
    ]
    if not subscribed or not others:
        raise CheckFailedError(
            "needs one sensor with bind_dnstap_rpz_mode: log and one not subscribed; "
            f"modes: {[(s['host'], s.get('rpz_mode')) for s in lab.params['sensors']]}"
        )
    sensor, zone = subscribed[0], subscribed[0]["rpz_zone"]
    _rpz_daemon_tells_named(lab)
    fetch = publish_late_intel(lab)
    _rpz_transferred(lab, sensor, zone, fetch)
    _rpz_logged_not_rewritten(lab, sensor, zone)
    for other in others:
        if rpz_serial(lab, other["host"], zone) is not None:
            raise CheckFailedError(f"{other['host']} (not subscribed) serves {zone}")
        if "response-policy" in lab.sh(other["host"], "named-checkconf -p"):
            raise CheckFailedError(f"{other['host']} (not subscribed) has a response-policy")
        print(f"    {other['host']}: no {zone}, no response-policy")
    withdraw_late_intel(lab)


def _rpz_daemon_tells_named(lab: Lab) -> None:
    """The agent's daemon runs in group bind: its own fetch-iocs runs may run
    `rndc reload` (a process keeps the groups it was started with)."""
    program = lab.params["server"]["agent_program"]
    pid = lab.sh(lab.server, f"supervisorctl pid {shlex.quote(program)}").strip()
    gid = lab.sh(lab.server, "getent group bind | cut -d: -f3").strip()
    groups = lab.sh(lab.server, f"grep '^Groups:' /proc/{int(pid)}/status").split()[1:]
    if gid not in groups:
        raise CheckFailedError(
            f"the agent's daemon (pid {pid}) runs without group bind ({gid}), groups {groups}: "
            "its builds cannot run rndc reload"
        )


def _rpz_transferred(
    lab: Lab, sensor: dict[str, Any], zone: str, fetch: tuple[float, float]
) -> None:
    """The primary serves the zone the fetch built; the resolver got its serial."""
    primary = rpz_serial(lab, lab.server, zone)
    if primary is None:
        raise CheckFailedError(f"the server's named does not serve {zone}")
    _rc, out = lab.agent("status", "--json", check=False)
    built = [z for z in json.loads(out[out.index("{") :]).get("rpz", []) if z["zone"] == zone]
    if not built or built[0].get("serial") != primary or built[0].get("reload_pending"):
        raise CheckFailedError(f"the agent's last build of {zone}: {built}; primary at {primary}")
    lab.wait(
        f"{sensor['host']} serves {zone} at the primary's serial {primary}",
        lambda: rpz_serial(lab, sensor["host"], zone) == primary,
        RPZ_TRANSFER,
    )
    logged = rpz_transfer_log(lab, sensor, zone, primary)
    if "notify" not in logged or "transferred" not in logged:
        raise CheckFailedError(
            f"{sensor['host']} logged no NOTIFY and transfer of serial {primary}: {logged}"
        )
    if logged["transferred"] >= fetch[0]:
        lab.figures[f"RPZ: fetch-iocs start to the serial at {sensor['identity']}"] = (
            f"{logged['transferred'] - fetch[0]:.1f} s (fetch-iocs itself "
            f"{fetch[1] - fetch[0]:.1f} s; NOTIFY, then {logged['records']} records transferred)"
        )
    listed = lab.sh(sensor["host"], f"dig +short @127.0.0.1 {RPZ_LISTED}.{zone} CNAME").split()
    if listed != ["."]:
        raise CheckFailedError(f"{RPZ_LISTED} is not in {zone} at {sensor['host']}: {listed}")
    print(f"    {zone}: serial {primary} at the server and at {sensor['host']}; lists {RPZ_LISTED}")


def _rpz_logged_not_rewritten(lab: Lab, sensor: dict[str, Any], zone: str) -> None:
    """A listed name (a fresh one under the indicator each time) answers normally;
    the hit is logged once BIND applies the new version; the indicator itself too."""

    def normal(name: str) -> None:
        status, answers = rpz_ask(lab, sensor, name)
        if status != "NOERROR" or answers != [("A", RPZ_ANSWER)]:
            raise CheckFailedError(
                f"{name} at {sensor['host']}: {status} {answers}, expected NOERROR A "
                f"{RPZ_ANSWER} (log-only must not rewrite)"
            )

    start = time.monotonic()
    n = 0
    while True:
        name = f"rpz{n}-{lab.token}.{RPZ_LISTED}"
        normal(name)
        time.sleep(1)
        hits = rpz_hits(lab, sensor, name, zone)
        if hits:
            break
        if time.monotonic() - start > RPZ_APPLY:
            raise CheckFailedError(f"no rpz hit logged at {sensor['host']} for {name}")
        n += 1
        time.sleep(5)
    lab.figures[f"RPZ: first hit logged at {sensor['identity']}, from the first question"] = (
        f"at most {time.monotonic() - start:.0f} s ({n + 1} names asked)"
    )
    normal(RPZ_LISTED)
    time.sleep(1)
    if not rpz_hits(lab, sensor, RPZ_LISTED, zone):
        raise CheckFailedError(f"no rpz hit logged at {sensor['host']} for {RPZ_LISTED}")
    print(f"    {name} and {RPZ_LISTED}: NOERROR A {RPZ_ANSWER}; logged: {hits[0]!r}")


SPOOL_FILL = 2000  # large-answer replies: more than one 1 MB spool file (about 1,300 a file)
SPOOL_WAIT = 240.0  # a spooled reply reaches the server: ship interval + ingestion, generously


def load_name(sensor: dict[str, Any], label: str, token: str) -> str:
    """A unique name under the sensor's institution (a cache miss on its resolver)."""
    return f"{label}-{token}.load.{sensor['identity']}.test"


def fill_spool(lab: Lab, sensor: dict[str, Any]) -> None:
    """Close the sensor's current spool file: the collector rotates it only by size.

    go-dnscollector 0.38's file logger has no time-based rotation, so a
    spooled reply leaves the sensor once enough replies came after it. The
    client resolves a burst of unique names with large TXT answers (one dig
    batch); their own token keeps them out of the checks' name lookups.
    """
    burst = secrets.token_hex(4)
    names = [f"f{i}-{burst}.bulk.{sensor['identity']}.test TXT" for i in range(SPOOL_FILL)]
    t0 = time.monotonic()
    proc = podman(
        "exec",
        "-i",
        lab.params["client"],
        "sh",
        "-c",
        "cat > /tmp/e2e-fill && dig +time=5 +tries=2 +short "
        f"@{sensor['address']} -f /tmp/e2e-fill >/dev/null",
        stdin="\n".join(names) + "\n",
        timeout=600,
    )
    if proc.returncode != 0:
        raise CheckFailedError(f"dig burst on the client failed: {proc.stderr.strip()[-500:]}")
    print(
        f"    {sensor['host']}: {SPOOL_FILL} large replies resolved in "
        f"{time.monotonic() - t0:.0f} s to close the spool file"
    )


def check_collector_outage(lab: Lab) -> None:
    """Server collector down 20 s while sensors resolve: reconnect, count loss (spool: none).

    Proves that each streaming sensor, having lost its connection and failed
    to reconnect, comes back by itself (its replies reach the server again),
    and counts what it lost; that store-and-forward loses nothing; and that an
    outage shorter than the silent-sensor threshold tells no operator.

    The agent announces a sensor whose newest reply is older than its
    threshold. Across the outage, a streaming sensor's silence is bounded by
    its last reply that reached the server before the stop and its first after
    the reconnect; both ends are taken here, not left to the workstation's
    background lookups (one every 10 s, and the last ones before the stop may
    be lost with the connection): each streaming sensor's name is resolved
    last before the stop (the stop follows once it is logged), the outage ends
    at its deadline, and each one is resolved through from the collector's
    restart on. The bound (pre-outage name resolved to reconnect seen) must
    stay under a fixed threshold by NOTICE_SLACK, or the check could itself
    make that sensor look silent.
    """
    program = lab.params["server"]["collector_program"]
    sensors = lab.params["sensors"]
    streams = [s for s in sensors if s["transport"] != "spool"]
    mark = {f for f, _, _ in lab.notices()}
    for sensor in [s for s in sensors if s["transport"] == "spool"]:
        names_before = {load_name(sensor, "pre", lab.token)}
        lab.resolve(names_before, sensor)
        fill_spool(lab, sensor)
        lab.wait(
            f"{sensor['host']} (spool): replies reach the server before the outage",
            functools.partial(lab.logged_names, names_before),
            SPOOL_WAIT,
        )
    # The streaming sensors last, all at once, and the stop right after: each
    # one's newest reply on the server is at most this wait old at the stop.
    resolved: dict[str, float] = {}
    for sensor in streams:
        resolved[sensor["host"]] = time.monotonic()
        lab.resolve([load_name(sensor, "pre", lab.token)], sensor)
    pre = {load_name(s, "pre", lab.token) for s in streams}
    lab.wait(
        "streaming sensors: replies reach the server before the outage",
        lambda: lab.logged_names(pre) == pre,
        60,
        step=1,
    )
    out = lab.supervisorctl(lab.server, "stop", program)
    stopped = time.monotonic()
    print(
        f"    server collector stopped {stopped - min(resolved.values(), default=stopped):.0f} s "
        f"after the streaming sensors' last names: {out.strip()}"
    )
    sent: dict[str, list[str]] = {s["host"]: [] for s in sensors}
    deadline = stopped + OUTAGE
    i = 0
    while time.monotonic() < deadline:
        for sensor in sensors:
            if time.monotonic() >= deadline:
                break  # the outage ends on time, not after a last round
            name = load_name(sensor, f"o{i}", lab.token)
            lab.resolve([name], sensor)
            sent[sensor["host"]].append(name)
        i += 1
        time.sleep(max(0.0, min(stopped + i * 2.0, deadline) - time.monotonic()))
    starting = time.monotonic()
    out = lab.supervisorctl(lab.server, "start", program)
    back = time.monotonic()
    # supervisorctl start returns once the program has run for its startsecs.
    lab.figures[f"collector outage (planned {OUTAGE:.0f} s)"] = (
        f"{starting - stopped:.0f} s to the start command, {back - stopped:.0f} s to RUNNING"
    )
    print(
        f"    server collector started again: start command after {starting - stopped:.0f} s, "
        f"running after {back - stopped:.0f} s: {out.strip()}"
    )
    seen = _wait_reconnected(lab, streams, back)
    _silence_budget(lab, streams, resolved, seen)
    failures: list[str] = []
    for sensor in sensors:
        lost = _outage_arrivals(lab, sensor, set(sent[sensor["host"]]))
        if sensor["transport"] != "stream" and lost:
            failures.append(f"{sensor['host']}: store-and-forward lost {lost} replies")
    try:
        _outage_notices(lab, mark)
    except CheckFailedError as exc:
        failures.append(str(exc))
    if failures:
        raise CheckFailedError("; ".join(failures))


def _silence_budget(
    lab: Lab, streams: list[dict[str, Any]], resolved: dict[str, float], seen: dict[str, float]
) -> None:
    """Each streaming sensor's longest silence the agent could see across the
    outage: from its pre-outage name (resolved, then logged before the stop;
    less a second, the time stamp's fraction) to its first name logged after
    the reconnect. A figure, not a verdict: the bound counts the polling of the
    server's log too, so it overstates the silence the agent sees; within
    NOTICE_SLACK of a sensor's fixed threshold it is flagged, and whether the
    sensor was announced is what `operator-notices` asserts (listing each
    notice with the check that was running)."""
    interval = float(lab.params["server"]["alert_interval_s"])
    for sensor in streams:
        host = sensor["host"]
        bound = seen[host] - resolved[host] + 1.0
        limit = silent_after(lab, sensor)
        if limit is None or limit + interval <= OUTAGE:
            lab.figures[f"silence across the outage, at most ({host})"] = f"{bound:.0f} s"
            continue
        lab.figures[f"silence across the outage, at most ({sensor['identity']}, {host})"] = (
            f"{bound:.0f} s (threshold {limit:.0f} s)"
        )
        print(
            f"    {sensor['identity']}: silent at most {bound:.0f} s across the outage "
            f"(threshold {limit:.0f} s, budget {limit - NOTICE_SLACK:.0f} s)"
        )
        if bound > limit - NOTICE_SLACK:
            print(
                f"    NOTE: {sensor['identity']} silent up to {bound:.0f} s across the outage, "
                f"within {NOTICE_SLACK:.0f} s of its threshold {limit:.0f} s: the outage may "
                "have it announced (operator-notices tells)"
            )


def silent_after(lab: Lab, sensor: dict[str, Any]) -> float | None:
    """The sensor's fixed silent-sensor threshold in seconds
    (``sensors.overrides.<identity>.silent_after``); None when it is never
    announced or its threshold is derived from its history."""
    cfg = lab.params["server"].get("sensors") or {}
    rule = (cfg.get("overrides") or {}).get(sensor["identity"]) or {}
    if not cfg.get("watch", True) or not rule.get("watch", True):
        return None
    after = rule.get("silent_after")
    return timedelta(**after).total_seconds() if after else None


def _outage_notices(lab: Lab, mark: set[str]) -> None:
    """The server's outage silenced every sensor: each watched sensor whose
    threshold plus one alert interval fits in the outage is announced once, and
    its recovery once; no other sensor is announced."""
    interval = float(lab.params["server"]["alert_interval_s"])
    expected: Counter[tuple[str, str]] = Counter()
    for sensor in lab.params["sensors"]:
        limit = silent_after(lab, sensor)
        if limit is not None and limit + interval <= OUTAGE:
            expected[(sensor["identity"], "is silent")] += 1
            expected[(sensor["identity"], "sends again")] += 1
    if expected:
        lab.wait(
            f"operators told: {', '.join(sorted({s for s, _ in expected}))} silent, then back",
            lambda: Counter(lab.new_notices(mark)) >= expected,
            180,
        )
    got = Counter(lab.new_notices(mark))
    lab.notices_expected.update(got & expected)
    if got != expected:
        raise CheckFailedError(
            f"silent-sensor notices during the outage: {dict(got)}, expected {dict(expected)}"
        )
    print(f"    operators' notices for the outage: {dict(got) or 'none'} (as expected)")


def _wait_reconnected(lab: Lab, sensors: list[dict[str, Any]], back: float) -> dict[str, float]:
    """After the outage: every sensor that streams reconnects by itself (a new
    name resolved through it reaches the server). Asked of all of them at
    once, a name through each every 2 s and one look at the server's log for
    all, so that each one's figure is its own time from the collector's
    restart, not the checks of the sensors before it. Returns when each one's
    name was seen on the server (monotonic time)."""
    pending = {s["host"]: s for s in sensors}
    after: dict[str, set[str]] = {host: set() for host in pending}
    seen_at: dict[str, float] = {}
    while pending:
        round_start = time.monotonic()
        for host, sensor in pending.items():
            name = load_name(sensor, f"a{len(after[host])}", lab.token)
            after[host].add(name)
            lab.resolve([name], sensor)
        logged = lab.logged_names(set().union(*(after[h] for h in pending)))
        now = time.monotonic()
        for host in [h for h in pending if after[h] & logged]:
            seen_at[host] = now
            lab.figures[f"reconnect after outage ({host})"] = f"{now - back:.0f} s"
            print(f"    {host} reconnected by itself: after {now - back:.0f} s")
            del pending[host]
        if pending and now - back > RECONNECT_WAIT:
            raise CheckFailedError(
                f"not reconnected within {RECONNECT_WAIT:.0f} s: {', '.join(sorted(pending))}"
            )
        if pending:
            time.sleep(max(0.0, round_start + 2.0 - time.monotonic()))
    return seen_at


def _outage_arrivals(lab: Lab, sensor: dict[str, Any], names: set[str]) -> int:
    """After the outage: how many of the outage's names never reached the server."""
    if sensor["transport"] == "spool":
        # Nothing to reconnect: the spool waited on the sensor (or in the
        # server's ingest directory). Close the file that holds the last
        # outage replies, then wait for shipping and ingestion.
        fill_spool(lab, sensor)
        settle = SPOOL_WAIT
    else:
        # Reconnected already (_wait_reconnected): what it lost stays lost.
        settle = 90 if sensor["transport"] != "stream" else 10
    t_wait = time.monotonic()
    seen = lab.logged_names(names)
    while len(seen) < len(names) and time.monotonic() < t_wait + settle:
        time.sleep(5)
        seen = lab.logged_names(names)
    lost = len(names) - len(seen)
    where = f"{sensor['transport']}, {sensor['host']}"
    lab.figures[f"replies lost in a {OUTAGE:.0f} s outage ({where})"] = f"{lost} of {len(names)}"
    if sensor["transport"] == "spool":
        lab.figures[f"outage replies on the server, after the fill ({where})"] = (
            f"{time.monotonic() - t_wait:.0f} s"
        )
    print(
        f"    {sensor['host']} ({sensor['transport']}): {len(names)} names resolved "
        f"during the outage, {len(seen)} reached the server, {lost} lost"
    )
    return lost


def _sensor_collector(lab: Lab, sensor: dict[str, Any], action: str) -> str:
    """Stop or start the collector on a sensor host (supervisor program or systemd unit)."""
    program = sensor["collector_program"]
    if sensor["service_manager"] == "systemd":
        return lab.sh(sensor["host"], f"systemctl {action} {shlex.quote(program)}")
    out = lab.supervisorctl(sensor["host"], action, program)
    if ("stopped" if action == "stop" else "started") not in out:
        raise CheckFailedError(f"{sensor['host']}: supervisorctl {action} {program}: {out.strip()}")
    return out


def check_silent_sensor(lab: Lab) -> None:
    """A sensor's collector stopped: operators told within threshold + 2 min, then recovery.

    Proves that the alert step announces a streaming sensor once it has been
    silent for its threshold (not before), exactly once, and its recovery once
    its replies arrive again. The check runs correlate and alert itself while
    it waits (Lab.nudge): the notice comes when the threshold is passed, not at
    the daemon's next minute.
    """
    chosen = [
        (s, limit)
        for s in lab.params["sensors"]
        if s["transport"] == "stream" and (limit := silent_after(lab, s)) is not None
    ]
    if not chosen:
        raise CheckFailedError(
            "no streaming sensor has a fixed threshold (pdnssoc_agent_sensors.overrides."
            "<identity>.silent_after): nothing to check"
        )
    sensor, limit = chosen[0]
    name = sensor["identity"]

    def announced() -> bool:
        views = lab.status().get("sensors", [])
        return any(v["sensor"] == name and v["announced"] for v in views)

    def notice_sent(what: str, mark: set[str]) -> bool:
        # The notices are the alert step's; correlate sees the replies again.
        lab.nudge("correlate", "alert")
        return (name, what) in lab.new_notices(mark)

    # A notice of an earlier fault still on its way would be taken for this one's.
    lab.wait(f"{name} not announced silent now", lambda: not announced(), 180)
    mark = {f for f, _, _ in lab.notices()}
    out = _sensor_collector(lab, sensor, "stop")
    stopped = time.monotonic()
    print(f"    {sensor['host']}: collector stopped: {out.strip()} (threshold {limit:.0f} s)")
    try:
        lab.wait(
            f"operators told: sensor {name} is silent",
            lambda: notice_sent("is silent", mark),
            limit + SILENT_MARGIN,
        )
        # The last reply seen may precede the stop by the workstation's 10 s
        # between lookups and both 5 s flushes: earlier than that is too early.
        if time.monotonic() - stopped < limit - 25:
            raise CheckFailedError(
                f"{name} announced {time.monotonic() - stopped:.0f} s after its collector "
                f"stopped, before its threshold ({limit:.0f} s)"
            )
        told = time.monotonic() - stopped
        lab.figures[f"silent-sensor notice after {name}'s collector stopped"] = (
            f"{told:.0f} s (threshold {limit:.0f} s, bound {limit + SILENT_MARGIN:.0f} s)"
        )
    finally:
        out = _sensor_collector(lab, sensor, "start")
    started = time.monotonic()
    print(f"    {sensor['host']}: collector started again: {out.strip()}")
    before_start = {f for f, _, _ in lab.notices()}
    lab.wait(
        f"operators told: sensor {name} sends again",
        lambda: notice_sent("sends again", before_start),
        180,
    )
    lab.figures[f"recovery notice after {name}'s collector started"] = (
        f"{time.monotonic() - started:.0f} s"
    )
    got = Counter(lab.new_notices(mark))
    expected = Counter({(name, "is silent"): 1, (name, "sends again"): 1})
    lab.notices_expected.update(got & expected)
    if got != expected:
        raise CheckFailedError(f"silent-sensor notices: {dict(got)}, expected {dict(expected)}")


def check_operator_notices(lab: Lab) -> None:
    """Silent-sensor notices in the whole run: only those the faults caused, none false."""
    got = Counter(lab.new_notices(lab.notice_mark))
    if got != lab.notices_expected:
        seen = "".join(f"\n      {line}" for line in lab.notice_lines(lab.notice_mark))
        raise CheckFailedError(
            f"silent-sensor notices since the checks began: {dict(got)}, "
            f"expected {dict(lab.notices_expected)}; each one seen:{seen or ' none'}"
        )
    print(f"    {sum(got.values())} silent-sensor notice(s), each caused by a check's fault")


def _list_digest(lab: Lab) -> str:
    return lab.sh(
        lab.server,
        f"cd {lab.data_dir}/misp && sha256sum misp_domains.txt misp_ips.txt && "
        f"wc -l misp_domains.txt misp_ips.txt",
    )


def _standin_admin(lab: Lab, payload: dict[str, Any]) -> None:
    misp = lab.params["misp"]
    body = json.dumps(payload)
    lab.sh(
        misp["host"],
        "python3 - <<'EOF'\n"
        "import json, ssl, urllib.request\n"
        f"token = open('{misp['admin_token_file']}').read().strip()\n"
        f"req = urllib.request.Request('https://127.0.0.1:{misp['port']}/_standin/fault',"
        f" data={body!r}.encode(), method='POST',"
        " headers={'X-Standin-Admin': token, 'Content-Type': 'application/json'})\n"
        "ctx = ssl._create_unverified_context()\n"
        "print(urllib.request.urlopen(req, context=ctx).read().decode())\n"
        "EOF",
    )


def check_misp_down(lab: Lab) -> None:
    """MISP stand-in stopped / dying mid-response during fetch-iocs: lists kept, filters on.

    Proves that a failed fetch (refused, or an answer cut mid-transfer) exits
    non-zero and leaves the indicator lists as they were, that correlate
    (run here rather than waited for) still alerts with them, and that the
    next fetch succeeds.
    """
    misp = lab.params["misp"]
    before = _list_digest(lab)
    lab.sh(misp["host"], "systemctl stop misp-standin")
    try:
        code, out = lab.agent("fetch-iocs", check=False)
        print(f"    fetch-iocs with MISP stopped: exit {code}: {out.strip().splitlines()[-1:]}")
        if code == 0:
            raise CheckFailedError("fetch-iocs succeeded with MISP stopped")
    finally:
        lab.sh(misp["host"], "systemctl start misp-standin")
    # Started is not listening yet (Python, TLS set-up): a fixed second was
    # too short on a busy machine.
    probe = f"import socket; socket.create_connection(('127.0.0.1', {int(misp['port'])}), 2)"
    lab.wait(
        "the stand-in listens again",
        lambda: podman("exec", misp["host"], "python3", "-c", probe, timeout=30).returncode == 0,
        60,
        step=1,
    )
    _standin_admin(lab, {"fault": "truncated", "path": "restSearch", "times": 5})
    code, out = lab.agent("fetch-iocs", check=False)
    print(
        f"    fetch-iocs with the answer cut mid-transfer: exit {code}: "
        f"{out.strip().splitlines()[-1:]}"
    )
    if code == 0:
        raise CheckFailedError("fetch-iocs succeeded although MISP's answer was cut")
    _standin_admin(lab, {"fault": None})
    after = _list_digest(lab)
    if after != before:
        raise CheckFailedError(f"IOC lists changed:\n{before}\n->\n{after}")
    name = f"m-{lab.token}.campus-cdn.test"
    lab.resolve([name])

    def alerted() -> list[dict[str, Any]]:
        lab.nudge("correlate")
        return lab.alerts_for(name)

    lab.wait(f"alert for {name} with the kept lists", alerted, LIVE_DEADLINE)
    lab.agent("fetch-iocs")
    print("    lists unchanged, filters active, next fetch-iocs succeeded")


def check_mail_down(lab: Lab) -> None:
    """Mail sink down during alert: delivered once it is back, once each.

    Proves that a delivery refused by the mail server keeps the alert pending
    (the channel's failed count grows, no mail arrives), that it is delivered
    once the server is back and its retry is due, and that a later alert run
    sends no second copy. The check runs the alert step itself while it waits
    (Lab.nudge), so each condition is seen when it holds; correlate first, as
    the daemon does: the alert step also measures each sensor's silence, from
    the newest reply correlate has read to now, and alert runs alone for a
    minute (the retry) would find univ-a silent by correlate's own delay.
    """
    sensor = lab.params["sensors"][0]
    channel = f"email:{sensor['identity']}"
    mail_host = lab.params["mail"]
    name = f"mail-{lab.token}.campus-cdn.test"
    interval = float(lab.params["server"]["alert_interval_s"])
    retry = float(lab.params["server"]["retry_s"])

    def delivered() -> list[dict[str, Any]]:
        return [m for m in lab.mails() if name in m["body"]]

    lab.sh(mail_host, "systemctl stop mailsink")
    try:
        failed_before = int(lab.channel(channel).get("failed_total", 0))
        lab.resolve([name])

        def alerted() -> list[dict[str, Any]]:
            lab.nudge("correlate")
            return lab.alerts_for(name)

        lab.wait(f"alert for {name}", alerted, LIVE_DEADLINE)

        def attempt_failed() -> bool:
            lab.nudge("correlate", "alert")
            return int(lab.channel(channel).get("failed_total", 0)) > failed_before

        lab.wait(f"a delivery on {channel} refused", attempt_failed, interval + 60)
        state = lab.channel(channel)
        if not state.get("pending"):
            raise CheckFailedError(f"{channel} failed but holds nothing pending: {state}")
        if delivered():
            raise CheckFailedError("a mail arrived while the sink was down")
        print(
            f"    {channel}: delivery refused, {state['pending']} alert(s) pending, "
            f"retry in {state.get('retry_in_s')} s"
        )
    finally:
        lab.sh(mail_host, "systemctl start mailsink")

    def delivered_now() -> list[dict[str, Any]]:
        lab.nudge("correlate", "alert")
        return delivered()

    lab.wait(f"mail for {name} after the sink came back", delivered_now, retry + 2 * interval + 60)

    def nothing_pending() -> bool:
        # A whole alert run after the delivery (exit 0: every channel accepted),
        # with nothing left for the channel: a second copy would have been sent.
        lab.nudge("correlate")
        code, _out = lab.agent("alert", check=False)
        return code == 0 and not lab.channel(channel).get("pending")

    lab.wait(f"an alert run after the delivery, nothing pending on {channel}", nothing_pending, 60)
    got = delivered()
    to_contact = [m for m in got if sensor["contact"] in m["envelope_to"]]
    if len(to_contact) != 1:
        raise CheckFailedError(
            f"{len(to_contact)} mails to {sensor['contact']} for {name}, expected exactly 1"
        )
    print(
        f"    {len(got)} message(s) for {name} after recovery, "
        f"{len(to_contact)} to {sensor['contact']}"
    )


def check_agent_killed(lab: Lab) -> None:
    """The agent killed mid-correlation: no alert lost, none repeated."""
    program = lab.params["server"]["agent_program"]
    lab.supervisorctl(lab.server, "stop", program)
    names = [f"k{i}-{lab.token}.campus-cdn.test" for i in range(400)]
    try:
        lab.resolve(names)
        lab.wait(
            "the replies in the query log",
            lambda: len(lab.logged_names(set(names[-3:]))) == 3,
            60,
        )
        kills = 0
        for delay in (0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2, 2, 3, 5):
            partial = len([a for a in lab.alert_lines() if lab.token in a["query"]["name"]])
            # SIGKILL the agent process itself (timeout runs as its parent).
            cmd = list(lab.params["server"]["agent_cmd"])
            at = cmd.index("--") + 1 if "--" in cmd else 0
            cmd[at:at] = ["timeout", "-s", "KILL", str(delay)]
            code = lab.sh(
                lab.server,
                " ".join(shlex.quote(c) for c in cmd) + " correlate >/dev/null 2>&1; echo $?",
                check=False,
            ).strip()
            now = len([a for a in lab.alert_lines() if lab.token in a["query"]["name"]])
            if code == "137":
                kills += 1
                print(f"    killed after {delay} s: {now - partial} alert line(s) written")
            else:
                print(f"    correlate finished within {delay} s (exit {code})")
                break
    finally:
        lab.supervisorctl(lab.server, "start", program)
    lab.agent("correlate")
    lines = [a for a in lab.alert_lines() if a["query"]["name"].rstrip(".") in set(names)]
    ids: dict[str, list[int]] = {}
    for a in lines:
        ids.setdefault(a["id"], []).append(a["revision"])
    repeated = {i: r for i, r in ids.items() if len(r) != len(set(r))}
    alerted = {a["query"]["name"].rstrip(".") for a in lines}
    missing = set(names) - alerted
    if kills == 0:
        raise CheckFailedError("correlate was never killed mid-run")
    if missing:
        raise CheckFailedError(f"{len(missing)} alerts lost, e.g. {sorted(missing)[:3]}")
    if repeated:
        raise CheckFailedError(
            f"{len(repeated)} alerts repeated, e.g. {list(repeated.items())[:2]}"
        )
    print(
        f"    {kills} kill(s) mid-correlation; {len(names)} names -> {len(ids)} alerts, "
        "none lost, none repeated"
    )


def check_hunt(lab: Lab) -> None:
    """The history store answers hunt: who resolved the live name and the indicator's address."""
    sensor = lab.params["sensors"][0]
    name = live_name(lab)
    _client, masked = masked_client(lab, sensor)

    def rows(*values: str) -> list[dict[str, Any]]:
        _rc, out = lab.agent("hunt", *values, "--since", "2h", "--format", "json")
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    # the daemon commits the store hourly: until then hunt finds the live name in the
    # query log's lines the store does not hold (history/tail.py), after in the store
    found = lab.wait(
        f"hunt {name}",
        lambda: [r for r in rows(name) if r["query"]["name"] == name],
        LIVE_DEADLINE,
    )
    row = found[0]
    if (row["sensor"], row["client"]) != (sensor["identity"], masked):
        raise CheckFailedError(f"hunt row {row}: expected sensor {sensor['identity']}, {masked}")
    if "198.51.100.66" not in row["addresses"]:
        raise CheckFailedError(f"hunt row {row}: the answer lacks 198.51.100.66")
    by_ip = [r for r in rows("198.51.100.66/32") if r["query"]["name"] == name]
    if not by_ip:
        raise CheckFailedError(f"hunt 198.51.100.66/32 does not find {name}")
    print(
        f"    hunt {name}: sensor={row['sensor']} client={row['client']} "
        f"count={row['count']} first_seen={row['first_seen']}; also found by 198.51.100.66/32"
    )


def prometheus_query(lab: Lab, query: str) -> list[dict[str, Any]]:
    """The result of a PromQL query to the Prometheus on the server (its HTTP API)."""
    url = f"{lab.params['prometheus']['url']}/api/v1/query?query={urllib.parse.quote(query)}"
    out = lab.sh(lab.server, f"python3 -c {shlex.quote(FETCH)} {shlex.quote(url)}")
    answer = json.loads(out)
    if answer.get("status") != "success":
        raise CheckFailedError(f"Prometheus: {query}: {answer}")
    return list(answer["data"]["result"])


FETCH = (
    "import sys, urllib.request, urllib.error\n"
    "try:\n"
    "    print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())\n"
    "except urllib.error.HTTPError as exc:\n"
    "    print(f'HTTP {exc.code}')"
)


def check_metrics(lab: Lab) -> None:
    """Prometheus on the server scrapes the agent and the collector; rules loaded; no names."""
    prom = lab.params["prometheus"]

    def both_up() -> bool:
        up = {r["metric"]["job"]: r["value"][1] for r in prometheus_query(lab, "up")}
        return up.get("pdnssoc-agent") == "1" and up.get("pdnssoc-collector") == "1"

    lab.wait("Prometheus scrapes the agent and the collector", both_up, 120)
    steps = prometheus_query(lab, "pdnssoc_step_last_success_timestamp_seconds")
    if "correlate" not in {r["metric"].get("step") for r in steps}:
        raise CheckFailedError(f"no last success of correlate among {steps}")
    replies = prometheus_query(lab, 'count({job="pdnssoc-collector",__name__=~"dnscollector_.+"})')
    if not replies:
        raise CheckFailedError("no dnscollector_* series from the collector")
    if prometheus_query(lab, '{__name__=~"dnscollector_top_.+"}'):
        raise CheckFailedError("the collector's top-N tables (names, clients) were stored")
    # The collector's endpoint refuses a scrape without the password.
    refused = lab.sh(
        lab.server, f"python3 -c {shlex.quote(FETCH)} {shlex.quote(prom['collector'])}"
    )
    if refused.strip() != "HTTP 401":
        raise CheckFailedError(f"the collector's metrics without credentials: {refused[:200]!r}")
    # The rules are loaded and evaluated.
    url = f"{prom['url']}/api/v1/rules"
    rules = json.loads(lab.sh(lab.server, f"python3 -c {shlex.quote(FETCH)} {shlex.quote(url)}"))
    loaded = {r["name"]: r["health"] for g in rules["data"]["groups"] for r in g["rules"]}
    expected = {
        "PdnssocStepStale",
        "PdnssocSourceFailing",
        "PdnssocSensorSilent",
        "PdnssocDeliveryBacklog",
        "PdnssocAgentDown",
        "PdnssocCollectorDown",
    }
    if not expected <= set(loaded) or any(loaded[n] == "err" for n in expected):
        raise CheckFailedError(f"rules loaded: {loaded}")
    # No pDNSSOC series names a query or a client.
    series = json.dumps(prometheus_query(lab, '{__name__=~"pdnssoc_.+"}'))
    for secret in (live_name(lab), lab.client_address()):
        if secret in series:
            raise CheckFailedError(f"a pdnssoc_* series carries {secret}")
    print(
        f"    up: agent and collector; {len(steps)} step series; rules {sorted(loaded)}; "
        "top-N dropped; 401 without credentials"
    )


WEB_FETCH = (
    "import ssl, sys, urllib.request, urllib.error\n"
    "ctx = ssl.create_default_context(cafile=sys.argv[2])\n"
    "try:\n"
    "    print(urllib.request.urlopen(sys.argv[1], timeout=10, context=ctx).status)\n"
    "except urllib.error.HTTPError as exc:\n"
    "    print(f'HTTP {exc.code}')"
)
WEB_DIR = "/root/pdnssoc-web-e2e"  # on the workstation: the browser's profile and files
WEB_LOG = "/var/log/supervisor/pdnssoc-web.log"  # on the server (role pdnssoc_agent)


def _chromium(home: str, *args: str) -> str:
    # Root in a container: no sandbox; /dev/shm is small there. Chromium's own
    # log goes to a file, read only when the check fails.
    flags = (
        "--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage"
        " --no-first-run --window-size=1400,900"
    )
    return (
        f"cd {WEB_DIR} && HOME={home} chromium {flags} "
        + " ".join(map(shlex.quote, args))
        + f" 2>>{WEB_DIR}/chromium.log"
    )


def _web_failure(lab: Lab, client: str, what: str, dom: str) -> CheckFailedError:
    """What the page said (a browser error code, the page's text) and Chromium's log."""
    errors = sorted(set(re.findall(r"\bERR_[A-Z_]+", dom)))
    text = re.sub(r"\s+", " ", re.sub(r"<(script|style)\b.*?</\1>|<[^>]+>", " ", dom, flags=re.S))
    log = lab.sh(client, f"tail -c 1200 {WEB_DIR}/chromium.log", check=False)
    served = lab.sh(lab.server, f"tail -n 5 {WEB_LOG}", check=False)
    return CheckFailedError(
        f"{what}; browser errors {errors or 'none'}; page text {text.strip()[:400]!r}; "
        f"Chromium's log: {log.strip()!r}; the web view's log: {served.strip()[-800:]!r}"
    )


def check_web(lab: Lab) -> None:
    """The analysts' web view in Chromium: the analyst's certificate logs in and the
    live alert is on the page (screenshot kept); without a certificate: 401."""
    web = lab.params["web"]
    client = lab.params["client"]
    name = live_name(lab)
    lab.wait(f"alert for {name}", lambda: lab.alerts_for(name), LIVE_DEADLINE)
    home = f"{WEB_DIR}/home"
    nssdb = f"sql:{home}/.pki/nssdb"
    lab.sh(client, f"rm -rf {WEB_DIR} && mkdir -p {home}/.pki/nssdb")
    for src, dest in ((web["analyst_p12"], "analyst.p12"), (web["server_ca"], "server-ca.crt")):
        copied = podman("cp", src, f"{client}:{WEB_DIR}/{dest}")
        if copied.returncode != 0:
            raise CheckFailedError(f"podman cp {src}: {copied.stderr.strip()}")
    lab.sh(
        client,
        f"certutil -N -d {nssdb} --empty-password"
        f" && certutil -A -d {nssdb} -n pdnssoc-lab-ca -t C,, -i {WEB_DIR}/server-ca.crt"
        f" && pk12util -i {WEB_DIR}/analyst.p12 -d {nssdb} -W {shlex.quote(web['p12_password'])}",
    )
    url = f"{web['url']}/alerts?" + urllib.parse.urlencode({"indicator": name})
    refused = lab.sh(
        client,
        f"python3 -c {shlex.quote(WEB_FETCH)} {shlex.quote(url)} {WEB_DIR}/server-ca.crt",
    )
    if refused.strip() != "HTTP 401":
        raise CheckFailedError(f"the web view without a certificate answered {refused[:200]!r}")
    t0 = time.monotonic()
    dom = lab.sh(client, _chromium(home, "--dump-dom", url), timeout=180)
    lab.figures["web view: alerts page in Chromium"] = f"{time.monotonic() - t0:.1f} s"
    if "signed in as lab-analyst" not in dom:
        raise _web_failure(lab, client, "Chromium was not signed in as lab-analyst", dom)
    if name not in dom or "198.51.100.66" not in dom:
        raise _web_failure(lab, client, f"the alerts page lacks the live alert for {name}", dom)
    lab.sh(client, _chromium(home, f"--screenshot={WEB_DIR}/alerts.png", url), timeout=180)
    shot = podman("cp", f"{client}:{WEB_DIR}/alerts.png", web["screenshot"])
    if shot.returncode != 0:
        raise CheckFailedError(f"screenshot not copied: {shot.stderr.strip()}")
    print(f"    {name} on the alerts page as lab-analyst; 401 without a certificate; "
          f"screenshot {web['screenshot']}")  # fmt: skip


CHECKS: dict[str, Callable[[Lab], None]] = {
    "live": check_live_alert,
    "live-resolvers": check_live_other_resolvers,
    "match-kinds": check_match_kinds,
    "subdomain-cname": check_subdomain_cname,
    "benign": check_benign_silent,
    "retro": check_retro,
    "rpz-log-only": check_rpz_log_only,
    "hunt": check_hunt,
    "web": check_web,
    "metrics": check_metrics,
    "collector-outage": check_collector_outage,
    "silent-sensor": check_silent_sensor,
    "misp-down": check_misp_down,
    "mail-down": check_mail_down,
    "agent-killed": check_agent_killed,
    "operator-notices": check_operator_notices,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("params", type=argparse.FileType("r"))
    parser.add_argument("--only", nargs="+", choices=sorted(CHECKS), default=None)
    args = parser.parse_args(argv)
    lab = Lab(json.load(args.params))
    # Checks of a known, reported gap: they run and must fail (XFAIL); one that
    # passes (XPASS) fails the run, so that the gap's closing is noticed.
    known_gaps: dict[str, str] = lab.params.get("known_gaps", {})
    results: list[tuple[str, str, float]] = []
    t_all = time.monotonic()
    lab.notice_mark = {f for f, _, _ in lab.notices()}
    for name, check in CHECKS.items():
        if args.only and name not in args.only:
            continue
        first = {"live", "live-resolvers", "match-kinds", "subdomain-cname", "benign"}
        if name in first and not lab.resolved:
            prime(lab)
        summary = (check.__doc__ or "").split("\n\n")[0]
        print(f"--- {name}: {summary}", flush=True)
        t0 = time.monotonic()
        wall0 = time.time()
        gap = known_gaps.get(name)
        try:
            check(lab)
            outcome = "XPASS" if gap else "PASS"
            if gap:
                print(f"    XPASS: passes although listed as a known gap ({gap}); unlist it")
        except (CheckFailedError, subprocess.SubprocessError, KeyError, ValueError) as exc:
            outcome = "XFAIL" if gap else "FAIL"
            print(f"    {outcome}: {exc}")
            if gap:
                print(f"    (known gap: {gap})")
        results.append((name, outcome, time.monotonic() - t0))
        lab.spans.append((name, wall0, time.time()))
        sys.stdout.flush()
    print("\n=== end-to-end results")
    for name, outcome, seconds in results:
        print(f"  {outcome}  {name:<18} {seconds:6.0f} s")
    print(f"  total {time.monotonic() - t_all:.0f} s")
    for name, gap in known_gaps.items():
        print(f"  known gap: {name}: {gap}")
    for what, value in lab.figures.items():
        print(f"  figure: {what}: {value}")
    return 0 if all(o in {"PASS", "XFAIL"} for _, o, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
