"""Benchmarks: each prints a table comparing kafkaboot with raw aiokafka doing the same work."""
