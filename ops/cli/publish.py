"""`moodstream publish`: send posts to the posts topic from the demo feed, a folder of your own images with captions,
JSONL, an MVSA-layout directory, or the synthetic feed (tests and benchmarks)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import typer

from moodstream.config import get_settings
from ops.cli._common import console, fail
from ops.progress import duration

NO_BROKER = ("MOODSTREAM_KAFKA_BROKERS is not set. Start a broker with 'moodstream broker' (it prints the "
             "address) and run: export MOODSTREAM_KAFKA_BROKERS=127.0.0.1:9092")


def register(app: typer.Typer) -> None:
    @app.command("publish")
    def publish(
        jsonl: Path | None = typer.Option(None, "--jsonl", exists=True, dir_okay=False, help="one post per line"),
        mvsa: Path | None = typer.Option(None, "--mvsa", exists=True, file_okay=False,
                                         help="MVSA layout: *.tsv + images.zip, or {id}.jpg + {id}.txt"),
        folder: Path | None = typer.Option(None, "--folder", exists=True, file_okay=False,
                                           help="your own images with captions: a .txt beside each image, or a CSV"),
        demo: bool = typer.Option(False, "--demo", help="real photos with our captions and a scripted shift"),
        synthetic: bool = typer.Option(False, "--synthetic", help="generated posts with drifting sentiment"),
        count: int = typer.Option(1000, "--count", min=1, help="posts (demo, synthetic; a limit for --mvsa)"),
        rate: float = typer.Option(0.0, "--rate", min=0, help="posts per second (0 = as fast as possible)"),
        seed: int = typer.Option(0, "--seed", help="seed of the synthetic feed"),
        topic: str | None = typer.Option(None, "--topic", help="default: the posts topic from settings"),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
    ) -> None:
        """Publish posts (key = post id) to the posts topic, with a progress bar and an optional rate limit."""
        from moodstream.kafka import aiokafka_config
        from ops.producers.publisher import publish as run_publish

        chosen = [x for x in (jsonl is not None, mvsa is not None, folder is not None, demo, synthetic) if x]
        if len(chosen) != 1:
            fail("give exactly one of --demo, --folder DIR, --jsonl FILE, --mvsa DIR or --synthetic")
        settings = get_settings()
        if not settings.kafka_brokers:
            fail(NO_BROKER)
        topic = topic or settings.topic_posts
        stamp = False
        if jsonl is not None:
            from ops.producers.jsonl import count_lines, read_jsonl

            items, total = read_jsonl(jsonl), count_lines(jsonl)
        elif mvsa is not None:
            from ops.producers.mvsa import read_mvsa

            items, total, stamp = read_mvsa(mvsa, limit=count), None, True
        elif folder is not None:
            from ops.producers.folder import FolderError, count_folder, read_folder

            try:
                items, total, stamp = read_folder(folder), count_folder(folder), True
            except FolderError as e:
                fail(str(e))
                return
        elif demo:
            from ops.producers.demo import DemoFeed

            items = (p.post for p in DemoFeed(count, seed=seed, rate=rate).posts())
            total, stamp = count, True
        else:
            from ops.producers.synthetic import SyntheticFeed

            items = (p.post for p in SyntheticFeed(count, seed=seed).posts())
            total, stamp = count, True
        started = time.monotonic()
        try:
            sent = asyncio.run(run_publish(items, aiokafka_config(settings), topic, rate=rate, total=total,
                                           progress=progress, stamp=stamp))
        except Exception as e:  # broker unreachable, topic errors, a bad CSV row...
            fail(f"publishing to {settings.kafka_brokers} failed: {type(e).__name__}: {e}")
            return
        took = time.monotonic() - started
        console.print(f"[green]published {sent} posts[/] to [bold]{topic}[/] on {settings.kafka_brokers} in "
                      f"{duration(took)} ({sent / max(took, 1e-9):.1f} posts/s)", highlight=False)
