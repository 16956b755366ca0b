"""The default error handler as ``kafka.listener.error-handler.*`` describes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kafkaboot.config.kafka import BackOffProperties, ErrorHandlerProperties
from kafkaboot.errorhandling.backoff import BackOff, ExponentialBackOff, FixedBackOff
from kafkaboot.errorhandling.dead_letter import DeadLetterPublishingRecoverer
from kafkaboot.errorhandling.handler import DefaultErrorHandler
from kafkaboot.errors import ConfigProblem, ConfigurationError

if TYPE_CHECKING:
    from kafkaboot.template import KafkaTemplate

__all__ = ["backoff_from", "error_handler_from"]


def backoff_from(properties: BackOffProperties) -> BackOff:
    """``multiplier: 1`` (and no jitter) is a fixed back-off; anything else exponential."""
    if properties.multiplier == 1.0 and not properties.jitter:
        return FixedBackOff(properties.initial, max_attempts=properties.max_attempts)
    return ExponentialBackOff(
        initial=properties.initial,
        multiplier=properties.multiplier,
        max_interval=properties.max_interval,
        max_attempts=properties.max_attempts,
        jitter=properties.jitter,
    )


def error_handler_from(
    properties: ErrorHandlerProperties, template: KafkaTemplate | None
) -> DefaultErrorHandler:
    """Raises:
    ConfigurationError: dead letters are enabled but there is no template to send them.
    """
    recoverer = None
    if properties.dead_letter.enabled:
        if template is None:
            raise ConfigurationError(
                [
                    ConfigProblem(
                        "kafka.listener.error-handler.dead-letter.enabled is true but the "
                        "listener registry has no KafkaTemplate to publish dead letters",
                        hint="create it with ListenerRegistry(..., template=template) (the "
                        "ApplicationContainer does), or turn dead letters off",
                    )
                ]
            )
        recoverer = DeadLetterPublishingRecoverer(
            template, topic_suffix=properties.dead_letter.topic_suffix
        )
    return DefaultErrorHandler(backoff_from(properties.backoff), recoverer)
