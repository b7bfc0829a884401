"""The live twin tracking a hidden truth through a real Mosquitto, with forecasts, alerts and
the maintenance ranking; the twin is killed (SIGKILL) and the broker restarted mid-stream.

The truth: the grid example city's day with a hidden demand multiplier (1.15) and one
transformer whose effective rating is 30 % of its nameplate; the twin knows neither."""

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

from citytwin import examples
from citytwin.energy.aging import ThermalParams, hot_spot_series
from citytwin.energy.engine import EnergyParams
from citytwin.twin.forecast import EnergySetup, simulate
from citytwin.twin.live import Broker, LiveTwin, free_port, read_parts
from citytwin.twin.sensorthings import encode, topic
from citytwin.twin.thermal import ThermalState, top_oil_series
from citytwin.twin.truth import Hidden, truth_feed

HAVE_MOSQUITTO = Path("/usr/sbin/mosquitto").exists()
M_TRUE, FACTOR = 1.15, 0.3
TWIN_SCRIPT = """
import json, sys
from citytwin import examples
from citytwin.energy.engine import EnergyParams
from citytwin.twin.forecast import EnergySetup
from citytwin.twin.live import LiveTwin, run_live
from citytwin.twin.truth import read_streams
setup = EnergySetup(examples.grid(), EnergyParams(power_flow=False), seed=1)
twin = LiveTwin(read_streams(sys.argv[4]), sys.argv[1], start=setup.start, setup=setup,
                replications=3, window_s=10800.0)
run_live(twin, "127.0.0.1", int(sys.argv[2]), idle_exit_s=float(sys.argv[3]))
"""


def _setup() -> EnergySetup:
    return EnergySetup(examples.grid(), EnergyParams(power_flow=False), seed=1)


def test_top_oil_model_is_the_aging_model() -> None:
    rng = np.random.default_rng(3)
    k = rng.uniform(0.2, 1.4, (40, 3))
    amb = rng.uniform(5, 30, 40)
    top, hot = top_oil_series(k, amb, step_s=900.0)
    np.testing.assert_allclose(hot, hot_spot_series(k, amb, step_s=900.0), rtol=1e-12)
    assert np.all(top < hot)


def test_thermal_ekf_finds_a_reduced_rating_from_top_oil() -> None:
    """A unit heating like one rated at 40 % of its nameplate: g -> 2.5 within its band; an
    unfaulted one stays at 1."""
    p = ThermalParams()
    t = np.arange(96) * 900.0
    k = 0.25 + 0.2 * np.sin(2 * np.pi * t / 86_400.0 - 2.0) ** 2  # of the nameplate
    amb = 15.0 + 5 * np.sin(2 * np.pi * t / 86_400.0)
    rng = np.random.default_rng(0)
    th = ThermalState(["bad", "ok"], params=p, q_per_h=0.1)
    top_bad, _ = top_oil_series((k / 0.4)[:, None], amb, step_s=900.0)
    top_ok, _ = top_oil_series(k[:, None], amb, step_s=900.0)
    for i in range(96):
        th.observe("bad", t[i], top_bad[i, 0] + rng.normal(0, 0.5), loading_pu=k[i],
                   ambient_c=amb[i])
        th.observe("ok", t[i], top_ok[i, 0] + rng.normal(0, 0.5), loading_pu=k[i],
                   ambient_c=amb[i])
    sd = th.g_sd()
    assert abs(th.g[0] - 2.5) < 1.96 * sd[0] + 1e-9 and sd[0] < 0.2
    assert abs(th.g[1] - 1.0) < 1.96 * sd[1] + 1e-9
    assert th.aged_h[0] > 100 * th.aged_h[1]  # the hot unit ages far faster


def _publish(port: int, msgs: list[tuple[str, bytes]]) -> None:
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub-forecast",
                    clean_session=False)
    c.max_inflight_messages_set(200)
    c.connect("127.0.0.1", port)
    c.loop_start()
    infos = [c.publish(t, p, qos=1) for t, p in msgs]
    for i in infos:
        i.wait_for_publish(timeout=30)
    c.loop_stop()
    c.disconnect()


