"""Observability: Prometheus metrics (with consumer lag in records and seconds), built on
the interceptors of :mod:`kafkaboot.interceptors`. Importing this package needs no extra;
:mod:`kafkaboot.observability.prometheus` needs ``kafkaboot[metrics]``."""

__all__ = ["WORKERS_DIR_ENV"]

WORKERS_DIR_ENV = "KAFKABOOT_WORKERS_DIR"
"""Set by ``kafkaboot run --workers N`` for its workers: the directory of the sockets on
which they hand each other their metrics (:mod:`kafkaboot.observability.workers`)."""
