"""``${NAME:default}`` placeholders in a listener's declaration (topics, id, group, topic
pattern, offset store), resolved against the environment and the configuration when the
listener registers, as Spring resolves ``@KafkaListener`` attributes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafkaboot.config.placeholders import UnresolvedPlaceholder, resolve_text
from kafkaboot.errors import ListenerDefinitionError
from kafkaboot.listener.endpoint import ListenerEndpoint

__all__ = ["resolve_endpoint"]


def resolve_endpoint(
    endpoint: ListenerEndpoint, environ: Mapping[str, str], tree: Mapping[str, Any]
) -> ListenerEndpoint:
    """``endpoint`` with its placeholders replaced.

    Raises:
        ListenerDefinitionError: a placeholder has no value and no default (naming it).
    """

    def resolve(text: str | None) -> str | None:
        if text is None:
            return None
        try:
            return resolve_text(text, environ, tree)
        except UnresolvedPlaceholder as problem:
            raise ListenerDefinitionError(
                f"listener {endpoint.qualified_name}: placeholder ${{{problem.name}}} in "
                f"{text!r} {problem.reason}; set it in the environment or configuration, "
                f"or give a default: ${{{problem.name}:value}}"
            ) from None

    return endpoint.with_changes(
        topics=tuple(resolve(t) or "" for t in endpoint.topics),
        id=resolve(endpoint.id),
        group_id=resolve(endpoint.group_id),
        topic_pattern=resolve(endpoint.topic_pattern),
        offset_store=resolve(endpoint.offset_store),
    )
