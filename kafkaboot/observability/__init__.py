"""Observability: Prometheus metrics (with consumer lag in records and seconds), built on
the interceptors of :mod:`kafkaboot.interceptors`. Importing this package needs no extra;
:mod:`kafkaboot.observability.prometheus` needs ``kafkaboot[metrics]``."""
