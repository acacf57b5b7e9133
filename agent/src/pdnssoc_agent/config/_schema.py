# SPDX-License-Identifier: Apache-2.0
"""A small declarative validator: YAML mappings into frozen dataclasses.

Every problem is collected with the dotted path of the key that caused it, so
``check-config`` can list all of them at once instead of stopping at the first.
Field metadata understood here:

``aliases``   other key names accepted for the field (pdnssoc-cli spellings)
``key``       the YAML key when it differs from the attribute name
``min``/``max`` bounds of a number (defaults: 0 and 10**9) or of a duration
              (``timedelta``; default at most 36500 days, a century)
``doc``       one line shown in error messages (the unit of a number)

Error messages name the key and what was expected, and describe a wrong value
by its type ("got a mapping with keys domain, api_key"), never by its content:
a misplaced API key, password or webhook URL must not end up in a log. Only
numbers and the short words of a choice (``security: startls``) are quoted.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a configuration file."""

    path: str
    """Dotted key path, e.g. ``misp_servers[1].api_key``."""
    message: str
    """What is wrong and what is expected."""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class Secret(str):
    """A string that never shows its value in ``repr`` or logs."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('***')"


class Deprecated:
    """Marker type: a legacy key that is accepted, ignored, and reported."""


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp in (str, Secret):
        return "a string"
    if tp is Path:
        return "a file system path"
    if tp is timedelta:
        return "a duration mapping such as {days: 7}"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp) if a is not type(None))
    return str(tp)


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,31}")
_WORD = re.compile(r"[A-Za-z0-9_.:-]{1,16}")


def _plain(text: str, pattern: re.Pattern[str]) -> bool:
    """A name or word, not a token: few digits (API keys and passwords are full of them)."""
    return bool(pattern.fullmatch(text)) and sum(c.isdigit() for c in text) <= 4


def key_text(key: Any) -> str:
    """A mapping key as it may appear in a message: plain names as they are.

    Anything else (a URL or token pasted as a key, a non-string key) is
    described, not shown.
    """
    if isinstance(key, str) and _plain(key, _PLAIN_KEY):
        return key
    if isinstance(key, str):
        return f"<a key of {len(key)} characters>"
    return f"<{kind(key)} key>"


def kind(value: Any) -> str:
    """What ``value`` is, without its content (it may be a secret in the wrong place)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "an empty string" if value == "" else f"a string of {len(value)} characters"
    if isinstance(value, dict):
        keys = [key_text(k) for k in list(value)[:8]]
        more = ", ..." if len(value) > 8 else ""
        return f"a mapping with keys {', '.join(keys)}{more}" if keys else "an empty mapping"
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    return f"a value of type {type(value).__name__}"


def _number_text(value: float) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 24 else f"a number of {len(text)} digits"


def _scalar_text(value: Any) -> str:
    """A short word or number quoted (for typed fields that cannot hold a secret), else its kind."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number_text(value)
    if isinstance(value, str) and _plain(value, _WORD):
        return repr(value)
    return kind(value)


_DEFAULT_MIN = 0
_DEFAULT_MAX = 10**9
_MAX_DURATION = timedelta(days=36500)


def _convert_number(tp: Any, value: Any, path: str, problems: list[Problem], meta: Any) -> Any:
    """An int or float within its bounds; NaN, infinity and true/false are refused."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        ok = ok or isinstance(value, float)
    if not ok:
        problems.append(Problem(path, f"expected {_describe(tp)}, got {_scalar_text(value)}"))
        return None
    if isinstance(value, float) and not math.isfinite(value):
        problems.append(Problem(path, f"must be a finite number, got {value}"))
        return None
    lo = meta.get("min", _DEFAULT_MIN)
    hi = meta.get("max", _DEFAULT_MAX)
    if not lo <= value <= hi:
        unit = f" {meta['doc']}" if meta.get("doc") else ""
        bound = f"at least {lo}" if value < lo else f"at most {hi}"
        problems.append(
            Problem(
                path,
                f"must be {bound} (allowed: {lo} to {hi}{unit}), got {_number_text(value)}",
            )
        )
        return None
    return tp(value)


