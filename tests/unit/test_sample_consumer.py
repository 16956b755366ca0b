"""The central consumer's events listener, as its module and application.yml declare it:
a batch listener with an offset store, SQLite unless DATABASE_URL says otherwise."""

from pathlib import Path

from kafkaboot import ListenerRegistry, load_settings
from kafkaboot.template import KafkaTemplate

CONFIG = Path(__file__).parents[2] / "sample_consumer_service" / "application.yml"


def _events_container(environ):
    import sample_consumer_service.listeners as service

    settings = load_settings(CONFIG, environ=environ)
    registry = ListenerRegistry(settings, environ=environ, template=KafkaTemplate(settings))
    registry.scan(service)
    registry.check_overrides()
    return service, registry.get("central-events")


def test_the_events_listener_stores_batches_in_sqlite_by_default():
    service, container = _events_container({})
    assert container.settings.batch
    assert container.settings.offset_store == "sqlite+aiosqlite:///central.db"
    assert container.offset_store.group_id == "central-consumer"
    assert isinstance(container.rebalance_listener, service.LoggingRebalance)


def test_database_url_chooses_the_database():
    url = "postgresql+asyncpg://central:secret@db/central"
    _, container = _events_container({"DATABASE_URL": url})
    assert container.settings.offset_store == url
    assert container.offset_store.store.url == url
