"""``kafka.listeners.<id>``: per-listener settings from configuration, above the decorator's
arguments, and where each listener's effective settings came from (``config show``)."""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kafkaboot.components import import_component
from kafkaboot.config.binding import canonical
from kafkaboot.config.kafka import ListenerOverrides, SeekProperties
from kafkaboot.config.secrets import masked_url
from kafkaboot.config.settings import KafkaBootSettings
from kafkaboot.errors import ConfigurationError, ListenerDefinitionError
from kafkaboot.interceptors import ListenerInterceptor
from kafkaboot.listener.endpoint import ListenerEndpoint

__all__ = ["ConfiguredListeners"]


class ConfiguredListeners:
    """Applies ``kafka.listeners.<id>`` to endpoints as they are registered, and remembers
    what it did.

    Args:
        settings: the configuration.
        instance: creates a component named by import path (the registry's instance
            factory: the DI container in an application).
    """

    def __init__(self, settings: KafkaBootSettings, instance: Callable[[type], Any]) -> None:
        self.settings = settings
        self._instance = instance
        self.declared: dict[str, ListenerEndpoint] = {}
        """Each listener's endpoint as its decorator declared it (for provenance)."""
        self.matched: dict[str, str] = {}
        """Listener id → the ``kafka.listeners`` key that configured it."""
        self.seeks: dict[str, SeekProperties] = {}

    def _overrides_for(self, listener_id: str) -> tuple[str, ListenerOverrides] | None:
        configured = self.settings.kafka.listeners
        if listener_id in configured:
            return listener_id, configured[listener_id]
        wanted = canonical(listener_id)  # KAFKA_LISTENERS_ON_EVENT_... binds as "on-event".
        for key, overrides in configured.items():
            if canonical(key) == wanted:
                return key, overrides
        return None

    def apply(self, endpoint: ListenerEndpoint) -> ListenerEndpoint:
        """``kafka.listeners.<id>`` above the decorator's arguments."""
        listener_id = endpoint.listener_id
        self.declared[listener_id] = endpoint
        found = self._overrides_for(listener_id)
        if found is None:
            return endpoint
        key, overrides = found
        self.matched[listener_id] = key
        changes: dict[str, Any] = {}
        if overrides.topics is not None:
            changes |= {"topics": tuple(overrides.topics), "topic_pattern": None, "partitions": ()}
        if overrides.topic_pattern is not None:
            changes |= {"topic_pattern": overrides.topic_pattern, "topics": (), "partitions": ()}
        for name in (
            "group_id",
            "concurrency",
            "auto_startup",
            "batch",
            "ack_mode",
            "ack_count",
            "ack_time",
            "ordering",
            "max_in_flight",
        ):
            value = getattr(overrides, name)
            if value is not None:
                changes[name] = value
        properties = dict(endpoint.properties) | dict(overrides.properties)
        if overrides.max_poll_records is not None:
            properties["max.poll.records"] = str(overrides.max_poll_records)
        changes["properties"] = properties
        where = f"kafka.listeners.{key}"
        if overrides.rebalance_listener is not None:
            changes["rebalance_listener"] = self._import_component(
                overrides.rebalance_listener,
                f"{where}.rebalance-listener",
                "a rebalance listener",
                _is_rebalance_listener,
                "on_partitions_assigned / on_partitions_revoked (RebalanceListener or "
                "ConsumerSeekAware)",
            )
        if overrides.error_handler is not None:
            changes["error_handler"] = self._import_component(
                overrides.error_handler,
                f"{where}.error-handler",
                "an error handler",
                lambda obj: callable(getattr(obj, "handle", None)),
                "handle(failure) -> ErrorAction (an ErrorHandler)",
            )
        if overrides.interceptors:
            changes["interceptors"] = (
                *endpoint.interceptors,
                *self.interceptors(overrides.interceptors, f"{where}.interceptors"),
            )
        if overrides.seek is not None:
            self.seeks[listener_id] = overrides.seek
        if overrides.offset_store is not None:
            changes["offset_store"] = overrides.offset_store.url
        try:
            return endpoint.with_changes(**changes)
        except ConfigurationError as exc:
            raise ListenerDefinitionError(f"{where}: {exc}") from None

    def interceptors(self, paths: Iterable[str], key: str) -> list[Any]:
        """Listener interceptors named by import path, in order."""
        return [
            self._import_component(
                path,
                key,
                "a listener interceptor",
                is_listener_interceptor,
                "to subclass kafkaboot.RecordInterceptor or kafkaboot.BatchInterceptor",
            )
            for path in paths
        ]

    def _import_component(
        self, path: str, key: str, kind: str, check: Callable[[Any], bool], needs: str
    ) -> Any:
        return import_component(
            path, key, kind, check, needs, instance=self._instance, error=ListenerDefinitionError
        )

    def describe(self, containers: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Each listener's effective settings and where each came from: ``kafka.listeners``
        (with file:line), the decorator, ``kafka.listener.*`` / ``kafka.consumer.*``, or
        the built-in default (for ``kafkaboot config show``)."""
        described = []
        for listener_id, container in containers.items():
            declared = self.declared.get(listener_id, container.endpoint)
            key = self.matched.get(listener_id)
            overrides = self.settings.kafka.listeners.get(key) if key is not None else None
            cs, endpoint = container.settings, container.endpoint

            origin = functools.partial(self._origin, key, overrides)
            seek = self.seeks.get(listener_id)
            rows: dict[str, tuple[Any, str]] = {
                "topics": (
                    ", ".join(endpoint.topics) or endpoint.topic_pattern or "manual partitions",
                    origin(
                        "topics" if endpoint.topics else "topic_pattern",
                        declared.topics or declared.topic_pattern,
                        ("-",),
                    ),
                ),
                "group-id": (
                    cs.group_id,
                    origin("group_id", declared.group_id, ("kafka", "consumer", "group_id")),
                ),
                "concurrency": (
                    cs.concurrency,
                    origin(
                        "concurrency", declared.concurrency, ("kafka", "listener", "concurrency")
                    ),
                ),
                "auto-startup": (
                    cs.auto_startup,
                    origin(
                        "auto_startup", declared.auto_startup, ("kafka", "listener", "auto_startup")
                    ),
                ),
                "batch": (cs.batch, origin("batch", declared.batch, ("kafka", "listener", "type"))),
                "ack-mode": (
                    cs.ack_mode.value,
                    origin("ack_mode", declared.ack_mode, ("kafka", "listener", "ack_mode")),
                ),
                "ack-count": (
                    cs.ack_count,
                    origin("ack_count", declared.ack_count, ("kafka", "listener", "ack_count")),
                ),
                "ack-time": (
                    f"{cs.ack_time:g}s",
                    origin("ack_time", declared.ack_time, ("kafka", "listener", "ack_time")),
                ),
                "ordering": (
                    cs.ordering.value,
                    origin("ordering", declared.ordering, ("kafka", "listener", "ordering")),
                ),
                "max-in-flight": (
                    cs.max_in_flight,
                    origin(
                        "max_in_flight",
                        declared.max_in_flight,
                        ("kafka", "listener", "max_in_flight"),
                    ),
                ),
                "max-poll-records": (
                    cs.consumer_kwargs.get("max_poll_records"),
                    origin(
                        "max_poll_records",
                        declared.properties.get("max.poll.records"),
                        ("kafka", "consumer", "max_poll_records"),
                    ),
                ),
                "rebalance-listener": (
                    _name_of(container.rebalance_listener),
                    origin("rebalance_listener", declared.rebalance_listener, ("-",)),
                ),
                "error-handler": (
                    _name_of(container.error_handler),
                    origin(
                        "error_handler",
                        declared.error_handler,
                        ("kafka", "listener", "error_handler"),
                    ),
                ),
                "seek": (
                    seek.model_dump(mode="json", exclude_defaults=True) if seek else "committed",
                    origin("seek", None, ("-",)),
                ),
                "offset-store": (
                    masked_url(cs.offset_store) if cs.offset_store else "none (offsets in Kafka)",
                    origin("offset_store", declared.offset_store, ("-",)),
                ),
            }
            described.append(
                {
                    "id": listener_id,
                    "settings": {name: {"value": v, "from": o} for name, (v, o) in rows.items()},
                }
            )
        return described

    def _origin(
        self,
        key: str | None,
        overrides: ListenerOverrides | None,
        name: str,
        declared_value: Any,
        global_path: tuple[str, ...],
    ) -> str:
        origins = self.settings.origins
        if overrides is not None and name in overrides.model_fields_set:
            where = origins.get(("kafka", "listeners", str(key), name), "")
            return f"kafka.listeners.{key} ({where})" if where else f"kafka.listeners.{key}"
        if declared_value not in (None, (), {}):
            return "decorator"
        if global_path in origins:
            return f"{'.'.join(global_path).replace('_', '-')} ({origins[global_path]})"
        return "default"

    def check(self, known_ids: Iterable[str]) -> None:
        """Every ``kafka.listeners.<id>`` must name a registered listener.

        Raises:
            ListenerDefinitionError: naming the unknown ids, the closest known ones and all.
        """
        used = set(self.matched.values())
        unknown = [key for key in self.settings.kafka.listeners if key not in used]
        if not unknown:
            return
        known = sorted(known_ids)
        problems = []
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(f"kafka.listeners.{key}: no listener has this id; {hint}")
        raise ListenerDefinitionError(
            " ".join(problems) + f"known ids: {', '.join(known) or 'none'}"
        )


def is_listener_interceptor(component: Any) -> bool:
    return isinstance(component, ListenerInterceptor)


def _is_rebalance_listener(component: Any) -> bool:
    return any(
        callable(getattr(component, name, None))
        for name in ("on_partitions_assigned", "on_partitions_revoked", "on_partitions_lost")
    )


def _name_of(component: Any) -> str | None:
    if component is None:
        return None
    kind = component if inspect.isclass(component) else type(component)
    return f"{kind.__module__}:{kind.__qualname__}"