def _convert(tp: Any, value: Any, path: str, problems: list[Problem], meta: Any) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _convert(non_none[0], value, path, problems, meta)
        for arg in non_none:
            trial: list[Problem] = []
            converted = _convert(arg, value, path, trial, meta)
            if not trial:
                return converted
        problems.append(Problem(path, f"expected {_describe(tp)}, got {kind(value)}"))
        return None
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        problems.append(Problem(path, f"expected true or false, got {_scalar_text(value)}"))
        return None
    if tp in (int, float):
        return _convert_number(tp, value, path, problems, meta)
    if tp in (str, Secret, Path):
        if isinstance(value, str) and value != "":
            return tp(value)
        if isinstance(value, str):
            problems.append(Problem(path, "must not be empty"))
            return None
        problems.append(Problem(path, f"expected {_describe(tp)}, got {kind(value)}"))
        return None
    if tp is timedelta:
        return _convert_duration(value, path, problems, meta)
    if origin is Literal:
        choices = get_args(tp)
        if value in choices:
            return value
        problems.append(Problem(path, f"expected {_describe(tp)}, got {_scalar_text(value)}"))
        return None
    if origin is list:
        (elem,) = get_args(tp)
        if isinstance(value, (str, dict)) or not isinstance(value, list):
            problems.append(Problem(path, f"expected a list, got {kind(value)}"))
            return []
        return [_convert(elem, v, f"{path}[{i}]", problems, {}) for i, v in enumerate(value)]
    if origin is dict:
        _, val_tp = get_args(tp)
        if not isinstance(value, dict):
            problems.append(Problem(path, f"expected a mapping, got {kind(value)}"))
            return {}
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                problems.append(Problem(path, f"keys must be strings, got {key_text(k)}"))
                continue
            out[k] = _convert(val_tp, v, f"{path}.{key_text(k)}", problems, {})
        return out
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return build(tp, value, path, problems)
    raise TypeError(f"unsupported field type {tp!r} at {path}")  # programming error


_UNIT_SECONDS = {
    "weeks": 604800.0,
    "days": 86400.0,
    "hours": 3600.0,
    "minutes": 60.0,
    "seconds": 1.0,
}
_DURATION_KEYS = tuple(_UNIT_SECONDS)


def _duration_text(seconds: float) -> str:
    """A duration as the mapping an operator writes, in the largest unit that holds it
    whole (``{minutes: 1}``, ``{days: 3650}``), or in seconds."""
    for unit, size in _UNIT_SECONDS.items():
        if unit != "weeks" and seconds >= size and (seconds / size).is_integer():
            return f"{{{unit}: {seconds / size:.0f}}}"
    return f"{{seconds: {seconds:.10g}}}"


def _convert_duration(
    value: Any, path: str, problems: list[Problem], meta: Any
) -> timedelta | None:
    if not isinstance(value, dict):
        problems.append(
            Problem(path, f"expected a duration mapping such as {{days: 7}}, got {kind(value)}")
        )
        return None
    seconds = 0.0
    bad = False
    for k, v in value.items():
        if k not in _UNIT_SECONDS:
            problems.append(
                Problem(
                    f"{path}.{key_text(k)}",
                    "unknown duration unit; use " + ", ".join(_DURATION_KEYS),
                )
            )
            bad = True
            continue
        numeric = isinstance(v, (int, float)) and not isinstance(v, bool)
        if not numeric or not math.isfinite(v) or v < 0:
            hint = ""
            if isinstance(v, str) and re.fullmatch(r"[0-9.]+[eE][+-]?[0-9]+", v):
                hint = f" (YAML reads {v} as text; write {float(v):.1e})"
            problems.append(
                Problem(
                    f"{path}.{k}",
                    f"expected a finite non-negative number, got {_scalar_text(v)}{hint}",
                )
            )
            bad = True
            continue
        seconds += float(v) * _UNIT_SECONDS[k]
    if bad:
        return None
    lo: timedelta | None = meta.get("min")
    hi: timedelta = meta.get("max", _MAX_DURATION)
    if seconds < 1e-6:
        problems.append(Problem(path, "duration must be longer than zero"))
        return None
    if lo is not None and seconds < lo.total_seconds():
        bound = _duration_text(lo.total_seconds())
        problems.append(Problem(path, f"must be at least {bound}, got {_duration_text(seconds)}"))
        return None
    if seconds > hi.total_seconds():
        bound = _duration_text(hi.total_seconds())
        problems.append(Problem(path, f"must be at most {bound}, got {_duration_text(seconds)}"))
        return None
    return timedelta(seconds=seconds)


