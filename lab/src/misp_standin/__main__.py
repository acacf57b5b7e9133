# SPDX-License-Identifier: Apache-2.0
"""Run the MISP stand-in as a service.

    python -m misp_standin --listen 0.0.0.0:8443 --api-key-file KEYS \\
        --events-dir EVENTS --warninglists-dir LISTS \\
        [--tls-cert CERT --tls-key KEY] [--admin-token-file TOKEN] [--synthetic N]

Secrets come from files (or the environment), never from the command line. The
API key file holds one key a line, optionally followed by the organisation name
(``KEY ORGNAME``); blank lines and ``#`` comments are skipped. Without
``--api-key-file`` the key is read from ``$MISP_STANDIN_API_KEY``. The admin
token file holds one line. Once listening, the URL is printed on stdout.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import stat
import sys
import threading
from pathlib import Path
from types import FrameType

from misp_standin.server import MispStandin
from misp_standin.store import StoreError
from misp_standin.warninglists import WarninglistError

log = logging.getLogger("misp_standin")


class UsageError(Exception):
    """A bad option or secret file; the message says which and why."""


def _read_secret_file(path: Path, what: str) -> str:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{what} {path}: {exc.strerror}") from exc
    if mode & stat.S_IROTH:
        log.warning("%s %s is world-readable; chmod o-r it", what, path)
    return text


def read_api_keys(path: Path | None, default_org: str) -> dict[str, str]:
    """``{key: organisation}`` from a key file, or from ``$MISP_STANDIN_API_KEY``."""
    if path is None:
        key = os.environ.get("MISP_STANDIN_API_KEY", "").strip()
        if not key:
            raise UsageError("no API key: give --api-key-file or set MISP_STANDIN_API_KEY")
        return {key: default_org}
    keys: dict[str, str] = {}
    for number, raw in enumerate(_read_secret_file(path, "API key file").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, org = line.partition(" ")
        if len(key) < 8:
            raise UsageError(f"API key file {path} line {number}: key shorter than 8 characters")
        keys[key] = org.strip() or default_org
    if not keys:
        raise UsageError(f"API key file {path}: no key in it")
    return keys


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8443")
    return host.strip("[]") or "127.0.0.1", int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m misp_standin", description=(__doc__ or "").split("\n", 1)[0]
    )
    parser.add_argument("--listen", default="127.0.0.1:8443", help="HOST:PORT (port 0: any)")
    parser.add_argument("--api-key-file", type=Path, help="'KEY [ORGNAME]' lines")
    parser.add_argument("--org", default="ORGNAME", help="organisation of keys without one")
    parser.add_argument("--events-dir", type=Path, help="MISP event JSON files (*.json)")
    parser.add_argument("--warninglists-dir", type=Path, help="misp-warninglists list.json files")
    parser.add_argument("--tls-cert", type=Path, help="PEM certificate (chain) for HTTPS")
    parser.add_argument("--tls-key", type=Path, help="PEM private key for HTTPS")
    parser.add_argument("--admin-token-file", type=Path, help="enables /_standin/ admin routes")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N", help="N generated IOCs")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic IOCs")
    parser.add_argument(
        "--timeout-delay", type=float, default=30.0, help="seconds the 'timeout' fault stalls"
    )
    parser.add_argument("--quiet", action="store_true", help="log warnings and errors only")
    return parser


def make_standin(args: argparse.Namespace) -> MispStandin:
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    for option, path in (
        ("--events-dir", args.events_dir),
        ("--warninglists-dir", args.warninglists_dir),
    ):
        if path is not None and not path.is_dir():
            raise UsageError(f"{option} {path}: not a directory")
    admin_token = None
    if args.admin_token_file is not None:
        admin_token = _read_secret_file(args.admin_token_file, "admin token file").strip()
        if len(admin_token) < 8:
            raise UsageError(f"admin token file {args.admin_token_file}: token under 8 characters")
    host, port = parse_listen(args.listen)
    standin = MispStandin(
        api_keys=read_api_keys(args.api_key_file, args.org),
        warninglists_dir=args.warninglists_dir,
        tls=(args.tls_cert, args.tls_key) if args.tls_cert else None,
        host=host,
        port=port,
        admin_token=admin_token,
        events_dir=args.events_dir,
        timeout_delay=args.timeout_delay,
    )
    if args.synthetic:
        standin.add_synthetic(args.synthetic, seed=args.seed)
    return standin


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        standin = make_standin(args)
        standin.start()
    except (UsageError, StoreError, WarninglistError, ValueError) as exc:
        print(f"misp_standin: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"misp_standin: cannot listen on {args.listen}: {exc}", file=sys.stderr)
        return 1
    print(standin.url, flush=True)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    done.wait()
    standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
