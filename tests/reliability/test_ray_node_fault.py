"""8. A two-node Ray cluster on this machine (``testkit.ray_cluster``): a head, and a second node with the custom
resource ``model_node`` that the model replicas need (``MOODSTREAM_SERVE_MODEL_RESOURCE``). ``moodstream serve``
deploys the real app onto it; a ``moodstream worker --classifier serve`` reads the live feed. The second node is
SIGKILLed mid-stream (every process of it) and started again: the worker waits, unacknowledged, then resumes; the
audit holds. Real models (the committed pack): the Serve app has no stand-in classifier.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from testkit.harness import Feed, audit, count, invalid_messages, settle
from testkit.stream_helpers import ServeWorker, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
MODELS = ("TextModel", "VisionModel", "FusionModel")


def _why_not() -> str | None:
    if not (ROOT / "serving" / "pack" / "manifest.json").is_file():
        return "serving/pack/manifest.json is missing: the Serve app has no model pack to load"
    if not Path(sys.executable).with_name("ray").is_file():
        return "the ray CLI is not installed next to this Python"
    return None


def _model_placement(cluster: Any) -> dict[str, list[str]]:
    """Model replicas (by deployment) -> the custom resources of their nodes."""
    actors = cluster.actor_nodes()
    return {m: [n for cls, nodes in actors.items() if m in cls for n in nodes] for m in MODELS}


class Serve:
    """``moodstream serve`` against the cluster (it deploys, then holds the app until SIGTERM)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as f:
            self.proc = subprocess.Popen([sys.executable, "-m", "ops.cli", "serve"], cwd=ROOT,
                                         env={**os.environ, **env, "PYTHONUNBUFFERED": "1"}, stdout=f,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"moodstream serve exited ({self.proc.returncode})\n{self.tail()}")
        return "(POST /classify, GET /healthz" in self.tail(10**6)  # printed once every model is loaded

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


# (feed posts/s, seconds the node stays down, feed seconds after it is back). The fast form gets 20 min, not the
# suite's 600 s: a cluster, a deployment of the real models and their reload on the restarted node, on 2 cores.
@pytest.mark.parametrize("form,rate,down_s,tail_s", [pytest.param("fast", 10, 20, 3, id="fast",
                                                                  marks=pytest.mark.timeout(1200)),
                                                     pytest.param("soak", 20, 60, 60, id="soak",
                                                                  marks=pytest.mark.soak)])
def test_model_node_killed_and_restarted(form: str, rate: float, down_s: float, tail_s: float, stream_env,
                                         hostile_server, db, tmp_path) -> None:
    why = _why_not()
    if why:
        pytest.skip(f"two-node Ray fault not runnable: {why}")
    from ops.localhost import free_port
    from testkit.ray_cluster import RayCluster

    cluster = RayCluster(num_cpus=1)
    serve: Serve | None = None
    worker: ServeWorker | None = None
    try:
        cluster.start()
        node = cluster.add_node("models", num_cpus=2, resources={"model_node": 1})
        starts = cluster.join(node, expect=2)  # before any fault: a `ray start` that timed out is started again
        name = f"ms-node-{uuid.uuid4().hex[:6]}"
        env = {**stream_env, **cluster.env, "MOODSTREAM_RAY_ADDRESS": cluster.address,
               "MOODSTREAM_SERVE_APP_NAME": name, "MOODSTREAM_SERVE_PORT": str(free_port()),
               "MOODSTREAM_SERVE_MODEL_RESOURCE": "model_node", "MOODSTREAM_SERVE_NUM_CPUS": "0.1",
               "MOODSTREAM_TORCH_THREADS": "1", "MOODSTREAM_SERVE_RETRIES": "5"}
        serve = Serve(env, tmp_path / "serve.log")
        wait_for(serve.ready, 900, lambda: f"the app deployed and ready\n{serve.tail() if serve else ''}")
        placement = _model_placement(cluster)
        print(f"model replicas by node resource: {placement}")
        assert all(nodes and set(nodes) == {"model_node"} for nodes in placement.values()), placement

        worker = ServeWorker(env, "", tmp_path / "worker.log").start()
        feed = Feed(env, rate=rate, seed=17, invalid=invalid_messages(hostile_server)).start()
        wait_for(lambda: count(db) > 20, 600, lambda: f"first predictions\n{worker.tail()}", worker=worker)

        killed = node.kill()
        killed_at = time.monotonic()
        wait_for(lambda: cluster.alive_nodes() == 1, 300, "the head to see the node dead", worker=worker)
        detected_s = time.monotonic() - killed_at
        time.sleep(max(0.0, down_s - detected_s))
        stalled = count(db)
        time.sleep(2.0)
        assert count(db) == stalled, "rows were written while the only model node was dead"
        assert worker.alive(), worker.tail()

        node.start()
        back_at = time.monotonic()
        down = back_at - killed_at
        wait_for(lambda: count(db) > stalled, 900, lambda: f"rows after the node came back\n{worker.tail()}",
                 worker=worker)
        resumed_s = time.monotonic() - back_at
        after = _model_placement(cluster)
        assert all(nodes and set(nodes) == {"model_node"} for nodes in after.values()), after
        time.sleep(tail_s)
        feed.stop()
        settle(db, env, len(feed.sent_ids), len(feed.sent_invalid), 600, [worker])
        retries = worker.metric("moodstream_classify_retries_total")
        audit(db, env, "Ray model node SIGKILLed, started again (2-node cluster)", form, feed.sent_ids,
              feed.sent_invalid, [detected_s, resumed_s],
              f"recovery = kill -> head sees the node dead; node restarted -> first new row (models reloaded); "
              f"{killed} node processes killed, down {down:.0f} s; "
              f"{'' if starts == 1 else f'the node took {starts} starts to join (before the fault); '}"
              f"{retries:g} classifier retries; real models")
    finally:
        if worker is not None:
            worker.kill()
        if serve is not None:
            serve.kill()
        cluster.close()
