# SPDX-License-Identifier: Apache-2.0
"""Run the agent's benchmarks: ``python -m benchmarks [NAME [ARGS...]]`` (from agent/).

Every module ``bench_<name>.py`` in this package is a benchmark called NAME;
it runs as ``__main__`` with ARGS as its command line. Without a NAME, each
benchmark runs in turn, each in a fresh process so that one's memory does
not show up in another's figures.
"""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def available() -> list[str]:
    """Names of the benchmarks in this package."""
    return sorted(p.stem.removeprefix("bench_") for p in PACKAGE.glob("bench_*.py"))


def main(argv: list[str]) -> int:
    names = available()
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("benchmarks:", ", ".join(names))
        return 0
    if not argv:
        failed = []
        for name in names:
            print(f"== benchmark {name} ==", flush=True)
            code = subprocess.call([sys.executable, "-m", f"{__package__}.bench_{name}"])
            if code:
                failed.append(name)
                print(f"== benchmark {name} failed (exit {code}) ==", flush=True)
        return 1 if failed else 0
    name, rest = argv[0], argv[1:]
    if name not in names:
        print(f"no benchmark {name!r}; available: {', '.join(names)}", file=sys.stderr)
        return 2
    sys.argv = [str(PACKAGE / f"bench_{name}.py"), *rest]
    runpy.run_module(f"{__package__}.bench_{name}", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
