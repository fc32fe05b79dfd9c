"""A service that uses kafka_platform_client exactly as a team's would, for the tests that run
it as a process (client_env.ServiceProcess). Its env is its ConfigMap and Secret, nothing else.

    publish <event> <first id> [<pause s>]
                                    publish ids first, first+1, ... until SIGTERM (a pause between
                                    events: a steady trickle); print each id once publish_event
                                    returned; close (flush) and exit 0
    consume <crash after> <batch>   consume KAFKA_CONSUME_TOPICS and print each handled event's
                                    id; with <crash after> > 0, die (no clean-up, no commit) in
                                    the handler of that many-th event
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

from kafka_platform_client import Event, EventConsumer, configure, load_settings, publish_event


def publish(event_type: str, first: int, pause: float = 0.0) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    publisher = configure()
    number = first
    while not stop.is_set():
        publish_event(event_type, {"id": str(number), "user_id": f"user-{number % 7}"})
        print(number, flush=True)
        number += 1
        if pause:
            stop.wait(pause)
    publisher.close()


def consume(crash_after: int, batch_size: int) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    handled = 0

    def handle(event: Event) -> None:
        nonlocal handled
        if crash_after and handled + 1 == crash_after:
            os._exit(3)  # a crash mid-batch: nothing after this line runs, nothing is committed
        print(event.payload["id"], flush=True)
        handled += 1

    # A short session: the crashed instance's partitions move within seconds, not 45 s.
    lively = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}
    consumer = EventConsumer(load_settings(), handle, batch_size=batch_size, config=lively)
    consumer.run(stop)
    consumer.close()


def main(args: list[str]) -> None:
    mode: Any = {
        "publish": lambda: publish(args[1], int(args[2]), float(args[3]) if len(args) > 3 else 0.0),
        "consume": lambda: consume(int(args[1]), int(args[2])),
    }
    mode[args[0]]()


if __name__ == "__main__":
    main(sys.argv[1:])
