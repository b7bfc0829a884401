"""Live twin ingest: observations/s through LiveTwin.ingest+commit alone, and end to end
through a real Mosquitto (publish QoS 1 -> twin journal fsync -> ack). No forecast yet (see
docs/live.md). Run: .venv/bin/python benchmarks/live.py"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

from citytwin.twin.live import Broker, LiveTwin, free_port, run_live
from citytwin.twin.sensorthings import Datastream, encode, topic

START = pd.Timestamp("2024-06-03")
N_TR, N_STEPS = 50, 200  # 10,000 meter readings


def _streams() -> dict[int, Datastream]:
    return {10 + i: Datastream(10 + i, "load", f"t{i}") for i in range(N_TR)}


def _msgs() -> list[tuple[str, bytes]]:
    return [(topic(10 + i), encode(START, 900.0 * (k + 1), 100.0 + i))
            for k in range(N_STEPS) for i in range(N_TR)]


def main() -> None:
    msgs = _msgs()
    with tempfile.TemporaryDirectory() as d:
        twin = LiveTwin(_streams(), Path(d) / "a", start=START, modelled=lambda o: 100.0)
        t = time.perf_counter()
        for i, (tp, p) in enumerate(msgs):
            twin.ingest(tp, p)
            if i % 500 == 499:
                twin.commit()
        twin.commit()
        dt = time.perf_counter() - t
        print(f"ingest alone: {len(msgs)} obs in {dt:.2f} s = {len(msgs) / dt:,.0f} obs/s")
        port = free_port()
        broker = Broker(Path(d) / "broker", port).start()
        try:
            twin = LiveTwin(_streams(), Path(d) / "b", start=START, modelled=lambda o: 100.0)
            th = threading.Thread(target=run_live, args=(twin, "127.0.0.1", port),
                                  kwargs={"idle_exit_s": 1.0})
            th.start()
            time.sleep(1.0)
            import paho.mqtt.client as mqtt

            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-pub",
                            clean_session=False)
            c.max_inflight_messages_set(1000)
            c.connect("127.0.0.1", port)
            c.loop_start()
            t = time.perf_counter()
            infos = [c.publish(tp, p, qos=1) for tp, p in msgs]
            for i in infos:
                i.wait_for_publish(timeout=60)
            while twin.applied < len(msgs) and time.perf_counter() - t < 120:
                time.sleep(0.01)
            dt = time.perf_counter() - t
            c.loop_stop()
            c.disconnect()
            th.join()
            print(f"through Mosquitto: {twin.applied} of {len(msgs)} obs in {dt:.2f} s = "
                  f"{twin.applied / dt:,.0f} obs/s")
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
