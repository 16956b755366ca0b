"""The timers behind the histograms: buckets as Prometheus reads them."""

from kafkaboot.observability.metrics import BUCKETS, Timer


def test_buckets_are_cumulative_and_bounds_inclusive():
    timer = Timer()
    for seconds in (0.0005, 0.0006, 0.003, 100.0):
        timer.observe(seconds)
    buckets = dict(timer.buckets())
    assert buckets["0.0005"] == 1  # le: an observation equal to the bound is in it.
    assert buckets["0.001"] == 2
    assert buckets["0.005"] == 3
    assert buckets[repr(BUCKETS[-1])] == 3
    assert buckets["+Inf"] == 4
    assert timer.count == 4
    assert abs(timer.total - 100.0041) < 1e-9
