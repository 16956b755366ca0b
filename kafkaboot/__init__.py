"""kafkaboot: Spring-for-Apache-Kafka-style messaging for Python services, on aiokafka."""

from typing import TYPE_CHECKING, Any

from kafkaboot.admin import NewTopic
from kafkaboot.asyncapi.declare import publishes
from kafkaboot.config import KafkaBootSettings, load_settings
from kafkaboot.errorhandling import (
    DeadLetterPublishingRecoverer,
    DefaultErrorHandler,
    ErrorAction,
    ErrorHandler,
    ExponentialBackOff,
    FailedRecord,
    FixedBackOff,
    Recovery,
    dlt_handler,
    retryable_topic,
)
from kafkaboot.errors import (
    AcknowledgmentError,
    BatchListenerFailedError,
    BrokerError,
    ConfigProblem,
    ConfigurationError,
    KafkaAuthenticationError,
    KafkaBootError,
    KafkaSendError,
    PartitionUnavailableError,
    SendBatchError,
    SendOutcomeUnknownError,
    SerializationError,
)
from kafkaboot.interceptors import (
    BatchInterceptor,
    ListenerInterceptor,
    ProducerInterceptor,
    RecordInterceptor,
)
from kafkaboot.listener import (
    AckMode,
    Acknowledgment,
    ConsumerRecord,
    ConsumerSeekAware,
    Header,
    Headers,
    Key,
    ListenerContainer,
    ListenerEndpoint,
    ListenerRegistry,
    Offset,
    Partition,
    RebalanceListener,
    SeekCallback,
    Timestamp,
    Topic,
    TopicPartition,
    TopicPartitionOffset,
    kafka_listener,
    send_to,
)
from kafkaboot.records import ProducerRecord, SendResult
from kafkaboot.template import KafkaTemplate

__all__ = [
    "AckMode",
    "Acknowledgment",
    "AcknowledgmentError",
    "BatchInterceptor",
    "BatchListenerFailedError",
    "BrokerError",
    "ConfigProblem",
    "ConfigurationError",
    "ConsumerRecord",
    "ConsumerSeekAware",
    "DeadLetterPublishingRecoverer",
    "DefaultErrorHandler",
    "ErrorAction",
    "ErrorHandler",
    "ExponentialBackOff",
    "FailedRecord",
    "FixedBackOff",
    "Header",
    "Headers",
    "KafkaAuthenticationError",
    "KafkaBootApplication",
    "KafkaBootError",
    "KafkaBootSettings",
    "KafkaSendError",
    "KafkaTemplate",
    "Key",
    "ListenerContainer",
    "ListenerEndpoint",
    "ListenerInterceptor",
    "ListenerRegistry",
    "NewTopic",
    "Offset",
    "Partition",
    "PartitionUnavailableError",
    "ProducerInterceptor",
    "ProducerRecord",
    "RebalanceListener",
    "RecordInterceptor",
    "Recovery",
    "SeekCallback",
    "SendBatchError",
    "SendOutcomeUnknownError",
    "SendResult",
    "SerializationError",
    "Timestamp",
    "Topic",
    "TopicPartition",
    "TopicPartitionOffset",
    "dlt_handler",
    "kafka_listener",
    "load_settings",
    "publishes",
    "retryable_topic",
    "send_to",
]

__version__ = "0.1.0"

if TYPE_CHECKING:
    from kafkaboot.application import KafkaBootApplication


def __getattr__(name: str) -> Any:
    # The application brings FastAPI and dependency-injector: imported when asked for, so
    # that `import kafkaboot` (a listener module, a unit test) stays light.
    if name == "KafkaBootApplication":
        from kafkaboot.application import KafkaBootApplication

        return KafkaBootApplication
    raise AttributeError(f"module 'kafkaboot' has no attribute {name!r}")
