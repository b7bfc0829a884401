"""Static UE on a congested lattice with many near-equal routes (the shape of city grids, where
path-based methods need many paths per OD pair): the gap gp reports is the exact one at its
flows, gp and bfw agree, and the link-cost kernel is BPR for whole and fractional powers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from citytwin.traffic.assignment import (
    TntpNetwork,
    _bpr1,
    _bpr_deriv,
    bpr_cost,
    static_ue,
)
from tests.traffic._nets import lattice_links


def _lattice(side: int = 12, seed: int = 7) -> tuple[TntpNetwork, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    links = lattice_links(side, rng, capacity=(300, 900), free_flow_time=(0.25, 0.35), length=0.2,
                          power=4.0)
    n = side * side
    zones = rng.choice(np.arange(1, n + 1), 16, replace=False)
    o, d = np.meshgrid(zones, zones, indexing="ij")
    keep = o != d
    od = pd.DataFrame({"origin": o[keep], "dest": d[keep],
                       "demand": rng.uniform(20.0, 90.0, int(keep.sum()))})
    return TntpNetwork(links=links, n_nodes=n, n_zones=n, first_thru_node=1), od


def _exact_gap(net: TntpNetwork, od: pd.DataFrame, flow: np.ndarray) -> float:
    L = net.links
    c = bpr_cost(flow, L["free_flow_time"].to_numpy(float), L["capacity"].to_numpy(float),
                 L["b"].to_numpy(float), L["power"].to_numpy(float))
    G = csr_matrix((c, (L["init_node"].to_numpy() - 1, L["term_node"].to_numpy() - 1)),
                   shape=(net.n_nodes, net.n_nodes))
    origins = np.unique(od["origin"].to_numpy())
    dist = dijkstra(G, indices=origins - 1)
    row = np.searchsorted(origins, od["origin"].to_numpy())
    sptt = float(od["demand"].to_numpy() @ dist[row, od["dest"].to_numpy() - 1])
    return 1.0 - sptt / float(flow @ c)


def test_gp_reports_the_exact_gap_at_its_flows():
    # gp measures the gap only now and then (between measurements it scales its own sweep's
    # estimate): the last recorded gap must be the exact one at the returned flows
    net, od = _lattice()
    for target in (1e-4, 1e-7):
        res = static_ue(net, od, gap=target)
        assert res.converged and res.relative_gap <= target
        assert res.relative_gap == pytest.approx(_exact_gap(net, od, res.flow), abs=1e-10)
        assert res.gaps[0] > 1e3 * target  # the lattice is congested: it starts far off


def test_gp_and_bfw_reach_the_same_flows_on_a_congested_lattice():
    net, od = _lattice()
    a = static_ue(net, od, gap=1e-9, algorithm="gp")
    b = static_ue(net, od, gap=1e-5, algorithm="bfw")
    assert a.converged and b.converged
    voc = a.flow / net.links["capacity"].to_numpy()
    assert (voc > 1.0).sum() >= 10  # many links above capacity at equilibrium
    assert a.objective <= b.objective
    assert b.objective == pytest.approx(a.objective, rel=1e-5)
    np.testing.assert_allclose(b.flow, a.flow, atol=0.01 * a.flow.max())


@pytest.mark.parametrize("power", [0.5, 1.0, 2.5, 4.0, 6.0])
def test_link_cost_kernel_is_bpr_for_whole_and_fractional_powers(power):
    # the kernel multiplies for whole powers instead of calling pow: same values as numpy's **
    x = np.array([0.0, 1e-12, 3.0, 250.0, 800.0, 1900.0])
    m = x.size
    t0, cap = np.full(m, 2.0), np.full(m, 800.0)
    b, pw, fixed = np.full(m, 0.15), np.full(m, power), np.full(m, 0.5)
    want_c = bpr_cost(x, t0, cap, b, pw) + fixed
    want_d = _bpr_deriv(x, t0, cap, b, pw)
    for e in range(m):
        c, d = _bpr1(e, x[e], t0, cap, b, pw, fixed)
        assert c == pytest.approx(want_c[e], rel=1e-12)
        assert d == pytest.approx(want_d[e], rel=1e-12)
