"""Reading the summaries that Apache Kafka's perf tools print (their 4.3 output)."""

import pytest

from bench import kafka_tools

PRODUCER_OUTPUT = """\
152431 records sent, 30480.1 records/sec (5.72 MB/sec), 61.3 ms avg latency, 712.0 ms max latency.
200000 records sent, 33178.500332 records/sec (6.23 MB/sec), 58.21 ms avg latency, \
753.00 ms max latency, 52 ms 50th, 80 ms 95th, 87 ms 99th, 95 ms 99.9th.
"""

CONSUMER_OUTPUT = """\
start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, \
rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
2026-12-02 16:48:22:269, 2026-12-02 16:48:25:422, 91.5527, 29.0366, 500000, 158579.1310, \
1008, 2145, 42.6819, 233100.2331
"""


def test_the_producer_summary_is_the_final_line_with_percentiles():
    result = kafka_tools.parse_producer(PRODUCER_OUTPUT)
    assert result == kafka_tools.ProducerResult(200000, 33178.500332, 87.0)


def test_the_consumer_rate_is_the_one_after_the_group_join():
    result = kafka_tools.parse_consumer(CONSUMER_OUTPUT)
    assert result == kafka_tools.ConsumerResult(500000, 233100.2331, 1008.0)


def test_a_warning_between_header_and_values_is_passed_over():
    header, values = CONSUMER_OUTPUT.splitlines()
    output = f"{header}\nWARNING: Exiting before consuming the expected number of records\n{values}"
    assert kafka_tools.parse_consumer(output).records == 500000


@pytest.mark.parametrize("parse", [kafka_tools.parse_producer, kafka_tools.parse_consumer])
def test_output_without_a_summary_is_an_error(parse):
    with pytest.raises(ValueError, match=r"no .*Performance"):
        parse("Exception in thread main: connection refused\n")
