# SPDX-License-Identifier: Apache-2.0
"""MISP events of one domain attribute each, with the ids sightings are recorded against."""

from __future__ import annotations

from typing import Any


def event(event_id: str, value: str) -> dict[str, Any]:
    return {
        "Event": {
            "id": event_id,
            "info": "C2 infrastructure",
            "uuid": f"5f0c1a2b-0000-4000-8000-{int(event_id):012d}",
            "date": "2026-11-01",
            "timestamp": "1764000000",
            "published": True,
            "Orgc": {"id": "1", "name": "CERT-X"},
            "Attribute": [
                {
                    "id": f"{event_id}01",
                    "event_id": event_id,
                    "category": "Network activity",
                    "type": "domain",
                    "value": value,
                    "to_ids": True,
                    "uuid": f"6f0c1a2b-0000-4000-8000-{int(event_id):012d}",
                    "timestamp": "1764000000",
                    "comment": "",
                    "deleted": False,
                }
            ],
        }
    }
