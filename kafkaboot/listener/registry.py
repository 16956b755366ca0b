"""ListenerRegistry: endpoints in, running containers out (Spring's
``KafkaListenerEndpointRegistry``)."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kafkaboot.config.settings import KafkaBootSettings
from kafkaboot.errorhandling.configured import error_handler_from
from kafkaboot.errorhandling.handler import ErrorHandler
from kafkaboot.errorhandling.retry_topics import RetryTopicConfig, retry_config_from
from kafkaboot.errorhandling.topics import TopicCreator
from kafkaboot.errors import KafkaBootError, ListenerDefinitionError
from kafkaboot.interceptors import ListenerInterceptor
from kafkaboot.listener.binding import bind
from kafkaboot.listener.container import ListenerContainer
from kafkaboot.listener.decorator import SEND_TO_ATTRIBUTE, declared_endpoints, kafka_listener
from kafkaboot.listener.endpoint import ListenerEndpoint
from kafkaboot.listener.events import ContainerEvent, ContainerEvents
from kafkaboot.listener.overrides import ConfiguredListeners
from kafkaboot.listener.placeholders import resolve_endpoint
from kafkaboot.listener.retrying import NotBefore, retry_config_for, retrying_endpoints
from kafkaboot.listener.settings import ContainerSettings, effective_settings
from kafkaboot.listener.stored import stored_record_invoker
from kafkaboot.listener.stores import OffsetStores
from kafkaboot.serialization import Deserializer, deserializer_for

__all__ = ["ListenerRegistry"]

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
        self._retry_default = retry_config_from(self.settings.kafka.retry.topic)
        self._configured = ConfiguredListeners(self.settings, self.instance)
        self._configured_interceptors: list[ListenerInterceptor] = self._configured.interceptors(
            self.settings.kafka.listener.interceptors, "kafka.listener.interceptors"
        )
        self._interceptors = list(self._configured_interceptors)
        self.events = ContainerEvents(lambda: list(self._containers.values()))
        """Container events: ``on_event`` / ``event_listener`` register callbacks."""
        """Every listener's interceptors (in code, then ``kafka.listener.interceptors``),
        before each listener's own; containers see later additions too."""
        self._derived_topics: list[tuple[str, list[str]]] = []
        """Retry and dead-letter topics to create at start, with their main topic."""
        self._stores = OffsetStores()

    # -- registration -------------------------------------------------------------------

    def add_interceptor(self, interceptor: ListenerInterceptor, *, first: bool = False) -> None:
        """Run ``interceptor`` (a ``RecordInterceptor`` or ``BatchInterceptor``) for every
        listener, after those added before it (``first``: before all of them) and before
        ``kafka.listener.interceptors`` and each listener's own; it applies from the next
        start of a container.

        Raises:
            TypeError: it is not a listener interceptor.
        """
        if not isinstance(interceptor, ListenerInterceptor):
            raise TypeError(
                f"{interceptor!r} is not a listener interceptor; subclass "
                "kafkaboot.RecordInterceptor or kafkaboot.BatchInterceptor"
            )
        before_configured = len(self._interceptors) - len(self._configured_interceptors)
        self._interceptors.insert(0 if first else before_configured, interceptor)

    def on_event(self, callback: Callable[[Any], Any], *kinds: type[ContainerEvent]) -> None:
        """Call ``callback(event)`` for container events of ``kinds`` (default: all); see
        :mod:`kafkaboot.listener.events`."""
        self.events.on_event(callback, *kinds)

    def event_listener(
        self, *kinds: type[ContainerEvent]
    ) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
        """Decorator form of :meth:`on_event`."""
        return self.events.event_listener(*kinds)

    @property
    def interceptors(self) -> list[ListenerInterceptor]:
        """Every listener's interceptors, in the order they run."""
        return self._interceptors

    def register(self, endpoint: ListenerEndpoint) -> ListenerContainer:
        """Build the container for ``endpoint``; it starts with :meth:`start`. A
        ``@retryable_topic`` listener (or every listener, with ``kafka.retry.topic.enabled``)
        also gets a container per retry topic and, with a ``@dlt_handler``, one for its
        dead-letter topic.

        Raises:
            ListenerDefinitionError: the signature, options or placeholders cannot work,
                or the id is taken.
        """
        endpoint = self._configured.apply(
            resolve_endpoint(endpoint, self._environ, self._settings_tree())
        )
        retry = retry_config_for(endpoint, self._retry_default, self._batch_default())
        if retry is not None:
            return self._register_retrying(endpoint, retry)
        return self._register(endpoint)

    # -- kafka.listeners.<id> ---------------------------------------------------------------

    def describe(self) -> list[dict[str, Any]]:
        """Each listener's effective settings and where each came from (for
        ``kafkaboot config show``)."""
        return self._configured.describe(self._containers)

    def check_overrides(self) -> None:
        """Every ``kafka.listeners.<id>`` must name a registered listener.

        Raises:
            ListenerDefinitionError: naming the unknown ids, the closest known ones and all.
        """
        self._configured.check(self._containers)

    def _register_retrying(
        self, endpoint: ListenerEndpoint, config: RetryTopicConfig
    ) -> ListenerContainer:
        group = endpoint.group_id or self.settings.kafka.consumer.group_id
        planned = retrying_endpoints(endpoint, config, self.template, group, self._batch_default())
        main, *_ = [self._register(e, not_before) for e, not_before in planned]
        self._derived_topics += [(t, config.derived_topics(t)) for t in endpoint.topics]
        return main

    def _batch_default(self) -> bool:
        return self.settings.kafka.listener.type == "batch"

    def _register(
        self,
        endpoint: ListenerEndpoint,
        not_before: NotBefore | None = None,
    ) -> ListenerContainer:
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
        conflict = settings.conflict()
        if conflict is not None:
            raise ListenerDefinitionError(f"listener {listener_id}: {conflict}")
        handler = endpoint.handler
        if endpoint.owner is not None:
            handler = handler.__get__(self.instance(endpoint.owner), endpoint.owner)
        key_deserializer, value_deserializer = self.deserializers(endpoint)
        stored = self._stores.for_listener(endpoint, settings, reply_to is not None)
        invoker = self._bind(
            endpoint,
            handler,
            settings,
            key_deserializer,
            value_deserializer,
            None if stored is None else stored.store.session_type,
        )
        if stored is not None and not settings.batch:
            invoker = stored_record_invoker(invoker, stored)
        own = [self._component(i) for i in endpoint.interceptors]
        for interceptor in own:
            if not isinstance(interceptor, ListenerInterceptor):
                raise ListenerDefinitionError(
                    f"listener {listener_id}: interceptor {interceptor!r} is not a listener "
                    "interceptor; subclass kafkaboot.RecordInterceptor or "
                    "kafkaboot.BatchInterceptor"
                )
        container = ListenerContainer(
            endpoint,
            invoker,
            settings,
            error_handler=self._component(endpoint.error_handler) or self._default_error_handler(),
            rebalance_listener=self._component(endpoint.rebalance_listener),
            template=self.template,
            send_to=reply_to,
            not_before=not_before,
            initial_seek=self._configured.seeks.get(listener_id),
            interceptors=(self._interceptors, own),
            publish=self.events.publish,
            offset_store=stored,
        )
        self._containers[listener_id] = container
        return container

    def _bind(
        self,
        endpoint: ListenerEndpoint,
        handler: Callable[..., Any],
        settings: ContainerSettings,
        key_deserializer: Deserializer | None,
        value_deserializer: Deserializer | None,
        session_type: type | None,
    ) -> Any:
        try:
            return bind(
                handler,
                name=endpoint.listener_id,
                batch=settings.batch,
                manual_ack=settings.ack_mode.is_manual,
                key_deserializer=key_deserializer,
                value_deserializer=value_deserializer,
                properties={
                    **self.settings.kafka.properties,
                    **self.settings.kafka.consumer.properties,
                    **endpoint.properties,
                },
                session_type=session_type,
            )
        except ListenerDefinitionError as exc:
            key = self._configured.matched.get(endpoint.listener_id)
            if key is None or self.settings.kafka.listeners[key].ack_mode is None:
                raise
            overrides = self.settings.kafka.listeners[key]
            origin = self.settings.origins.get(("kafka", "listeners", key, "ack_mode"), "")
            raise ListenerDefinitionError(
                f"{exc} (ack-mode {overrides.ack_mode} comes from kafka.listeners.{key}."
                f"ack-mode{f' at {origin}' if origin else ''})"
            ) from None

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

    def _container_settings(self, endpoint: ListenerEndpoint) -> ContainerSettings:
        group_id = endpoint.group_id or self.settings.kafka.consumer.group_id
        return effective_settings(endpoint, self.settings, self._transaction_prefix(group_id))

    def _transaction_prefix(self, group_id: str | None) -> str | None:
        """Listeners run in transactions when the template is transactional (as Spring Boot
        makes containers transactional once transaction-id-prefix is set)."""
        prefix = self.settings.kafka.producer.transaction_id_prefix
        if prefix is None or group_id is None or self.template is None:
            return None
        if not getattr(self.template, "transactional", False):
            return None
        return prefix

    def deserializers(
        self, endpoint: ListenerEndpoint
    ) -> tuple[Deserializer | None, Deserializer | None]:
        """The key and value deserializers of ``endpoint``'s unannotated key and payload
        (``None``: none configured, the bytes as they are); the AsyncAPI document reads them
        too."""
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
        """Start every container whose auto-startup is on; the others start on request.

        Raises:
            ListenerDefinitionError: ``kafka.listeners`` names an id no listener has.
        """
        self.check_overrides()
        chosen = [
            c for c in self._containers.values() if c.settings.auto_startup and not c.is_running
        ]
        if self._derived_topics:
            await self._create_derived_topics()
        await self._stores.start()
        self.events.start()
        results = await asyncio.gather(*(c.start() for c in chosen), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.stop()
            raise failures[0]

    async def _create_derived_topics(self) -> None:
        creator = TopicCreator(self.template)
        for main, derived in self._derived_topics:
            await creator.ensure_like(main, derived)

    async def stop(self, timeout: float | None = None) -> None:
        """Stop every container (each finishes in-flight work within its shutdown timeout)."""
        await asyncio.gather(
            *(c.stop(timeout) for c in self._containers.values()), return_exceptions=True
        )
        await self.events.stop()
        await self._stores.stop()

    async def __aenter__(self) -> ListenerRegistry:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