def _twin(out: Path, port: int, idle: float, streams: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", TWIN_SCRIPT, str(out), str(port), str(idle),
                             str(streams)],
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})


def _wait(pred, what: str, n: int = 600) -> None:  # type: ignore[no-untyped-def]
    for _ in range(n):
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(what)


def _journal(out: Path) -> list[dict]:
    p = out / "journal" / "observations.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()] if p.exists() else []


@pytest.mark.skipif(not HAVE_MOSQUITTO, reason="mosquitto not installed")
def test_live_twin_tracks_hidden_truth_and_alerts_before_the_overload(tmp_path: Path) -> None:
    setup = _setup()
    nominal = simulate(setup)
    fault = nominal.trafo_ids[int(np.argmax(nominal.loading_pct.mean(axis=0)))]
    recs, streams, truth = truth_feed(setup, Hidden(M_TRUE, fault, FACTOR))
    j = truth.trafo_ids.index(fault)
    over = np.flatnonzero(truth.loading_pct[:, j] > 100.0)
    assert over.size, "the hidden fault must overload its transformer in the truth"
    overload_s = float(truth.time_s[over[0]] - setup.dt_s)  # start of the first overloaded step
    others = [i for i in range(len(truth.trafo_ids)) if i != j]
    assert truth.loading_pct[:, others].max() < 100.0
    spath = tmp_path / "streams.json"
    spath.write_text(json.dumps([{"id": s.id, "kind": s.kind, "key": s.key}
                                 for s in streams.values()]))
    msgs = [(topic(r["datastream"]), encode(setup.start, r["time_s"], r["result"])) for r in recs]
    a, b, c = msgs[: len(msgs) // 3], msgs[len(msgs) // 3: len(msgs) // 2], msgs[len(msgs) // 2:]

    port, out = free_port(), tmp_path / "live"
    broker = Broker(tmp_path / "broker", port).start()
    try:
        twin = _twin(out, port, 60.0, spath)
        _wait(lambda: (out / "journal" / "subscribed").exists(), "the twin did not subscribe")
        _publish(port, a)
        _wait(lambda: len(list((out / "forecast").glob("issue-*.parquet"))) >= 2,
              "no forecast written")
        os.kill(twin.pid, signal.SIGKILL)  # the twin dies mid-stream (between forecasts or in one)
        twin.wait()
        _publish(port, b)  # queued for the twin's persistent session
        broker.stop()  # the broker restarts
        broker.start()
        (out / "journal" / "subscribed").unlink(missing_ok=True)
        twin = _twin(out, port, 3.0, spath)
        _wait(lambda: (out / "journal" / "subscribed").exists(), "the twin did not resubscribe")
        _publish(port, c)
        assert twin.wait(timeout=120) == 0
    finally:
        broker.stop()

    keys = [(r["ds"], r["t"]) for r in _journal(out)]
    assert len(keys) == len(set(keys)) == len(recs)  # none lost, none applied twice

    # the forecasts equal those of a twin that was never interrupted
    ref = LiveTwin(streams, tmp_path / "ref", start=setup.start, setup=_setup(), replications=3,
                   window_s=10800.0)
    for tp, p in msgs:
        ref.ingest(tp, p)
    ref.commit()
    windows = sorted(read_parts(out, "forecast")["issue_s"].unique())
    assert windows == [10800.0 * k for k in range(1, 8)]
    for name in ("forecast", "alerts", "maintenance"):
        pd.testing.assert_frame_equal(read_parts(out, name), read_parts(tmp_path / "ref", name),
                                      rtol=1e-6)

    # the estimates converge to the hidden truth, within their bands
    state = read_parts(out, "state")
    last = state[state["issue_s"] == state["issue_s"].max()].set_index("asset_id")
    lo, hi = last["demand_multiplier_lo"].iloc[0], last["demand_multiplier_hi"].iloc[0]
    assert lo <= M_TRUE <= hi and hi - lo < 0.1
    g, sd = last.loc[fault, "rating_factor_g"], last.loc[fault, "rating_factor_g_sd"]
    assert abs(g - 1 / FACTOR) <= 1.96 * sd and sd < 0.15
    assert (last.drop(index=fault)["rating_factor_g"] < 1.3).all()

    # the fault's overload alert fires before the overload, and only for it
    al = read_parts(out, "alerts")
    ov = al[al["kind"] == "overload"]
    assert set(ov["asset_id"]) == {fault}
    first = ov.sort_values("issue_s").iloc[0]
    assert first["issue_s"] < overload_s and first["first_s"] >= first["issue_s"]
    assert first["recommendation"].startswith(f"overload of {fault}")
    # and the maintenance ranking puts it first, with the largest loss of life
    mt = read_parts(out, "maintenance")
    top = mt[mt["issue_s"] == first["issue_s"]].sort_values("rank").iloc[0]
    assert top["asset_id"] == fault
    lol = mt[mt["issue_s"] == mt["issue_s"].max()].set_index("asset_id")["loss_of_life_h"]
    assert lol.idxmax() == fault


def test_loop_detectors_track_a_hidden_traffic_multiplier(tmp_path: Path) -> None:
    """Loop-detector counts of a traffic run with 1.3 × the trips (another seed): the twin's
    traffic demand multiplier converges to it within its band; the energy one stays at 1."""
    from citytwin.traffic.params import TrafficParams

    setup = EnergySetup(examples.grid(), EnergyParams(power_flow=False), seed=1,
                        traffic=TrafficParams())
    recs, streams, _ = truth_feed(setup, Hidden(1.0, traffic_multiplier=1.3, loops=10))
    assert sum(s.kind == "count" for s in streams.values()) == 10
    twin = LiveTwin(streams, tmp_path / "live", start=setup.start, setup=setup, window_s=1e7)
    for r in recs:
        assert twin.ingest(topic(r["datastream"]), encode(setup.start, r["time_s"],
                                                          r["result"])) is None
    assert twin.traffic is not None and twin.traffic.n > 100
    lo, hi = twin.traffic.band()
    assert lo <= 1.3 <= hi and hi - lo < 0.3 and lo > 1.05  # it sees more traffic than modelled
    dlo, dhi = twin.demand.band()
    assert dlo <= 1.0 <= dhi
    # the traffic forecast from noon: detector counts of the next 6 h from 3 traffic runs at
    # the estimated multiplier; their total is within 15 % of what the detectors then count
    twin.issue_forecast(12 * 3600.0)
    tf = read_parts(tmp_path / "live", "traffic")
    assert set(tf["time_s"]) == {3600.0 * h for h in range(13, 19)}
    assert (tf["count_p05"] <= tf["count_p50"]).all() and (tf["count_p50"] <= tf["count_p95"]).all()
    seen = sum(r["result"] for r in recs if r["datastream"] >= 4000
               and 12 * 3600 < r["time_s"] <= 18 * 3600)
    assert abs(tf["count_p50"].sum() - seen) < 0.15 * seen


def test_bad_inputs_name_what_is_wrong(tmp_path: Path) -> None:
    from citytwin.errors import InputError
    from citytwin.twin.truth import read_streams

    p = tmp_path / "streams.json"
    p.write_text(json.dumps([{"id": 1, "kind": "temperature", "key": "city"},
                             {"id": 2, "kind": "voltage", "key": "t0"}, {"id": 3}]))
    with pytest.raises(InputError) as e:
        read_streams(p)
    msg = str(e.value)
    assert "row 1: kind 'voltage'" in msg and "row 2: expected keys id, kind, key" in msg
    setup = _setup()
    with pytest.raises(InputError, match="fault_transformer 'nope'"):
        truth_feed(setup, Hidden(1.0, "nope", 0.5))
    with pytest.raises(InputError, match="rating_factor 1.5"):
        truth_feed(setup, Hidden(1.0, setup.transformers()[0], 1.5))
    with pytest.raises(InputError, match="multiple of the energy step"):
        simulate(setup, t0_s=100.0)
