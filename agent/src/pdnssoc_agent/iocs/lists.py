# SPDX-License-Identifier: Apache-2.0
"""The collector's list files: misp_domains.txt and misp_ips.txt.

go-dnscollector (v0.38, ``transformers/filtering.go``) reads both with a line
scanner: ``keep-fqdn-file`` lower-cases each line and keeps replies whose
query name equals one of them exactly; ``keep-rdata-file`` parses each line as
an IP prefix, then as an IP, and keeps replies with an A/AAAA answer inside
the resulting set (bad lines are logged and skipped). So the files hold one
normalised value a line, nothing else.

A list is never written empty: with an empty keep-fqdn list the collector
installs no fqdn filter at all and every reply would land in the matches
file. When there is nothing to keep, the file holds one placeholder that can
never match:

* :data:`DOMAIN_PLACEHOLDER` is a 255-character name under ``.invalid``. The
  collector decodes a query name from wire format and refuses names over 254
  octets (dots included), i.e. over 253 characters of text, and ``.invalid``
  is reserved (RFC 6761) besides; no query name can equal it.
* :data:`IP_PLACEHOLDER` is ``::ffff:0.0.0.0``, an IPv4-mapped IPv6 address.
  The collector prints every A and AAAA answer with Go's ``net.IP.String()``,
  which writes IPv4-mapped addresses in dotted IPv4 form; the parsed answer is
  then a 32-bit address and never equals a 128-bit set member. The normaliser
  turns mapped indicators into IPv4, so a real indicator never looks like it.

Every reader of the list files skips both with :func:`is_placeholder`:
correlation (``correlate.indicators.read_list`` and ``Matcher.add_domain_file``),
fetch-iocs (:func:`read_values`) and ``status`` (:func:`count_values`). The
dnscollector role seeds missing lists with the same two values (its
``vars/main.yml``; a test checks that they agree).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..fsutil import atomic_write_bytes

_PLACEHOLDER_LABEL = "pdnssoc-empty-list-placeholder-this-name-can-never-be-queried"
DOMAIN_PLACEHOLDER = ".".join([_PLACEHOLDER_LABEL] * 4) + ".invalid"
IP_PLACEHOLDER = "::ffff:0.0.0.0"
PLACEHOLDERS = frozenset({DOMAIN_PLACEHOLDER, IP_PLACEHOLDER})

assert len(DOMAIN_PLACEHOLDER) > 253  # noqa: S101 (documented invariant, checked at import)


def is_placeholder(value: str) -> bool:
    """True for the never-matching line written into an otherwise empty list."""
    return value in PLACEHOLDERS


def render(values: Iterable[str], placeholder: str) -> bytes:
    """The file content: sorted values, one a line; the placeholder when there are none."""
    lines = sorted(values) or [placeholder]
    return ("\n".join(lines) + "\n").encode("ascii")


def read_values(path: Path) -> list[str] | None:
    """The values in a list file (placeholder excluded); None when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    return [line for line in text.splitlines() if line and not is_placeholder(line)]


def count_values(path: Path) -> int | None:
    """How many values a list file holds (placeholder excluded); None when it does not exist."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return None
    with fh:
        first = fh.readline().strip()
        count = 1 if first and not is_placeholder(first.decode("utf-8", "replace")) else 0
        last = b"\n"
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            count += chunk.count(b"\n")
            last = chunk[-1:]
        return count + (last != b"\n")  # a last value without its newline


def replace_if_changed(path: Path, content: bytes, mode: int = 0o640) -> bool:
    """Atomically write ``content`` unless ``path`` already holds it; True when written."""
    try:
        if path.read_bytes() == content:
            return False
    except FileNotFoundError:
        pass
    atomic_write_bytes(path, content, mode)
    return True
