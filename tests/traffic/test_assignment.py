"""Static UE against the published Sioux Falls solution, and the TNTP readers."""

from __future__ import annotations

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


def _toy():
    # two parallel routes 1->2: a fast narrow one and a slow wide one
    links = pd.DataFrame({"init_node": [1, 1], "term_node": [2, 2], "capacity": [1000.0, 4000.0],
                          "length": [1.0, 1.0], "free_flow_time": [10.0, 15.0], "b": [0.15, 0.15],
                          "power": [4.0, 4.0], "speed": 0.0, "toll": 0.0, "link_type": 1})
    return TntpNetwork(links=links, n_nodes=2, n_zones=2, first_thru_node=1)


def test_two_route_equilibrium_equalises_costs():
    res = static_ue(_toy(), pd.DataFrame({"origin": [1], "dest": [2], "demand": [3000.0]}), gap=1e-9)
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
