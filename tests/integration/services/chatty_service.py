"""A service for output tests: ``POST /chatter/{count}`` logs ``count`` 1 KB warnings."""

import logging

from fastapi import FastAPI

app = FastAPI()
log = logging.getLogger("chatty")


@app.post("/chatter/{count}")
async def chatter(count: int) -> dict[str, int]:
    for index in range(count):
        log.warning("chatter %d %s", index, "x" * 1000)
    return {"lines": count}
