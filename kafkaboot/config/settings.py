"""The root settings model: the sections of ``application.yml`` that kafkaboot owns.

``kafka`` (alias ``spring.kafka``), ``server``, ``management`` and ``kafkaboot`` are
validated; every other top-level key belongs to the application and is kept, unvalidated, in
``model_extra``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, PrivateAttr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from kafkaboot.config.bundles import SslBundlesProperties, resolve_bundle
from kafkaboot.config.documents import KeyPath
from kafkaboot.config.kafka import KafkaProperties, Section
from kafkaboot.config.management import ManagementProperties
from kafkaboot.config.types import Duration

__all__ = [
    "ApplicationProperties",
    "AsyncApiProperties",
    "KafkaBootProperties",
    "KafkaBootSettings",
    "LoggingProperties",
    "ProfileProperties",
    "ServerProperties",
]


class ServerProperties(Section):
    """``server.*``: where ``kafkaboot run`` serves the FastAPI app."""

    host: str = "0.0.0.0"  # noqa: S104 - a service listens on all interfaces, as Spring Boot does.
    port: int = Field(default=8080, ge=0, le=65535)
    loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    """uvicorn's event loop; ``auto`` takes uvloop when it is installed."""
    http: Literal["auto", "h11", "httptools"] = "auto"
    """uvicorn's HTTP/1.1 parser; ``auto`` takes httptools when it is installed."""
    gc_freeze: bool = True
    """Once started, move what startup built out of the garbage collector's reach
    (``gc.freeze()``): a full collection then scans only what came after, instead of
    holding the event loop for tens of milliseconds (docs/configuration.md#latency)."""


class ApplicationProperties(Section):
    name: str | None = None
    module: str | None = None
    """What ``kafkaboot run`` starts when no target is given (``package.module[:attr]``)."""


class ProfileProperties(Section):
    active: list[str] = Field(default_factory=list)


class LoggingProperties(Section):
    """``kafkaboot.logging.*``: how the Kafka clients' logs stay readable in an outage."""

    repeat_interval: Duration = timedelta(seconds=30)
    """At most one line per this for each repeated aiokafka warning or error, with the
    count of those held back; 0 turns the limit off."""
    record_context: bool = True
    """Log lines written while a record is handled name its listener, topic, partition and
    offset (and trace), with the handler that ``kafkaboot run`` installs."""


class AsyncApiProperties(Section):
    """``kafkaboot.asyncapi.*``: the service's AsyncAPI document over HTTP."""

    enabled: bool = False
    """Serve ``/asyncapi.json`` and the page ``/asyncapi``. Off unless asked for: the
    document names the brokers, topics and groups to whoever reaches the HTTP port
    (``kafkaboot asyncapi`` writes it either way)."""
    version: str = "1.0.0"
    """The document's ``info.version``: the version of the service's API."""


class KafkaBootProperties(Section):
    """``kafkaboot.*``: settings of kafkaboot itself rather than of the Kafka clients."""

    application: ApplicationProperties = ApplicationProperties()
    asyncapi: AsyncApiProperties = AsyncApiProperties()
    profiles: ProfileProperties = ProfileProperties()
    logging: LoggingProperties = LoggingProperties()


def _kebab_keys(data: Any, parent: str = "") -> Any:
    """Field names to YAML spelling; raw ``properties``/``configs`` maps keep their keys."""
    if isinstance(data, dict):
        if parent in {"properties", "configs"}:
            return dict(data)
        return {str(k).replace("_", "-"): _kebab_keys(v, str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [_kebab_keys(v) for v in data]
    return data


class _Layer(PydanticBaseSettingsSource):
    """One already-read layer of configuration (file, environment or arguments)."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


class KafkaBootSettings(BaseSettings):
    """Validated configuration of a kafkaboot service.

    Build it with :func:`kafkaboot.config.load_settings`, which reads ``application.yml``,
    profiles and the environment; ``KafkaBootSettings()`` alone gives the defaults.
    """

    model_config = SettingsConfigDict(extra="allow", frozen=True, validate_default=True)

    kafka: KafkaProperties = KafkaProperties()
    ssl: SslBundlesProperties = SslBundlesProperties()
    """Spring Boot's ``spring.ssl``: SSL bundles that ``kafka.ssl.bundle`` names."""
    server: ServerProperties = ServerProperties()
    management: ManagementProperties = ManagementProperties()
    kafkaboot: KafkaBootProperties = KafkaBootProperties()

    _origins: dict[KeyPath, str] = PrivateAttr(default_factory=dict)
    _files: tuple[str, ...] = PrivateAttr(default=())

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only explicit values: the loader reads files and the environment itself, because
        # it must know where every value came from to report errors precisely.
        return (init_settings,)

    @model_validator(mode="after")
    def _resolve_ssl_bundles(self) -> KafkaBootSettings:
        kafka, bundles = self.kafka, self.ssl.bundle
        update: dict[str, Any] = {}
        if kafka.ssl.bundle is not None:
            update["ssl"] = resolve_bundle(kafka.ssl, bundles, "kafka.ssl")
        for name in ("producer", "consumer", "admin"):
            client = getattr(kafka, name)
            if client.ssl.bundle is not None:
                ssl = resolve_bundle(client.ssl, bundles, f"kafka.{name}.ssl")
                update[name] = client.model_copy(update={"ssl": ssl})
        if update:
            object.__setattr__(self, "kafka", kafka.model_copy(update=update))
        return self

    @classmethod
    def from_layers(cls, *layers: dict[str, Any]) -> KafkaBootSettings:
        """Validate layers of normalized configuration, highest precedence first."""
        return cls(_build_sources=(tuple(_Layer(cls, layer) for layer in layers), {}))

    def as_tree(self) -> dict[str, Any]:
        """Everything as plain data with keys as written in YAML (``group-id``), the
        application's own sections included; for display and ``${key}`` placeholders."""
        owned = self.model_dump(mode="json", exclude=set(self.model_extra or {}))
        tree: dict[str, Any] = _kebab_keys(owned)
        return tree | dict(self.model_extra or {})

    @property
    def origins(self) -> Mapping[KeyPath, str]:
        """Where each key's value came from (``application.yml:7``, an environment variable)."""
        return self._origins

    @property
    def files(self) -> tuple[str, ...]:
        """The configuration files that were read, in order."""
        return self._files

    @property
    def active_profiles(self) -> list[str]:
        return self.kafkaboot.profiles.active
