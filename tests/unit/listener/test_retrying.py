"""Which listeners get retry topics, and the containers they are registered with (no broker)."""

from kafkaboot import ListenerRegistry, dlt_handler, load_settings, retryable_topic
from kafkaboot.errorhandling import RetryTopicConfig
from kafkaboot.errorhandling.retry_topics import due_time
from kafkaboot.listener.endpoint import ListenerEndpoint
from kafkaboot.listener.retrying import retry_config_for


async def plain(value: str) -> None: ...


@retryable_topic(attempts=4)
async def retrying(value: str) -> None: ...


DEFAULT = RetryTopicConfig(attempts=2)


def test_a_listeners_own_retryable_topic_wins_over_the_configured_default():
    config = retry_config_for(ListenerEndpoint(retrying, topics=("t",)), DEFAULT, False)
    assert config is not None
    assert config.attempts == 4


def test_the_configured_default_applies_only_where_retry_topics_work():
    assert retry_config_for(ListenerEndpoint(plain, topics=("t",)), DEFAULT, False) is DEFAULT
    assert retry_config_for(ListenerEndpoint(plain, topics=("t",)), None, False) is None
    batch = ListenerEndpoint(plain, topics=("t",), batch=True)
    assert retry_config_for(batch, DEFAULT, False) is None
    assert retry_config_for(ListenerEndpoint(plain, topics=("t",)), DEFAULT, True) is None
    pattern = ListenerEndpoint(plain, topic_pattern="t-.*")
    assert retry_config_for(pattern, DEFAULT, False) is None


class Orders:
    @retryable_topic(attempts=3)
    async def on_order(self, value: str) -> None: ...

    @dlt_handler(on_order)
    async def on_dead_order(self, value: str) -> None: ...


def test_a_retryable_listener_gets_a_container_per_retry_topic_and_one_for_its_dead_letters():
    registry = ListenerRegistry(load_settings(environ={}), environ={}, template=object())
    registry.register(
        ListenerEndpoint(
            Orders.on_order, topics=("orders",), id="orders", group_id="g", owner=Orders
        )
    )
    found = {
        c.listener_id: (c.endpoint.topics, c.endpoint.group_id, c.not_before, c.endpoint.owner)
        for c in registry
    }
    assert found == {
        "orders": (("orders",), "g", None, Orders),
        "orders-retry-0": (("orders-retry-0",), "g-retry-0", due_time, Orders),
        "orders-retry-1": (("orders-retry-1",), "g-retry-1", due_time, Orders),
        "orders-dlt": (("orders-dlt",), "g-dlt", None, Orders),  # Same class: same instance.
    }
    main, *retries, _ = registry
    assert all(r.endpoint.error_handler is main.endpoint.error_handler for r in retries)
