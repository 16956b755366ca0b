"""ListenerRegistry: endpoints in, running containers out (Spring's
``KafkaListenerEndpointRegistry``)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kafkaboot.config.placeholders import UnresolvedPlaceholder, resolve_text
from kafkaboot.config.properties import map_properties, validate_properties
from kafkaboot.config.settings import KafkaBootSettings
from kafkaboot.config.types import to_ms
from kafkaboot.errorhandling.configured import error_handler_from
from kafkaboot.errorhandling.handler import ErrorHandler
from kafkaboot.errors import KafkaBootError, ListenerDefinitionError
from kafkaboot.listener.acks import AckMode
from kafkaboot.listener.binding import bind
from kafkaboot.listener.container import ContainerSettings, ListenerContainer
from kafkaboot.listener.decorator import SEND_TO_ATTRIBUTE, declared_endpoints, kafka_listener
from kafkaboot.listener.endpoint import ListenerEndpoint
from kafkaboot.serialization import Deserializer, deserializer_for

__all__ = ["ListenerRegistry"]

log = logging.getLogger("kafkaboot.listener")
InstanceFactory = Callable[[type], Any]


class ListenerRegistry:
    """Builds one :class:`ListenerContainer` per registered endpoint and runs them.

    Args:
        settings: configuration (default: built-in defaults).
        instance_factory: creates the instance of a class whose methods are listeners
            (default: ``cls()``); the application passes one that asks the DI container.
        error_handler: for listeners that name none (default: a ``DefaultErrorHandler`` as
            ``kafka.listener.error-handler.*`` describes it).
        environ: for ``${VAR}`` placeholders in topics and group ids (default: os.environ).
        template: the application's ``KafkaTemplate``, for replies and transactions.
    """

    def __init__(
        self,
        settings: KafkaBootSettings | None = None,
        *,
        instance_factory: InstanceFactory | None = None,
        error_handler: ErrorHandler | None = None,
        environ: Mapping[str, str] | None = None,
        template: Any = None,
    ) -> None:
        self.settings = settings or KafkaBootSettings()
        self.template = template
        """A ``KafkaTemplate`` for ``@send_to`` replies; when it is transactional
        (``kafka.producer.transaction-id-prefix``), listeners run in transactions."""
        self._instance_factory = instance_factory or (lambda cls: cls())
        self._error_handler = error_handler
        self._environ = os.environ if environ is None else environ
        self._containers: dict[str, ListenerContainer] = {}
        self._instances: dict[type, Any] = {}
        self._tree: dict[str, Any] | None = None

    # -- registration -------------------------------------------------------------------

    def register(self, endpoint: ListenerEndpoint) -> ListenerContainer:
        """Build the container for ``endpoint``; it starts with :meth:`start`.

        Raises:
            ListenerDefinitionError: the signature, options or placeholders cannot work,
                or the id is taken.
        """
        endpoint = self._resolve_placeholders(endpoint)
        listener_id = endpoint.listener_id
        if listener_id in self._containers:
            raise ListenerDefinitionError(
                f"listener id {listener_id!r} is registered twice; give one of them id=..."
            )
        settings = self._container_settings(endpoint)
        reply_to = endpoint.send_to
        if reply_to is None:
            reply_to = getattr(endpoint.handler, SEND_TO_ATTRIBUTE, None)
        if reply_to is not None and self.template is None:
            raise ListenerDefinitionError(
                f"listener {listener_id} sends its results (send_to) but the registry has no "
                "KafkaTemplate; create it with ListenerRegistry(..., template=template) (the "
                "ApplicationContainer does)"
            )
        if settings.transactional and settings.ack_mode.is_manual:
            raise ListenerDefinitionError(
                f"listener {listener_id}: with transactions (kafka.producer."
                "transaction-id-prefix) each record's offset commits in its transaction, so a "
                "manual ack mode cannot apply; use an automatic ack mode"
            )
        handler = endpoint.handler
        if endpoint.owner is not None:
            handler = handler.__get__(self.instance(endpoint.owner), endpoint.owner)
        key_deserializer, value_deserializer = self._deserializers(endpoint)
        invoker = bind(
            handler,
            name=listener_id,
            batch=settings.batch,
            manual_ack=settings.ack_mode.is_manual,
            key_deserializer=key_deserializer,
            value_deserializer=value_deserializer,
        )
        container = ListenerContainer(
            endpoint,
            invoker,
            settings,
            error_handler=self._component(endpoint.error_handler) or self._default_error_handler(),
            rebalance_listener=self._component(endpoint.rebalance_listener),
            template=self.template,
            send_to=reply_to,
        )
        self._containers[listener_id] = container
        return container

    def scan(self, *targets: Any) -> list[ListenerContainer]:
        """Register every ``@kafka_listener`` of the given modules, classes or functions."""
        return [self.register(e) for target in targets for e in declared_endpoints(target)]

    def listener(self, *topics: str, **options: Any) -> Callable[[Any], Any]:
        """``@registry.listener("topic", group_id=...)``: declare and register in one step."""
        declare = kafka_listener(*topics, **options)

        def decorate(handler: Any) -> Any:
            declare(handler)
            self.register(declared_endpoints(handler)[-1])
            return handler

        return decorate

    def _settings_tree(self) -> dict[str, Any]:
        if self._tree is None:
            self._tree = self.settings.as_tree()
        return self._tree

    def _resolve_placeholders(self, endpoint: ListenerEndpoint) -> ListenerEndpoint:
        def resolve(text: str | None) -> str | None:
            if text is None:
                return None
            try:
                return resolve_text(text, self._environ, self._settings_tree())
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
        )

    def _container_settings(self, endpoint: ListenerEndpoint) -> ContainerSettings:
        kafka = self.settings.kafka
        listener, consumer = kafka.listener, kafka.consumer
        group_id = endpoint.group_id or consumer.group_id
        if group_id is None and not endpoint.partitions:
            raise ListenerDefinitionError(
                f"listener {endpoint.listener_id}: a group subscription needs a group id; pass "
                "group_id=... or set kafka.consumer.group-id"
            )
        try:
            extra = map_properties(validate_properties(dict(endpoint.properties)), "consumer")
        except ValueError as exc:
            raise ListenerDefinitionError(
                f"listener {endpoint.listener_id}: properties: {exc}"
            ) from None
        kwargs = kafka.consumer_kwargs() | extra
        kwargs.pop("client_id", None)
        kwargs.pop("group_id", None)
        prefix = endpoint.client_id_prefix or consumer.client_id or kafka.client_id
        return ContainerSettings(
            group_id=group_id,
            concurrency=endpoint.concurrency or listener.concurrency or 1,
            ack_mode=AckMode(endpoint.ack_mode or listener.ack_mode),
            ack_count=endpoint.ack_count or listener.ack_count,
            ack_time=to_ms(endpoint.ack_time or listener.ack_time) / 1000,
            poll_timeout=to_ms(listener.poll_timeout) / 1000,
            shutdown_timeout=to_ms(listener.shutdown_timeout) / 1000,
            auto_startup=listener.auto_startup
            if endpoint.auto_startup is None
            else endpoint.auto_startup,
            batch=(listener.type == "batch") if endpoint.batch is None else endpoint.batch,
            consumer_kwargs=kwargs,
            client_id_prefix=prefix or f"kafkaboot-{endpoint.listener_id.rsplit('.', 1)[-1]}",
            missing_topics_fatal=listener.missing_topics_fatal,
            transaction_id_prefix=self._transaction_prefix(group_id),
        )

    def _transaction_prefix(self, group_id: str | None) -> str | None:
        """Listeners run in transactions when the template is transactional (as Spring Boot
        makes containers transactional once transaction-id-prefix is set)."""
        prefix = self.settings.kafka.producer.transaction_id_prefix
        if prefix is None or group_id is None or self.template is None:
            return None
        if not getattr(self.template, "transactional", False):
            return None
        return prefix

    def _deserializers(
        self, endpoint: ListenerEndpoint
    ) -> tuple[Deserializer | None, Deserializer | None]:
        consumer = self.settings.kafka.consumer
        properties = {**consumer.properties, **endpoint.properties}
        found: list[Deserializer | None] = []
        for part, name in (
            ("key", consumer.key_deserializer),
            ("value", consumer.value_deserializer),
        ):
            delegate = properties.get(f"spring.deserializer.{part}.delegate.class")
            found.append(deserializer_for(name, delegate) if name else None)
        return found[0], found[1]

    def instance(self, owner: type) -> Any:
        """The one instance of a listener class (or component), created on first use."""
        if owner not in self._instances:
            self._instances[owner] = self._instance_factory(owner)
        return self._instances[owner]

    def _component(self, value: Any) -> Any:
        """An error handler or rebalance listener given as an instance or a class."""
        if inspect.isclass(value):
            return self.instance(value)
        return value

    def _default_error_handler(self) -> ErrorHandler:
        if self._error_handler is None:
            self._error_handler = error_handler_from(
                self.settings.kafka.listener.error_handler, self.template
            )
        return self._error_handler

    # -- lookup -----------------------------------------------------------------------------

    def get(self, listener_id: str) -> ListenerContainer:
        """The container of a listener.

        Raises:
            KafkaBootError: no listener has that id (the message lists the known ids).
        """
        try:
            return self._containers[listener_id]
        except KeyError:
            known = ", ".join(sorted(self._containers)) or "none"
            raise KafkaBootError(
                f"no listener with id {listener_id!r}; known ids: {known}"
            ) from None

    @property
    def containers(self) -> list[ListenerContainer]:
        return list(self._containers.values())

    def __iter__(self) -> Iterator[ListenerContainer]:
        return iter(self._containers.values())

    def __len__(self) -> int:
        return len(self._containers)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every container whose auto-startup is on; the others start on request."""
        chosen = [
            c for c in self._containers.values() if c.settings.auto_startup and not c.is_running
        ]
        results = await asyncio.gather(*(c.start() for c in chosen), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.stop()
            raise failures[0]

    async def stop(self, timeout: float | None = None) -> None:
        """Stop every container (each finishes in-flight work within its shutdown timeout)."""
        await asyncio.gather(
            *(c.stop(timeout) for c in self._containers.values()), return_exceptions=True
        )

    async def __aenter__(self) -> ListenerRegistry:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
