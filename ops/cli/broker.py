"""`moodstream broker`: run the embedded Tansu broker in the foreground, with our topics created."""

from __future__ import annotations

import signal
import threading

import typer

from moodstream.config import get_settings
from ops.cli._common import console, fail


def register(app: typer.Typer) -> None:
    @app.command("broker")
    def broker(
        port: int = typer.Option(9092, help="loopback port to listen on (0 = any free port)"),
        host: str = typer.Option("127.0.0.1", help="address to listen on"),
    ) -> None:
        """Run the bundled Kafka-compatible broker (Tansu, in-memory) until Ctrl-C."""
        from ops.broker import BrokerError, EmbeddedBroker
        from streams.topics import create_topics

        settings = get_settings()
        try:
            b = EmbeddedBroker(port=port or None, host=host).start()
            create_topics(b.bootstrap, settings.topics.values(), settings.kafka_partitions)
        except BrokerError as e:
            fail(str(e))
            return
        console.print(f"[green]broker ready[/] on [bold]{b.bootstrap}[/] "
                      f"(topics: {', '.join(settings.topics.values())}; "
                      f"{settings.kafka_partitions} partitions). Ctrl-C stops it.")
        console.print(f"use it with: export MOODSTREAM_KAFKA_BROKERS={b.bootstrap}")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.wait(0.5):
            if b.proc is None or b.proc.poll() is not None:
                fail("the broker exited unexpectedly; see " + str(b.log_path))
        b.close()
        console.print("broker stopped")
