"""Experiments: designs, scenario keys, outcomes table, sensitivity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from citytwin.cli import main
from citytwin.errors import ScenarioError
from citytwin.experiments import (
    Factor,
    design_points,
    load_experiment,
    point_scenarios,
    run_experiment,
    sensitivity,
)


def _write_base(tmp_path: Path, city: Path) -> Path:
    base = tmp_path / "base.toml"
    base.write_text(f'name = "base"\ncity = "{city}"\nduration_h = 12\nseed = 4\n'
                    "[emergency]\n")
    return base


def _exp(tmp_path: Path, body: str) -> Path:
    f = tmp_path / "exp.toml"
    f.write_text('name = "e"\nscenario = "base.toml"\n' + body)
    return f


def test_full_factorial_and_latin_hypercube(tmp_path: Path, tiny_city_path: Path) -> None:
    _write_base(tmp_path, tiny_city_path)
    exp = load_experiment(_exp(tmp_path, """
design = "full_factorial"
[[levers]]
name = "move_up"
key = "emergency.move_up"
values = [false, true]
[[uncertainties]]
name = "rate"
key = "emergency.rate_multiplier"
low = 1.0
high = 3.0
levels = 3
"""))
    d = design_points(exp)
    assert len(d) == 6 and list(d.columns) == ["point", "move_up", "rate"]
    assert sorted(set(d["rate"])) == [1.0, 2.0, 3.0]
    lhs = load_experiment(_exp(tmp_path, """
design = "latin_hypercube"
samples = 10
seed = 3
[[uncertainties]]
name = "rate"
key = "emergency.rate_multiplier"
low = 0.0
high = 10.0
[[uncertainties]]
name = "share"
key = "emergency.congestion_share"
low = 0.0
high = 1.0
"""))
    d = design_points(lhs)
    assert len(d) == 10
    # Latin hypercube: each of the 10 strata of every factor holds exactly one sample
    assert sorted((d["rate"] // 1.0).astype(int)) == list(range(10))
    assert sorted((d["share"] // 0.1).astype(int).clip(upper=9)) == list(range(10))
    assert design_points(lhs).equals(d)  # the design is seeded
    scs = point_scenarios(lhs, d)
    assert [s.emergency.rate_multiplier for s in scs] == pytest.approx(list(d["rate"]))
    assert len({s.content_hash() for s in scs}) == 10


def test_intervention_keys_and_bad_points(tmp_path: Path, tiny_city_path: Path) -> None:
    _write_base(tmp_path, tiny_city_path)
    exp = load_experiment(_exp(tmp_path, """
