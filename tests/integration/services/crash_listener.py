"""A listener service for the crash test: appends each handled value to a file.

Usage: python crash_listener.py BOOTSTRAP TOPIC GROUP OUTPUT_FILE
"""

import asyncio
import os
import sys

from kafkaboot import ListenerRegistry, load_settings


async def main(bootstrap: str, topic: str, group: str, output: str) -> None:
    settings = load_settings(
        environ={},
        overrides={
            "kafka": {
                "bootstrap-servers": bootstrap,
                "consumer": {
                    "auto-offset-reset": "earliest",
                    "max-poll-records": 50,
                    # The killed member holds its partitions until this expires.
                    "session-timeout": "6s",
                    "heartbeat-interval": "1s",
                },
            }
        },
    )
    registry = ListenerRegistry(settings, environ={})
    fd = os.open(output, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    @registry.listener(topic, group_id=group)
    async def handle(value: str) -> None:
        os.write(fd, f"{value}\n".encode())  # Unbuffered: survives SIGKILL.
        await asyncio.sleep(0.001)

    await registry.start()
    print("started", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
