"""A service for the observability tests under `kafkaboot run`: a listener whose "bad"
records fail (and go to the dead-letter topic, as configured) and whose "log" records write
a log line, and HTTP endpoints that pause and resume it."""

import logging
import os

from fastapi import FastAPI, Request

from kafkaboot import kafka_listener

TOPIC = os.environ.get("SERVICE_TOPIC", "events")
log = logging.getLogger("observed")

app = FastAPI()


@app.post("/pause")
async def pause(request: Request) -> dict[str, str]:
    request.app.state.kafkaboot.registry.get("observed").pause()
    return {"listener": "paused"}


@app.post("/resume")
async def resume(request: Request) -> dict[str, str]:
    request.app.state.kafkaboot.registry.get("observed").resume()
    return {"listener": "resumed"}


@kafka_listener(TOPIC, id="observed", group_id="${SERVICE_GROUP:observed}")
async def on_value(value: str) -> None:
    if value.startswith("bad"):
        raise ValueError(f"{value} is bad")
    if value.startswith("log"):
        log.warning("asked to log %s", value)
