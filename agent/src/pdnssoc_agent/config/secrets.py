# SPDX-License-Identifier: Apache-2.0
"""Secrets (MISP API keys, the SMTP password, webhook URLs): where they come from.

A secret is given inline, in a file or in an environment variable. A file is
read up to its first line break: the secret is that line, without surrounding
white space. Anything after it is ignored with a warning (a second line is
not a second key, and a key read with its next line would travel in an HTTP
header, where a line break ends up quoted in error messages). A file that
the group or others can read is reported too: the role writes secret files
``0640``, owned by root and the agent's group.

Messages name what the secret is for and where it comes from, never its value.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from ..sanitize import register_secret
from ._schema import Secret

log = logging.getLogger(__name__)

_reported: set[tuple[str, str]] = set()


def _control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def _read_first_line(what: str, file: Path) -> tuple[str, bool]:
    """(first line stripped, whether non-blank text follows it)."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ValueError(f"{what}: cannot read {file}: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{what}: {file} is not UTF-8 text") from None
    first, _, rest = text.partition("\n")
    return first.strip(), bool(rest.strip())


def secret_file_warnings(what: str, file: Path) -> list[str]:
    """Why the secret file at ``file`` deserves a warning (an empty list when it does not).

    Checked: text after the first line, and read permission for others, or for
    a group the agent does not belong to.
    """
    out: list[str] = []
    try:
        st = file.stat()
        _, extra = _read_first_line(what, file)
    except (OSError, ValueError):
        return out  # read_secret reports what is wrong with it
    if extra:
        out.append(f"{what}: {file} has more than one line; only the first is used")
    mode = stat.S_IMODE(st.st_mode)
    if mode & stat.S_IROTH:
        out.append(
            f"{what}: {file} is readable by every user (mode {mode:04o}); "
            "make it 0600 or 0640 with the agent's group"
        )
    elif mode & stat.S_IRGRP and st.st_gid not in {os.getegid(), *os.getgroups()}:
        out.append(
            f"{what}: {file} is readable by group {st.st_gid}, which the agent is not in "
            f"(mode {mode:04o}); make it 0600 or 0640 with the agent's group"
        )
    return out


def read_secret(what: str, inline: str | None, file: Path | None, env: str | None) -> Secret:
    """Return a secret given inline, in a file (first line) or in an environment variable.

    Raises ValueError naming ``what`` and the source when the secret is missing,
    empty or holds control characters; the message never contains the secret.
    A file with more than one line or with loose permissions is logged as a
    warning (once per file and reason in a process).
    """
    if inline:
        value = inline.strip()
        source = "the configuration file"
    elif file is not None:
        value, _ = _read_first_line(what, file)
        if not value:
            raise ValueError(f"{what}: the first line of {file} is empty")
        for warning in secret_file_warnings(what, file):
            key = (str(file), warning)
            if key not in _reported:
                _reported.add(key)
                log.warning("%s", warning)
        source = str(file)
    elif env is not None:
        value = os.environ.get(env, "").strip()
        if not value:
            raise ValueError(f"{what}: environment variable {env} is not set or empty")
        source = f"environment variable {env}"
    else:
        raise ValueError(f"{what}: no secret configured")
    if not value:
        raise ValueError(f"{what}: empty in {source}")
    if _control(value):
        raise ValueError(f"{what}: the value in {source} holds a line break or control character")
    register_secret(value)
    return Secret(value)
