# Everyday commands. `make test` works on a fresh machine: it creates .venv and installs first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install lint format test test-unit test-integration reliability demo bench bench-quick bench-install docs docs-install docs-serve clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

lint: install
	$(BIN)/ruff check kafkaboot tests docs bench sample_producer_service sample_consumer_service sample_counting_consumer scripts
	$(BIN)/ruff format --check kafkaboot tests docs bench sample_producer_service sample_consumer_service sample_counting_consumer scripts
	$(BIN)/mypy

format: install
	$(BIN)/ruff format kafkaboot tests docs bench sample_producer_service sample_consumer_service sample_counting_consumer scripts
	$(BIN)/ruff check --fix kafkaboot tests docs bench sample_producer_service sample_consumer_service sample_counting_consumer scripts

# Unit tests and integration tests against a real Apache Kafka broker (fetched with Maven).
test: install
	$(BIN)/python -m pytest

test-unit: install
	$(BIN)/python -m pytest -m "not kafka"

test-integration: install
	$(BIN)/python -m pytest -m kafka

# The reliability suite full-sized (make test runs it CI-sized): faults under load, every
# message counted; prints the table and writes it into docs/reliability.md.
reliability: install
	KAFKABOOT_RELIABILITY=full $(BIN)/python -m pytest tests/reliability --timeout 1800

# The many-sites demo: PRODUCERS services publish MESSAGES over HTTP into one central
# consumer, which stores each in its database (a local broker is started unless
# KAFKA_BOOTSTRAP_SERVERS is set).
# BATCH > 1 posts that many messages per request to /messages/batch.
PRODUCERS ?= 15
MESSAGES ?= 30000
BATCH ?= 1
demo: install
	$(BIN)/python scripts/demo.py --producers $(PRODUCERS) --messages $(MESSAGES) --batch $(BATCH)

# Throughput of a listener and of the template against raw aiokafka (prints tables).
bench-install: $(VENV)/.bench-installed

$(VENV)/.bench-installed: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

# The benchmark suite against raw aiokafka and FastStream, with the ceilings of the machine
# and broker (confluent-kafka's librdkafka; Kafka's own perf tools, which need java and mvn as
# the broker does) (docs/performance.md); writes bench/results/latest.{json,md}.
# bench-quick: every scenario at a tiny size, for CI.
bench: bench-install
	$(BIN)/python -m bench

bench-quick: bench-install
	$(BIN)/python -m bench --quick

# The documentation site (mkdocs.yml) into site/, strict: a broken link or anchor, a link out of
# docs/ or a page missing from the nav fails it. The CLI and configuration references are
# generated while it builds (scripts/docs_reference.py). NO_MKDOCS_2_WARNING quiets the banner
# that Material prints on every run (about its successor; it is not a build warning).
docs-install: $(VENV)/.docs-installed

$(VENV)/.docs-installed: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev,docs]'
	touch $@

docs: docs-install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --clean --site-dir site

# Preview at http://127.0.0.1:8000 while editing the pages.
docs-serve: docs-install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .demo-broker site
