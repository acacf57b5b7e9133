# SPDX-License-Identifier: Apache-2.0
"""The lab's mail sink: an SMTP server that stores every message it accepts.

Each accepted message becomes one file ``<dir>/<epoch-ns>-<n>.eml``, written
to a temporary name, fsynced and renamed, so a listing never shows half a
message. The envelope (MAIL FROM, RCPT TO) is recorded in ``X-Sink-*``
headers in front of the message. ``list`` prints one line per stored message;
``show`` prints one.

    python3 mailsink.py serve --listen 0.0.0.0:25 --dir /var/lib/mailsink
    python3 mailsink.py list --dir /var/lib/mailsink [--json]

It needs aiosmtpd (Debian: python3-aiosmtpd; the project's .venv has it).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import itertools
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

_counter = itertools.count(1)
# A lab sink listens on the lab network, which only the lab's hosts reach.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104


def _store(directory: Path, mail_from: str, rcpt_tos: list[str], data: bytes) -> Path:
    head = f"X-Sink-Mail-From: {mail_from}\r\nX-Sink-Rcpt-To: {', '.join(rcpt_tos)}\r\n"
    name = f"{time.time_ns()}-{next(_counter)}.eml"
    tmp = directory / f".{name}.tmp"
    with tmp.open("wb") as f:
        f.write(head.encode("ascii", "backslashreplace") + data)
        f.flush()
        os.fsync(f.fileno())
    final = directory / name
    tmp.rename(final)
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return final


class _Handler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8")
        path = _store(self.directory, envelope.mail_from, list(envelope.rcpt_tos), data)
        print(f"mailsink: stored {path.name} for {', '.join(envelope.rcpt_tos)}", flush=True)
        return "250 Message accepted for delivery"


def _split_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--listen wants HOST:PORT, got {value!r}")
    return host.strip("[]") or ALL_INTERFACES, int(port)


def serve(listen: tuple[str, int], directory: Path) -> int:
    """Serve until SIGTERM or SIGINT."""
    # Imported here: `list` needs only the standard library.
    from aiosmtpd.controller import Controller  # noqa: PLC0415

    directory.mkdir(parents=True, exist_ok=True)
    host, port = listen
    controller = Controller(_Handler(directory), hostname=host, port=port)
    controller.start()
    print(f"mailsink: listening on {host}:{port}, storing in {directory}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    return 0


def messages(directory: Path) -> list[dict[str, Any]]:
    """The stored messages, oldest first, as dicts (file, from, to, subject, date, body)."""
    out = []
    for path in sorted(directory.glob("*.eml"), key=lambda p: tuple(map(int, p.stem.split("-")))):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain", "html"))
        out.append(
            {
                "file": str(path),
                "envelope_from": str(msg.get("X-Sink-Mail-From", "")),
                "envelope_to": [r.strip() for r in str(msg.get("X-Sink-Rcpt-To", "")).split(",")],
                "from": str(msg.get("From", "")),
                "to": str(msg.get("To", "")),
                "subject": str(msg.get("Subject", "")),
                "date": str(msg.get("Date", "")),
                "body": text.get_content() if text is not None else "",
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mailsink", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="accept and store messages")
    p_serve.add_argument("--listen", type=_split_listen, default=(ALL_INTERFACES, 25))
    p_serve.add_argument("--dir", type=Path, required=True)
    p_list = sub.add_parser("list", help="one line per stored message")
    p_list.add_argument("--dir", type=Path, required=True)
    p_list.add_argument("--json", action="store_true", help="JSON lines with the text body")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args.listen, args.dir)
    if not args.dir.is_dir():
        print(f"mailsink: no message directory {args.dir}", file=sys.stderr)
        return 1
    for m in messages(args.dir):
        if args.json:
            print(json.dumps(m, ensure_ascii=False))
        else:
            to = ", ".join(m["envelope_to"])
            print(f"{Path(m['file']).name}  to={to}  subject={m['subject']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