def _keys(fields: list[dataclasses.Field[Any]]) -> dict[str, dataclasses.Field[Any]]:
    """YAML key (and alias) -> field."""
    known: dict[str, dataclasses.Field[Any]] = {}
    for f in fields:
        known[f.metadata.get("key", f.name)] = f
        for alias in f.metadata.get("aliases", ()):
            known[alias] = f
    return known


def build(cls: type[T], data: Any, path: str, problems: list[Problem]) -> T:
    """Build dataclass ``cls`` from mapping ``data``, appending to ``problems``.

    Missing required fields, unknown keys (with a "did you mean"), wrong types
    and out-of-range values are all reported. Always returns an instance (with
    defaults where values were bad) so that later checks can still run; callers
    must treat it as invalid when ``problems`` grew.
    """
    prefix = f"{path}." if path else ""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(Problem(path, f"expected a mapping, got {kind(data)}"))
        data = {}
    hints = get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    known = _keys(fields)
    values: dict[str, Any] = {}
    failed: set[str] = set()
    seen_by: dict[str, str] = {}
    for key, raw in data.items():
        key_s = key_text(key)
        found = known.get(key) if isinstance(key, str) else None
        if found is None:
            close = difflib.get_close_matches(key_s, list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            valid = ", ".join(sorted(k for k in known if not known[k].metadata.get("hidden")))
            problems.append(Problem(prefix + key_s, f"unknown key{hint} (valid keys: {valid})"))
            continue
        f = found
        if f.name in seen_by:
            problems.append(
                Problem(prefix + key_s, f"given twice, also as {seen_by[f.name]!r}; keep one")
            )
            continue
        seen_by[f.name] = key_s
        tp = hints[f.name]
        if tp is Deprecated or (
            get_origin(tp) in (typing.Union, types.UnionType) and Deprecated in get_args(tp)
        ):
            values[f.name] = None
            continue
        before = len(problems)
        values[f.name] = _convert(tp, raw, prefix + key_s, problems, f.metadata)
        if len(problems) > before:
            failed.add(f.name)
    for f in fields:
        if f.name in values:
            # A value that failed to convert falls back to the default so later
            # checks can run; an explicit null on an optional field stays null.
            if f.name in failed and f.default is not dataclasses.MISSING:
                values[f.name] = f.default
            elif f.name in failed and f.default_factory is not dataclasses.MISSING:
                values[f.name] = f.default_factory()
            continue
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            key = f.metadata.get("key", f.name)
            doc = f.metadata.get("doc")
            problems.append(
                Problem(prefix + key, "required key is missing" + (f" ({doc})" if doc else ""))
            )
            values[f.name] = None
    obj = cls(**values)
    check = getattr(obj, "_check", None)
    if callable(check):
        check(path, problems)
    return obj


def deprecated_keys(cls: type[Any], data: Any, path: str) -> list[Problem]:
    """Legacy keys present in ``data`` that are accepted but have no effect."""
    out: list[Problem] = []
    if not isinstance(data, dict):
        return out
    prefix = f"{path}." if path else ""
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        is_dep = tp is Deprecated or (
            get_origin(tp) in (typing.Union, types.UnionType) and Deprecated in get_args(tp)
        )
        key = f.metadata.get("key", f.name)
        if is_dep and key in data:
            out.append(Problem(prefix + key, f.metadata.get("doc", "ignored")))
    return out
