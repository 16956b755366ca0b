"""The AsyncAPI document as one readable HTML page: servers, then each channel with its
operations and message schemas. Rendered on the server with inline CSS, no scripts and no
external assets, so it works where the service runs (no CDN)."""

from __future__ import annotations

import html
import json
from typing import Any

__all__ = ["render_page"]

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#1d2330}
h1{margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #d8dce3}
.op{display:inline-block;padding:0 .5rem;border-radius:.3rem;font-size:.8rem;color:#fff}
.receive{background:#2e7d32}.send{background:#1565c0}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #d8dce3;padding:.2rem .6rem;
text-align:left;vertical-align:top}code,pre{font-family:ui-monospace,monospace;font-size:.85rem}
pre{background:#f5f6f8;padding:.6rem;overflow:auto}.muted{color:#5f6b7a}
"""


def render_page(document: dict[str, Any]) -> str:
    """The page for ``document`` (an AsyncAPI 3.0 document as kafkaboot builds it)."""
    info = document.get("info", {})
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(info.get('title', 'AsyncAPI'))}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(info.get('title', ''))}</h1>",
        f"<p class='muted'>AsyncAPI {_e(document.get('asyncapi', ''))} · version "
        f"{_e(info.get('version', ''))} · <a href='asyncapi.json'>asyncapi.json</a></p>",
        f"<p>{_e(info.get('description', ''))}</p>",
        "<h2>Servers</h2><table><tr><th>id</th><th>host</th><th>protocol</th></tr>",
    ]
    for server_id, server in document.get("servers", {}).items():
        parts.append(
            f"<tr><td>{_e(server_id)}</td><td><code>{_e(server.get('host'))}</code></td>"
            f"<td>{_e(server.get('protocol'))}</td></tr>"
        )
    parts.append("</table>")
    schemas = document.get("components", {}).get("schemas", {})
    operations = document.get("operations", {})
    for channel_id, channel in document.get("channels", {}).items():
        address = channel.get("address")
        title = f"<code>{_e(address)}</code>" if address else _e(channel_id)
        parts.append(
            f"<h2 id='{_e(channel_id)}'>{title}</h2><p>{_e(channel.get('description', ''))}</p>"
        )
        for operation_id, operation in operations.items():
            if operation.get("channel", {}).get("$ref") != f"#/channels/{channel_id}":
                continue
            action = operation.get("action", "")
            group = (
                operation.get("bindings", {})
                .get("kafka", {})
                .get("groupId", {})
                .get("enum", [None])[0]
            )
            detail = f" · group <code>{_e(group)}</code>" if group else ""
            parts.append(
                f"<p><span class='op {_e(action)}'>{_e(action)}</span> <b>{_e(operation_id)}</b>"
                f" — {_e(operation.get('summary', ''))}{detail}</p>"
            )
        for message_id, message in channel.get("messages", {}).items():
            parts.append(
                f"<h3>message {_e(message_id)} <span class='muted'>"
                f"({_e(message.get('contentType', ''))})</span></h3>"
            )
            parts.append(_schema_block("payload", message.get("payload", {}), schemas))
            key = message.get("bindings", {}).get("kafka", {}).get("key")
            if key is not None:
                parts.append(_schema_block("key", key, schemas))
            if "headers" in message:
                parts.append(_schema_block("headers", message["headers"], schemas))
    if schemas:
        parts.append("<h2>Schemas</h2>")
        for name, schema in schemas.items():
            parts.append(f"<h3 id='schema-{_e(name)}'>{_e(name)}</h3>{_properties(schema)}")
    parts.append("</body></html>")
    return "".join(parts)


def _schema_block(label: str, schema: dict[str, Any], schemas: dict[str, Any]) -> str:
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[1]
        return (
            f"<p>{_e(label)}: <a href='#schema-{_e(name)}'>{_e(name)}</a></p>"
            f"{_properties(schemas.get(name, {}))}"
        )
    return f"<p>{_e(label)}:</p><pre>{_e(json.dumps(schema, indent=2))}</pre>"


def _properties(schema: dict[str, Any]) -> str:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return f"<pre>{_e(json.dumps(schema, indent=2))}</pre>"
    required = set(schema.get("required", []))
    rows = ["<table><tr><th>field</th><th>type</th><th>required</th></tr>"]
    for name, field in properties.items():
        rows.append(
            f"<tr><td><code>{_e(name)}</code></td><td>{_e(_type_of(field))}</td>"
            f"<td>{'yes' if name in required else ''}</td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def _type_of(field: dict[str, Any]) -> str:
    if "$ref" in field:
        return str(field["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in field:
        return " | ".join(_type_of(option) for option in field["anyOf"])
    kind = str(field.get("type", "any"))
    if kind == "array":
        return f"array of {_type_of(field.get('items', {}))}"
    return f"{kind} ({field['format']})" if "format" in field else kind


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)
