"""CityModel clock, results directories, batch determinism and resume after SIGKILL."""

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

from citytwin.batch import plan_runs, run_batch
from citytwin.errors import ScenarioError
from citytwin.model import CityModel, run_scenario
from citytwin.results import TABLES, Results
from citytwin.scenario import scenario_from_dict


def _scenario(city_path: Path, **extra):
    data = {"name": "tiny", "city": str(city_path), "duration_h": 1.1, "step_s": 900}
    data.update(extra)
    return scenario_from_dict(data)


def test_clock_syncs_on_step_and_at_the_end(tiny_city_path, tiny_city) -> None:
    seen: list[float] = []
    model = CityModel(_scenario(tiny_city_path), city=tiny_city,
                      progress=lambda t, _d: seen.append(t))
    model.run()
    assert seen == [900.0, 1800.0, 2700.0, 3600.0, 3960.0]
    assert model.time == pytest.approx(3960.0) and model.syncs == 5
    assert model.traffic is None and model.energy is None and model.emergency is None


def test_rng_is_mesas_generator_and_gives_concern_streams(tiny_city_path, tiny_city) -> None:
    from citytwin.rng import stream

    a = CityModel(_scenario(tiny_city_path), city=tiny_city, seed=5)
    b = CityModel(_scenario(tiny_city_path), city=tiny_city, seed=5)
    assert isinstance(a.rng, np.random.Generator)
    assert a.rng.random() == b.rng.random()  # Mesa's own stream, seeded from the run seed
    assert a.rng("demand").random() == stream(5, "demand").random()
    assert a.rng("demand").random() != a.rng("incidents").random()


def test_run_writes_a_complete_results_dir(tiny_city_path, tmp_path) -> None:
    out = tmp_path / "res"
    res = run_scenario(_scenario(tiny_city_path), seed=3, out=out)
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted([f"{t}.parquet" for t in TABLES] + ["manifest.json"])
    man = json.loads((out / "manifest.json").read_text())
    assert man["seed"] == 3 and man["scenario"] == "tiny"
    assert man["scenario_hash"] == res.manifest["scenario_hash"]
    assert {"python", "numpy", "mesa", "citytwin"} <= set(man["versions"])
    assert man["wall_time_s"] >= 0 and man["digest"] == res.digest()
    back = Results.read(out)
    assert back.digest() == res.digest()
    for name, cols in TABLES.items():
        assert list(back[name].columns)[: len(cols)] == list(cols)
    # overwrite in place: still one complete dir, no temp dirs left beside it
    run_scenario(_scenario(tiny_city_path), seed=3, out=out)
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


def test_interventions_are_checked_against_the_city(tiny_city_path, tiny_city) -> None:
    sc = _scenario(tiny_city_path, interventions=[
        {"type": "close_road", "street": "Nowhere Street"},
        {"type": "change_lanes", "edges": [0, 99999], "lanes": 2},
        {"type": "remove_station", "name": "Atlantis"},
        {"type": "asset_failure", "asset": "no-such-asset", "at_h": 0.5},
        {"type": "pv_share", "share": 0.3},
    ])
    with pytest.raises(ScenarioError) as exc:
        CityModel(sc, city=tiny_city)
    problems = exc.value.problems
    assert len(problems) == 7, problems  # asset_failure: [energy]; remove_station: [emergency]
    assert any("interventions[0].street" in p and "Nowhere Street" in p for p in problems)
    assert any("interventions[1].edges" in p and "99999" in p for p in problems)
    assert any("interventions[2].name" in p and "Atlantis" in p for p in problems)
    assert any("interventions[3].asset" in p for p in problems)
    assert any("interventions[4]" in p and "[energy]" in p for p in problems)


def test_results_tables_conform_to_contract() -> None:
    res = Results.build(
        scenario="s", seed=1, kpis={"traffic": {"mean_delay_s": 2.0, "trips_count": 3}},
        tables={"trips": pd.DataFrame({c: [1] for c in TABLES["trips"]})},
        manifest={},
    )
    k = res.kpis
    assert list(k["unit"]) == ["s", "1"] and list(k["domain"]) == ["traffic", "traffic"]
    assert res.kpi("mean_delay_s") == 2.0
    assert len(res["links"]) == 0 and list(res["links"].columns) == list(TABLES["links"])
    with pytest.raises(ValueError, match="lacks contract columns"):
        Results.build(scenario="s", seed=1, kpis={}, tables={"trips": pd.DataFrame({"x": [1]})},
                      manifest={})


