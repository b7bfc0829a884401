"""CLI: ``publish`` (stream a recorded feed to an MQTT broker) and ``live`` (keep a twin in
step with it). See docs/live.md."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _broker(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--broker {text!r}: expected host:port")
    return host, int(port)


def _fault(text: str) -> tuple[str, float]:
    asset, _, f = text.rpartition(":")
    try:
        return asset, float(f)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--fault {text!r}: expected TRANSFORMER:RATING_FACTOR "
                                         "(e.g. t12:0.6)") from None


def register(sub: Any) -> None:
    p = sub.add_parser("publish", help="stream a recorded feed (JSON lines: datastream, time_s, "
                       "result) as SensorThings observations at a speed-up, or derive a truth "
                       "feed from a scenario run with hidden perturbations (--truth)")
    p.add_argument("feed", type=Path, nargs="?", help="JSON-lines feed (omit with --truth)")
    p.add_argument("--truth", type=Path, metavar="SCENARIO",
                   help="derive the feed from this scenario run with hidden perturbations")
    p.add_argument("--demand-multiplier", type=float, default=1.0,
                   help="--truth: hidden multiplier of the buildings' electricity")
    p.add_argument("--fault", type=_fault, default=None, metavar="TRANSFORMER:FACTOR",
                   help="--truth: hidden effective rating of one transformer (share of its "
                   "nameplate)")
    p.add_argument("--truth-seed", type=int, default=None,
                   help="--truth: the true day's seed (default: the scenario's + 1000)")
    p.add_argument("--write", type=Path, default=None, metavar="DIR",
                   help="--truth: write feed.jsonl, streams.json and truth.json here")
    p.add_argument("--dry-run", action="store_true", help="write the feed, do not publish")
    p.add_argument("--broker", type=_broker, default=("127.0.0.1", 1883))
    p.add_argument("--start", default=None, help="calendar date of t = 0 (default: the "
                   "scenario's with --truth, else 2024-06-03)")
    p.add_argument("--speed", type=float, default=60.0, help="city seconds per wall second; "
                   "0: as fast as possible")
    p.set_defaults(func=_publish)
    p = sub.add_parser("live", help="subscribe to a broker and keep the twin in step")
    p.add_argument("scenario", type=Path, help="scenario TOML (its start date)")
    p.add_argument("--streams", type=Path, required=True,
                   help="datastreams JSON: [{id, kind, key}, ...]")
    p.add_argument("--broker", type=_broker, default=("127.0.0.1", 1883))
    p.add_argument("--out", type=Path, required=True, help="live results folder")
    p.add_argument("--idle-exit", type=float, default=30.0,
                   help="stop after this many seconds without a message")
    p.add_argument("--no-forecast", action="store_true",
                   help="ingest only (no energy model, no forecast)")
    p.add_argument("--window", type=float, default=3600.0,
                   help="update window: city seconds between forecasts")
    p.add_argument("--horizon", type=float, default=6.0, help="forecast horizon (h)")
    p.add_argument("--replications", type=int, default=5, help="forecast replications")
    p.add_argument("--power-flow", choices=("scenario", "on", "off"), default="scenario",
                   help="forecast with the power flow (default: as the scenario says)")
    p.add_argument("--traffic-replications", type=int, default=3,
                   help="traffic runs per forecast when there are loop detectors (0: none)")
    p.set_defaults(func=_live)


def _truth(args: argparse.Namespace) -> list[dict[str, Any]]:
    from citytwin.twin.forecast import EnergySetup
    from citytwin.twin.truth import Hidden, truth_feed, write_feed

    setup = EnergySetup.from_scenario(args.truth)
    fault, factor = args.fault if args.fault is not None else (None, 1.0)
    hidden = Hidden(demand_multiplier=args.demand_multiplier, fault_transformer=fault,
                    rating_factor=factor, seed=args.truth_seed)
    recs, streams, run = truth_feed(setup, hidden)
    if args.start is None:
        args.start = str(setup.start.date())
    if args.write is not None:
        import numpy as np

        over = {t: float(run.time_s[np.argmax(run.loading_pct[:, i] > 100)] - setup.dt_s)
                for i, t in enumerate(run.trafo_ids) if (run.loading_pct[:, i] > 100).any()}
        write_feed(args.write, recs, streams, truth={**hidden.as_dict(), "start": args.start,
                                                     "first_overload_s": over})
        print(f"wrote {len(recs)} observations on {len(streams)} datastreams to {args.write}")
    return recs


def _publish(args: argparse.Namespace) -> int:
    import paho.mqtt.client as mqtt
    import pandas as pd

    from citytwin.twin.sensorthings import encode, topic

    if (args.feed is None) == (args.truth is None):
        raise SystemExit("citytwin publish: give a FEED file or --truth SCENARIO (one of them)")
    if args.truth is not None:
        recs = _truth(args)
        if args.dry_run:
            return 0
    else:
        recs = [json.loads(x) for x in args.feed.read_text(encoding="utf-8").splitlines()
                if x.strip()]
        args.start = args.start or "2024-06-03"
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="citytwin-publish",
                    clean_session=False)
    c.connect(*args.broker)
    c.loop_start()
    t0, w0, infos = (recs[0]["time_s"] if recs else 0.0), time.monotonic(), []
    for r in recs:
        if args.speed > 0:
            time.sleep(max(0.0, (r["time_s"] - t0) / args.speed - (time.monotonic() - w0)))
        infos.append(c.publish(topic(r["datastream"]), encode(pd.Timestamp(args.start),
                                                            r["time_s"], r["result"]), qos=1))
    for i in infos:
        i.wait_for_publish(timeout=30)
    c.loop_stop()
    c.disconnect()
    print(f"published {len(infos)} observations")
    return 0


def _live(args: argparse.Namespace) -> int:
    from citytwin.scenario import load_scenario
    from citytwin.twin.live import LiveTwin, run_live
    from citytwin.twin.truth import read_streams

    spec = load_scenario(args.scenario)
    streams = read_streams(args.streams)
    setup = None
    if not args.no_forecast:
        from citytwin.twin.forecast import EnergySetup

        pf = {"scenario": None, "on": True, "off": False}[args.power_flow]
        setup = EnergySetup.from_scenario(args.scenario, power_flow=pf)
    twin = LiveTwin(streams, args.out, start=str(spec.start), setup=setup, window_s=args.window,
                    horizon_h=args.horizon, replications=args.replications,
                    traffic_replications=args.traffic_replications)
    run_live(twin, *args.broker, idle_exit_s=args.idle_exit)
    print(f"applied {twin.applied}, quarantined {twin.quarantined}, closed {sorted(twin.closed)}")
    if setup is not None:
        lo, hi = twin.demand.band()
        print(f"demand multiplier {twin.demand.mean:.3f} (95 % {lo:.3f}..{hi:.3f}); "
              f"{len(twin.issued)} forecasts written to {args.out}")
    return 0
