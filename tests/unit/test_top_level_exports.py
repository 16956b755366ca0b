"""What a Spring user reaches for first is importable from the package itself."""


def test_the_template_application_and_records_come_from_the_top_level():
    from kafkaboot import KafkaBootApplication, KafkaTemplate, ProducerRecord, SendResult
    from kafkaboot.application import KafkaBootApplication as Application
    from kafkaboot.records import ProducerRecord as Record
    from kafkaboot.records import SendResult as Result
    from kafkaboot.template import KafkaTemplate as Template

    assert (KafkaBootApplication, KafkaTemplate, ProducerRecord, SendResult) == (
        Application,
        Template,
        Record,
        Result,
    )


def test_every_public_name_is_listed():
    import kafkaboot

    for name in ("KafkaBootApplication", "KafkaTemplate", "ProducerRecord", "SendResult"):
        assert name in kafkaboot.__all__
    for name in kafkaboot.__all__:
        assert hasattr(kafkaboot, name), name


def test_new_topic_declarations_come_from_the_top_level():
    from kafkaboot import NewTopic
    from kafkaboot.admin import NewTopic as Declared

    assert NewTopic is Declared
    assert "NewTopic" in __import__("kafkaboot").__all__
