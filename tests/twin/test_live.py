"""The live twin through a real Mosquitto: kill -9 of the twin and a broker restart mid-stream
lose no observation and apply none twice; bad messages are quarantined with reasons; the load
multiplier estimate converges to the hidden one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from citytwin.twin.live import Broker, LiveTwin, free_port
from citytwin.twin.sensorthings import Datastream, encode, topic

pytestmark = pytest.mark.skipif(not Path("/usr/sbin/mosquitto").exists(),
                                reason="mosquitto not installed")

START = pd.Timestamp("2024-06-03")
STREAMS = {1: Datastream(1, "closure", "roads"),
           **{10 + i: Datastream(10 + i, "load", f"t{i}") for i in range(4)}}
HIDDEN = 1.2
TWIN_SCRIPT = """
import sys
from citytwin.twin.live import LiveTwin, run_live
from citytwin.twin.sensorthings import Datastream
streams = {1: Datastream(1, "closure", "roads"),
           **{10 + i: Datastream(10 + i, "load", f"t{i}") for i in range(4)}}
twin = LiveTwin(streams, sys.argv[1], start="2024-06-03", modelled=lambda o: 100.0)
run_live(twin, "127.0.0.1", int(sys.argv[2]), idle_exit_s=float(sys.argv[3]))
"""


def _feed() -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(0)
    msgs = []
    for k in range(96):  # a day of 15-min meter readings on 4 transformers, modelled 100 kW
        t = (k + 1) * 900.0
        for i in range(4):
            msgs.append((topic(10 + i), encode(START, t, float(100 * HIDDEN * rng.lognormal(0, 0.05)))))
        if k == 30:
            msgs.append((topic(1), encode(START, t, {"edge_id": 7, "state": "closed"})))
    return msgs


def _publish(port: int, msgs: list[tuple[str, bytes]]) -> None:
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub-test", clean_session=False)
    c.connect("127.0.0.1", port)
    c.loop_start()
    infos = [c.publish(t, p, qos=1) for t, p in msgs]
    for i in infos:
        i.wait_for_publish(timeout=10)
    c.loop_stop()
    c.disconnect()


def _twin(out: Path, port: int, idle: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", TWIN_SCRIPT, str(out), str(port), str(idle)],
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})


def _wait_subscribed(out: Path) -> None:
    for _ in range(400):
        if (out / "journal" / "subscribed").exists():
            return
        time.sleep(0.05)
    raise AssertionError("the twin did not subscribe")


def _journal(out: Path, name: str) -> list[dict]:
    p = out / "journal" / name
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def test_live_restarts_lose_nothing_and_apply_nothing_twice(tmp_path: Path) -> None:
    port, out = free_port(), tmp_path / "live"
    broker = Broker(tmp_path / "broker", port).start()
    msgs = _feed()
    a, b, c = msgs[:120], msgs[120:260], msgs[260:]
    try:
        twin = _twin(out, port, idle=60.0)
        _wait_subscribed(out)
        _publish(port, a)
        for _ in range(100):
            if len(_journal(out, "observations.jsonl")) >= 60:
                break
            time.sleep(0.05)
        os.kill(twin.pid, signal.SIGKILL)  # the twin dies mid-stream
        twin.wait()
        _publish(port, b)  # queued for the twin's persistent session
        broker.stop()  # and the broker restarts (SIGTERM: it saves its persistence db)
        broker.start()
        bad = [("v1.1/Datastreams(abc)/Observations", b"{}"),
               (topic(999), encode(START, 900.0, 1.0)),
               (topic(10), b"not json"),
               (topic(11), encode(START, 900.0, -1e9)),
               a[5],  # a duplicate
               (topic(12), encode(START, 60.0, 100.0))]  # out of order
        (out / "journal" / "subscribed").unlink(missing_ok=True)
        twin = _twin(out, port, idle=3.0)
        _wait_subscribed(out)
        _publish(port, c + bad)
        assert twin.wait(timeout=60) == 0
    finally:
        broker.stop()
    applied = _journal(out, "observations.jsonl")
    keys = [(r["ds"], r["t"]) for r in applied]
    assert len(keys) == len(set(keys)) == len(msgs)  # none lost, none twice
    reasons = [r["reason"] for r in _journal(out, "quarantine.jsonl")]
    for word in ("malformed: topic", "unknown datastream 999", "malformed: payload",
                 "invalid value", "duplicate", "out of order"):
        assert any(r.startswith(word) for r in reasons), (word, reasons)
    twin_state = LiveTwin(STREAMS, out, start=START, modelled=lambda o: 100.0)
    lo, hi = twin_state.load.band()
    assert lo <= HIDDEN <= hi and hi - lo < 0.12
    assert twin_state.closed == {7}
    assert pd.read_parquet(sorted((out / "state").glob("part-*.parquet"))[-1])[
        "applied"].iloc[0] == len(msgs)
