# Everyday commands. `make test` works on a fresh machine: it creates .venv and installs first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install lint format test test-unit test-integration demo bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

lint: install
	$(BIN)/ruff check kafkaboot tests docs bench sample_producer_service sample_consumer_service
	$(BIN)/ruff format --check kafkaboot tests docs bench sample_producer_service sample_consumer_service
	$(BIN)/mypy

format: install
	$(BIN)/ruff format kafkaboot tests docs bench sample_producer_service sample_consumer_service
	$(BIN)/ruff check --fix kafkaboot tests docs bench sample_producer_service sample_consumer_service

# Unit tests and integration tests against a real Apache Kafka broker (fetched with Maven).
test: install
	$(BIN)/python -m pytest

test-unit: install
	$(BIN)/python -m pytest -m "not kafka"

test-integration: install
	$(BIN)/python -m pytest -m kafka

# Start a local broker, do a produce/consume round trip through it, stop it.
demo: install
	@set -e; \
	bootstrap=$$($(BIN)/kafkaboot broker start --data-dir .demo-broker); \
	trap '$(BIN)/kafkaboot broker stop --purge --data-dir .demo-broker' EXIT; \
	$(BIN)/python docs/snippets/round_trip.py "$$bootstrap"

# Throughput of a listener and of the template against raw aiokafka (prints tables).
bench: install
	$(BIN)/python -m bench.listener_throughput
	$(BIN)/python -m bench.send_throughput

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .demo-broker
