# SPDX-License-Identifier: Apache-2.0
"""A strict reader of Prometheus' text exposition format 0.0.4, for the metrics tests.

Stricter than Prometheus itself where the format leaves room: every family
has HELP then TYPE before its samples, its samples follow together, a sample
is named as its family (counters and gauges only), label values use only the
three escapes, no series appears twice, and the text ends with a line feed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_HELP = re.compile(rf"# HELP ({_NAME}) (.*)\Z")
_TYPE = re.compile(rf"# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)\Z")
_SAMPLE = re.compile(rf"({_NAME})(\{{.*\}})? (\S+)( -?\d+)?\Z")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|\Z)')


@dataclass
class Family:
    name: str
    help: str
    type: str = ""
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def value(self, **labels: str) -> float:
        """The value of the one sample with exactly these labels."""
        found = [v for lab, v in self.samples if lab == labels]
        if len(found) != 1:
            raise KeyError(f"{self.name}{labels}: {len(found)} sample(s)")
        return found[0]

    def has(self, **labels: str) -> bool:
        return any(lab == labels for lab, _ in self.samples)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), text)


def _labels(text: str, where: str) -> dict[str, str]:
    inner = text[1:-1]
    labels: dict[str, str] = {}
    pos = 0
    while pos < len(inner):
        m = _LABEL.match(inner, pos)
        if m is None:
            raise ValueError(f"{where}: bad label set {text!r}")
        if m.group(1) in labels:
            raise ValueError(f"{where}: label {m.group(1)} twice")
        labels[m.group(1)] = _unescape(m.group(2))
        pos = m.end()
    return labels


def _value(text: str, where: str) -> float:
    if text in ("NaN", "+Inf", "-Inf"):
        return {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}[text]
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{where}: bad value {text!r}") from None


def parse(text: str) -> dict[str, Family]:
    """Every family of ``text``; ValueError naming the line that breaks the format."""
    if not text.endswith("\n"):
        raise ValueError("the text does not end with a line feed")
    families: dict[str, Family] = {}
    current: Family | None = None
    series: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for n, line in enumerate(text[:-1].split("\n"), start=1):
        where = f"line {n}"
        if m := _HELP.match(line):
            if m.group(1) in families:
                raise ValueError(f"{where}: family {m.group(1)} again")
            current = families[m.group(1)] = Family(m.group(1), m.group(2))
        elif m := _TYPE.match(line):
            if current is None or current.name != m.group(1) or current.type or current.samples:
                raise ValueError(f"{where}: TYPE not right after its HELP: {line!r}")
            current.type = m.group(2)
        elif line.startswith("#") or not line:
            raise ValueError(f"{where}: unexpected {line!r}")
        elif m := _SAMPLE.match(line):
            if current is None or not current.type or m.group(1) != current.name:
                raise ValueError(f"{where}: sample outside its family: {line!r}")
            if current.type not in ("counter", "gauge"):
                raise ValueError(f"{where}: only counters and gauges are expected")
            labels = _labels(m.group(2), where) if m.group(2) else {}
            key = (current.name, tuple(sorted(labels.items())))
            if key in series:
                raise ValueError(f"{where}: series repeated: {line!r}")
            series.add(key)
            current.samples.append((labels, _value(m.group(3), where)))
        else:
            raise ValueError(f"{where}: not a sample: {line!r}")
    return families
