# SPDX-License-Identifier: Apache-2.0
"""Run the source stand-ins as a service.

    python -m source_standins --listen 127.0.0.1:8480 --root DIR --key-file KEYS

``DIR`` holds ``files/`` (feed directories and lists), ``threatfox.json`` and
``taxii/<collection>.json`` (see :mod:`source_standins.server`). The key file
holds one key a line (blank lines and ``#`` comments skipped); keys never come
from the command line. Once listening, the URL is printed on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

from source_standins.server import SourceStandins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="source_standins", description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:8480", help="HOST:PORT")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--key-file", type=Path, required=True)
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    try:
        lines = args.key_file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        print(f"source_standins: key file {args.key_file}: {exc.strerror}", file=sys.stderr)
        return 2
    keys = [k.strip() for k in lines if k.strip() and not k.lstrip().startswith("#")]
    if not keys:
        print(f"source_standins: key file {args.key_file} holds no key", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with SourceStandins(args.root, keys, host=host or "127.0.0.1", port=int(port)) as server:
        print(server.url("/"), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
