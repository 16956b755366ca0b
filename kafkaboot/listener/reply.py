"""Header names of request/reply, the same as Spring Kafka's, so either side can be Java."""

__all__ = ["CORRELATION_ID_HEADER", "REPLY_TOPIC_HEADER"]

REPLY_TOPIC_HEADER = "kafka_replyTopic"
CORRELATION_ID_HEADER = "kafka_correlationId"