[[levers]]
name = "bls"
key = "interventions.unit_counts.count"
values = [1, 3]
"""))
    with pytest.raises(ScenarioError) as exc:  # an added unit_counts lacks station_kind, unit
        point_scenarios(exp)
    assert "point 0" in str(exc.value) and "station_kind" in str(exc.value)
    bad = _exp(tmp_path, '[[levers]]\nname = "x"\nkey = "seed"\nlow = 2\nhigh = 1\n')
    with pytest.raises(ScenarioError, match="low"):
        load_experiment(bad)
    with pytest.raises(ScenarioError, match="at least one lever"):
        load_experiment(_exp(tmp_path, ""))


def test_sensitivity_recovers_a_linear_model() -> None:
    rng = np.random.default_rng(0)
    n = 200
    x1, x2 = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    table = pd.DataFrame({"a": x1, "b": x2, "y": 3 * x1 + 0.01 * rng.normal(size=n)})
    fs = [Factor(name="a", key="k", low=0, high=1), Factor(name="b", key="k", low=0, high=1)]
    s = sensitivity(table, factors=fs, outcomes=["y"], levers=["a"]).set_index("factor")
    assert s.loc["a", "src"] == pytest.approx(1.0, abs=0.01)
    assert abs(s.loc["b", "src"]) < 0.02
    assert s.loc["a", "r2"] > 0.999
    assert s.loc["a", "main_effect"] > 10 * s.loc["b", "main_effect"]
    assert list(s["kind"]) == ["lever", "uncertainty"]


def test_main_effects_per_lever_on_a_known_linear_response() -> None:
    # full factorial, y = 3a + b + 0c + 5, two replications: the main effect of each factor is
    # its coefficient times its range (6, 2, 0), the SRCs are coef * sd(x) / sd(y)
    rows = [(p, r, a, b, c) for p, (a, b, c) in enumerate(
        (a, b, c) for a in (0.0, 1.0, 2.0) for b in (0.0, 1.0, 2.0) for c in (0.0, 1.0))
        for r in range(2)]
    t = pd.DataFrame(rows, columns=["point", "replication", "a", "b", "c"])
    t["y"] = 3 * t["a"] + t["b"] + 0 * t["c"] + 5
    fs = [Factor(name=n, key="k", values=tuple(sorted(set(t[n])))) for n in "abc"]
    s = sensitivity(t, factors=fs, outcomes=["y"], levers=["a", "b", "c"]).set_index("factor")
    assert s["main_effect"].to_dict() == pytest.approx({"a": 6.0, "b": 2.0, "c": 0.0})
    sd_y = t["y"].std(ddof=1)
    for n, coef in (("a", 3.0), ("b", 1.0), ("c", 0.0)):
        assert s.loc[n, "src"] == pytest.approx(coef * t[n].std(ddof=1) / sd_y, abs=1e-9)


def test_main_effect_differs_per_lever_on_a_small_latin_hypercube() -> None:
    # 10 LHS points: every point is its own level. The old code grouped by level, so each
    # "mean" was one point and every factor's main effect was the overall max - min.
    rng = np.random.default_rng(1)
    n = 10
    a = (rng.permutation(n) + rng.uniform(size=n)) / n
    b = (rng.permutation(n) + rng.uniform(size=n)) / n
    t = pd.DataFrame({"point": np.arange(n), "a": a, "b": b, "y": 3 * a + 0.2 * b})
    fs = [Factor(name="a", key="k", low=0, high=1), Factor(name="b", key="k", low=0, high=1)]
    s = sensitivity(t, factors=fs, outcomes=["y"], levers=["a", "b"]).set_index("factor")
    overall = t["y"].max() - t["y"].min()
    # (binned means over 10 points still carry some of a's effect into b's bins: order only)
    assert s.loc["b", "main_effect"] < s.loc["a", "main_effect"] < overall
    assert s.loc["a", "src"] > 0.9 and s.loc["a", "r2"] == pytest.approx(1.0)


def test_run_experiment_end_to_end(tmp_path: Path, tiny_city_path: Path) -> None:
    _write_base(tmp_path, tiny_city_path)
    f = _exp(tmp_path, """
replications = 2
outcomes = ["calls_n", "response_mean_s"]
[[levers]]
name = "move_up"
key = "emergency.move_up"
values = [false, true]
[[uncertainties]]
name = "rate"
key = "emergency.rate_multiplier"
low = 2.0
high = 20.0
levels = 2
""")
    out = tmp_path / "out"
    res = run_experiment(f, out=out)
    o = res.outcomes
    assert len(o) == 8 and res.batch.ok
    assert {"point", "replication", "seed", "move_up", "rate", "calls_n",
            "response_mean_s"} <= set(o.columns)
    assert sorted(set(o["seed"])) == [4, 5]
    # ten times the call rate gives more calls at every (lever, seed)
    piv = o.pivot_table(index=["move_up", "seed"], columns="rate", values="calls_n")
    assert (piv[20.0] > piv[2.0]).all()
    s = res.sensitivity.set_index(["outcome", "factor"])
    assert s.loc[("calls_n", "rate"), "src"] > 0.5
    assert (out / "outcomes.parquet").is_file() and (out / "sensitivity.parquet").is_file()
    pd.testing.assert_frame_equal(pd.read_parquet(out / "outcomes.parquet"), o)
    # rerun through the CLI: every run is already there
    assert main(["experiment", str(f), "--out", str(out), "--no-progress"]) == 0
