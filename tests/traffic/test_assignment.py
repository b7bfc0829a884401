"""Static UE against the published Sioux Falls solution, and the TNTP readers."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from citytwin.errors import InputError
from citytwin.traffic.assignment import (
    TntpNetwork,
    read_tntp_flow,
    read_tntp_net,
    read_tntp_trips,
    static_ue,
)
from tests.traffic._nets import lattice_links

SF = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tntp" / "SiouxFalls"
BEST_TSTT = 7_480_225.34


@pytest.mark.skipif(not SF.is_dir(), reason=f"reference data not present at {SF}")
def test_sioux_falls_equilibrium_matches_best_known():
    net = read_tntp_net(SF / "SiouxFalls_net.tntp")
    od = read_tntp_trips(SF / "SiouxFalls_trips.tntp")
    ref = read_tntp_flow(SF / "SiouxFalls_flow.tntp")
    assert len(net.links) == 76 and od["demand"].sum() == pytest.approx(360_600.0)
    res = static_ue(net, od, gap=1e-5)
    assert res.relative_gap <= 1e-4
    assert res.gaps[0] > res.gaps[-1]
    assert abs(res.tstt / BEST_TSTT - 1) <= 1e-4
    # link flows vs the best-known solution (same link order in both files)
    assert (net.links["init_node"].to_numpy() == ref["init_node"].to_numpy()).all()
    diff = np.abs(res.flow - ref["volume"].to_numpy())
    assert diff.max() < 0.005 * ref["volume"].max()
    # the Beckmann objective is the best-known one (42.31335287107440 x 1e5), by both algorithms
    for algorithm, g, tol in (("bfw", 1e-6, 5.0), ("gp", 1e-10, 0.01)):
        r = static_ue(net, od, gap=g, algorithm=algorithm)
        assert r.converged and r.relative_gap <= g
        assert r.objective == pytest.approx(4_231_335.287107440, rel=1e-7)
        assert np.abs(r.flow - ref["volume"].to_numpy()).max() < tol


def _toy(toll=(0.0, 0.0), length=(1.0, 1.0), toll_factor=0.0, distance_factor=0.0):
    # two parallel routes 1->2: a fast narrow one and a slow wide one
    links = pd.DataFrame({"init_node": [1, 1], "term_node": [2, 2], "capacity": [1000.0, 4000.0],
                          "length": list(length), "free_flow_time": [10.0, 15.0], "b": [0.15, 0.15],
                          "power": [4.0, 4.0], "speed": 0.0, "toll": list(toll), "link_type": 1})
    return TntpNetwork(links=links, n_nodes=2, n_zones=2, first_thru_node=1,
                       toll_factor=toll_factor, distance_factor=distance_factor)


@pytest.mark.parametrize("algorithm", ["gp", "bfw"])
def test_two_route_equilibrium_equalises_costs(algorithm):
    res = static_ue(_toy(), pd.DataFrame({"origin": [1], "dest": [2], "demand": [3000.0]}), gap=1e-9,
                    algorithm=algorithm)
    assert res.flow.sum() == pytest.approx(3000.0)
    assert res.cost[0] == pytest.approx(res.cost[1], rel=1e-6)


def test_readers_report_bad_lines(tmp_path):
    f = tmp_path / "bad_trips.tntp"
    f.write_text("<END OF METADATA>\n 1 : 5.0;\nOrigin 1\n 2 : x;\n")
    with pytest.raises(InputError) as err:
        read_tntp_trips(f)
    assert "line 2" in str(err.value) and "line 4" in str(err.value)
    with pytest.raises(InputError, match="outside"):
        static_ue(_toy(), pd.DataFrame({"origin": [1], "dest": [7], "demand": [1.0]}))


@pytest.mark.parametrize("algorithm", ["gp", "bfw"])
@pytest.mark.parametrize("kw, extra", [
    ({"toll": (4.0, 0.0), "toll_factor": 0.5}, (2.0, 0.0)),
    ({"length": (3.0, 1.0), "distance_factor": 0.25}, (0.75, 0.25)),
])
def test_toll_and_distance_factors_are_honoured(kw, extra, algorithm):
    """Users equalise the generalized cost t(x) + toll_factor*toll + distance_factor*length
    (the old solver equalised travel times and ignored both factors)."""
    from scipy.optimize import brentq

    def t(x, t0, cap):
        return t0 * (1 + 0.15 * (x / cap) ** 4)

    xa = brentq(lambda a: t(a, 10.0, 1000.0) + extra[0] - t(3000.0 - a, 15.0, 4000.0) - extra[1],
                0.0, 3000.0, xtol=1e-10)
    res = static_ue(_toy(**kw), pd.DataFrame({"origin": [1], "dest": [2], "demand": [3000.0]}),
                    gap=1e-12, algorithm=algorithm)
    assert res.flow[0] == pytest.approx(xa, rel=1e-6)
    assert res.tstt == pytest.approx(float(res.flow @ res.cost))
    assert res.total_cost == pytest.approx(res.tstt + float(res.flow @ np.array(extra)))


def _grid(side, power, seed):
    rng = np.random.default_rng(seed)
    links = lattice_links(side, rng, capacity=(50, 300), free_flow_time=(1, 3), length=1.0, power=power)
    n = side * side
    od = pd.DataFrame({"origin": rng.integers(1, n + 1, 30), "dest": rng.integers(1, n + 1, 30),
                       "demand": rng.uniform(50, 400, 30)})
    od = od[od.origin != od.dest].drop_duplicates(["origin", "dest"]).reset_index(drop=True)
    return TntpNetwork(links=links, n_nodes=n, n_zones=n, first_thru_node=1), od


@pytest.mark.parametrize("algorithm", ["gp", "bfw"])
def test_fractional_bpr_power_converges_without_nan_or_warnings(algorithm):
    # the old solver took x**(power-1) at zero and negative rounding flows: divide-by-zero and
    # NaN warnings, and it stalled at a gap of 4e-2 on this net
    net, od = _grid(4, 0.5, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = static_ue(net, od, gap=1e-8, max_iter=5000, algorithm=algorithm)
    assert res.converged and res.relative_gap <= 1e-8
    assert np.isfinite(res.cost).all() and (res.flow >= 0).all()


@pytest.mark.parametrize("algorithm, target", [("gp", 1e-9), ("bfw", 1e-4)])
def test_equilibrium_is_deterministic_and_conserves_demand(algorithm, target):
    net, od = _grid(5, 4.0, 3)  # heavily congested: Frank-Wolfe methods tail off here
    a = static_ue(net, od, gap=target, algorithm=algorithm)
    b = static_ue(net, od, gap=target, algorithm=algorithm)
    assert a.converged and a.gaps == b.gaps and np.array_equal(a.flow, b.flow)
    # flow conservation at every node: out - in = produced - attracted
    L = net.links
    bal = np.zeros(net.n_nodes + 1)
    np.add.at(bal, L["init_node"].to_numpy(), a.flow)
    np.add.at(bal, L["term_node"].to_numpy(), -a.flow)
    want = np.zeros(net.n_nodes + 1)
    np.add.at(want, od["origin"].to_numpy(), od["demand"].to_numpy())
    np.add.at(want, od["dest"].to_numpy(), -od["demand"].to_numpy())
    np.testing.assert_allclose(bal, want, atol=1e-6)
    assert a.relative_gap <= target and a.gaps[0] > 100 * a.gaps[-1]


def test_both_algorithms_reach_the_same_equilibrium():
    net, od = _grid(5, 4.0, 4)
    a = static_ue(net, od, gap=1e-10, algorithm="gp")
    b = static_ue(net, od, gap=1e-4, algorithm="bfw")
    assert a.objective <= b.objective  # gp is nearer the minimum of the Beckmann objective
    assert b.objective == pytest.approx(a.objective, rel=1e-4)
    np.testing.assert_allclose(b.flow, a.flow, atol=0.05 * a.flow.max())
    with pytest.raises(InputError, match="algorithm 'msa'"):
        static_ue(net, od, algorithm="msa")


def test_unreachable_od_pair_is_a_clear_error():
    net = _toy()
    with pytest.raises(InputError, match=r"1 OD pairs have no path, e.g. 2 -> 1"):
        static_ue(net, pd.DataFrame({"origin": [2], "dest": [1], "demand": [5.0]}))
