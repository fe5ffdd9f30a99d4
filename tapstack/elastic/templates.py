"""Install the index templates from kibana/index-templates/ and create their indices.

The template files hold mappings and settings only; their index patterns and the refresh interval
come from contracts/settings.toml, so the names are spelled in one place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from tapstack import contracts

TEMPLATE_DIR = contracts.ROOT / "kibana" / "index-templates"
# template file stem -> index role in settings.toml
TEMPLATES = {
    "orders": "orders",
    "lines": "lines",
    "ledger": "ledger",
    "statuses": "statuses",
    "privacy": "privacy",
    "quality": "quality",
    "drift": "drift",
    "models": "models",
}


def template_name(role: str) -> str:
    return f"tap-{role}"


def load_template(role: str) -> dict[str, Any]:
    """The template body as Elasticsearch receives it."""
    body = json.loads(Path(TEMPLATE_DIR / f"{role}.json").read_text(encoding="utf-8"))
    body.pop("_comment", None)
    body["index_patterns"] = [contracts.index(role)]
    body["template"]["settings"]["refresh_interval"] = contracts.settings()["indices"][
        "refresh_interval"
    ]
    return body


def mapping_properties(role: str) -> dict[str, dict[str, Any]]:
    """field -> mapping of one template (what the dashboard may name)."""
    return load_template(role)["template"]["mappings"]["properties"]


def install(es: Elasticsearch) -> list[str]:
    """Put every template and create the indices if missing; return the indices created."""
    created = []
    for role in TEMPLATES:
        body = load_template(role)
        es.indices.put_index_template(name=template_name(role), **body)
        name = contracts.index(role)
        if not es.indices.exists(index=name):
            es.indices.create(index=name)
            created.append(name)
        else:
            # An existing index keeps its settings; the refresh interval must still be explicit.
            es.indices.put_settings(
                index=name,
                settings={
                    "index": {"refresh_interval": body["template"]["settings"]["refresh_interval"]}
                },
            )
    return created
