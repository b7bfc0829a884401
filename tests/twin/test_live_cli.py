"""`citytwin publish --truth` and `citytwin live` as commands: a truth feed derived from a scenario
(the dormitory test city) streamed through a real Mosquitto to the live twin, which forecasts,
and finds the hidden demand multiplier."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from citytwin.cli import main
from citytwin.twin.live import Broker, free_port, read_parts

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not Path("/usr/sbin/mosquitto").exists(),
                                reason="mosquitto not installed")


def test_publish_truth_and_live_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    scen = tmp_path / "dorm.toml"
    scen.write_text(f'name = "dorm"\ncity = "{ROOT / "tests" / "data" / "dormitory.gpkg"}"\n'
                    'seed = 1\nstart = 2024-06-03\n\n[energy]\npower_flow = false\n')
    feed = tmp_path / "feed"
    assert main(["publish", "--truth", str(scen), "--demand-multiplier", "1.2",
                 "--write", str(feed), "--dry-run"]) == 0
    truth = json.loads((feed / "truth.json").read_text())
    assert truth["demand_multiplier"] == 1.2 and truth["start"] == "2024-06-03"
    streams = json.loads((feed / "streams.json").read_text())
    assert {s["kind"] for s in streams} == {"temperature", "load", "loading", "top_oil"}
    n = len((feed / "feed.jsonl").read_text().splitlines())

    port, out = free_port(), tmp_path / "live"
    broker = Broker(tmp_path / "broker", port).start()
    try:
        live = threading.Thread(target=main, args=([
            "live", str(scen), "--streams", str(feed / "streams.json"), "--broker",
            f"127.0.0.1:{port}", "--out", str(out), "--idle-exit", "2", "--window", "21600",
            "--replications", "2"],))
        live.start()
        for _ in range(600):
            if (out / "journal" / "subscribed").exists():
                break
            live.join(0.05)
        assert main(["publish", str(feed / "feed.jsonl"), "--broker", f"127.0.0.1:{port}",
                     "--speed", "0", "--start", "2024-06-03"]) == 0
        live.join(120)
        assert not live.is_alive()
    finally:
        broker.stop()
    text = capsys.readouterr().out
    assert f"published {n} observations" in text and f"applied {n}," in text
    state = read_parts(out, "state")
    assert sorted(state["issue_s"].unique()) == [21600.0, 43200.0, 64800.0]
    last = state[state["issue_s"] == 64800.0].iloc[0]
    assert last["demand_multiplier_lo"] <= 1.2 <= last["demand_multiplier_hi"]
    assert len(read_parts(out, "forecast")) and len(read_parts(out, "maintenance"))