# ---------------------------------------------------------------- batch


def _digests(report) -> dict[str, str]:
    return {p.name: Results.read(p).digest() for p in report.paths}


def test_batch_serial_pool_and_dask_give_identical_tables(tiny_city_path, tmp_path) -> None:
    distributed = pytest.importorskip("distributed")
    full = _scenario(tiny_city_path, name="full", duration_h=10, step_s=1800, seed=2,
                     traffic={"sample": 0.5, "step_s": 2.0},
                     energy={"power_flow_numba": False, "step_minutes": 30},
                     emergency={"rate_multiplier": 20.0})
    scs = [full]
    serial = run_batch(scs, out=tmp_path / "serial", replications=2)
    assert len(serial.ran) == 2 and serial.ok, serial.failed
    pool = run_batch(scs, out=tmp_path / "pool", replications=2, workers=2)
    assert len(pool.ran) == 2 and pool.ok, pool.failed
    # an in-process Dask worker keeps the test fast; the pool above covers other processes
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        dask = run_batch(scs, out=tmp_path / "dask", replications=2,
                         scheduler=cluster.scheduler_address)
    assert len(dask.ran) == 2 and dask.ok, dask.failed
    digests = _digests(serial)
    assert digests == _digests(pool) == _digests(dask)
    assert len(set(digests.values())) == 2  # the two seeds differ
    assert len(Results.read(serial.paths[0])["trips"]) > 0
    again = run_batch(scs, out=tmp_path / "serial", replications=2)
    assert again.ran == [] and len(again.skipped) == 2


def test_plan_uses_common_seeds_and_stable_ids(tiny_city_path, tmp_path) -> None:
    runs = plan_runs([_scenario(tiny_city_path, seed=10)], out=tmp_path, replications=3)
    assert [r.seed for r in runs] == [10, 11, 12]
    assert len({r.run_id for r in runs}) == 3
    assert runs[0].run_id.startswith("tiny__") and runs[0].run_id.endswith("__seed10")


def test_sigkilled_batch_resumes_without_redoing_finished_runs(tiny_city_path, tmp_path) -> None:
    sc_file = tmp_path / "s.toml"
    sc_file.write_text(f'name = "k"\ncity = "{tiny_city_path}"\nduration_h = 0.5\n')
    out = tmp_path / "out"
    n = 40
    proc = subprocess.Popen(
        [sys.executable, "-m", "citytwin.cli", "batch", str(sc_file), "-r", str(n),
         "--out", str(out), "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            done = [p for p in out.glob("k__*") if (p / "manifest.json").is_file()] \
                if out.exists() else []
            if len(done) >= 3 or proc.poll() is not None:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    finished = {p.name: (p / "manifest.json").stat().st_mtime_ns
                for p in out.glob("k__*") if (p / "manifest.json").is_file()}
    assert 3 <= len(finished) < n
    (out / ".k__half__seed0.tmp-999999-dead").mkdir()  # what a kill mid-write leaves behind
    report = run_batch([sc_file], out=out, replications=n)
    assert report.ok
    assert {p.name for p in report.skipped} == set(finished)
    assert len(report.ran) == n - len(finished)
    for name, mtime in finished.items():  # untouched
        assert (out / name / "manifest.json").stat().st_mtime_ns == mtime
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    assert len(report.paths) == n


def test_road_interventions_make_a_new_city(tiny_city_path, tiny_city) -> None:
    sc = _scenario(tiny_city_path, interventions=[
        {"type": "close_road", "street": "Arterial H0"},
        {"type": "change_speed", "edges": [0], "speed_kph": 7},
    ])
    model = CityModel(sc, city=tiny_city)
    closed = [d for *_, d in model.city.roads.edges(data=True) if d.get("closed")]
    assert closed and all(d["name"] == "Arterial H0" for d in closed)
    assert all(d["capacity_vph"] == 0 for d in closed)
    e0 = next(d for *_, d in model.city.roads.edges(data=True) if d["edge_id"] == 0)
    assert e0["speed_kph"] == 7
    # the input city is untouched (interventions are pure City -> City)
    assert not any(d.get("closed") for *_, d in tiny_city.roads.edges(data=True))
