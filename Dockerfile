# The sample services (and any kafkaboot service laid out the same way) as one image:
# the command picks the service. Build from the project root:
#   docker build -t kafkaboot-samples .
#   docker run --rm -e KAFKA_BOOTSTRAP_SERVERS=broker:9092 -p 8090:8090 -v central:/data kafkaboot-samples
# deploy/docker-compose.yml builds it and runs one consumer and N producers.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so that editing a service does not reinstall them.
COPY pyproject.toml README.md ./
COPY kafkaboot ./kafkaboot
# The sql extra: the central consumer keeps its events in SQLite or PostgreSQL.
RUN pip install ".[sql]"

COPY sample_producer_service ./sample_producer_service
COPY sample_consumer_service ./sample_consumer_service

# Services listen on every interface inside the container; the port comes from each
# service's application.yml (SERVER_PORT overrides it).
ENV SERVER_HOST=0.0.0.0
# The central consumer's events, in SQLite on a volume unless DATABASE_URL names another
# database (deploy/docker-compose.yml gives it PostgreSQL). The service runs as nobody,
# which cannot write to /app.
RUN mkdir /data && chown nobody /data
VOLUME /data
ENV DATABASE_URL=sqlite+aiosqlite:////data/central.db
USER nobody
EXPOSE 8081 8090

# SIGTERM (docker stop) drains the listeners and flushes the producer before exit.
STOPSIGNAL SIGTERM
CMD ["kafkaboot", "run", "sample_consumer_service", "--config", "sample_consumer_service/application.yml"]
