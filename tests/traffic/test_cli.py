"""The ``citytwin traffic`` commands."""

from __future__ import annotations

from citytwin.cli import main


def _write_tntp(tmp_path):
    net = tmp_path / "toy_net.tntp"
    net.write_text(
        "<NUMBER OF ZONES> 2\n<NUMBER OF NODES> 2\n<FIRST THRU NODE> 1\n<NUMBER OF LINKS> 2\n"
        "<END OF METADATA>\n~ init term cap len fft b power speed toll type ;\n"
        "\t1\t2\t1000\t1\t10\t0.15\t4\t0\t0\t1\t;\n\t1\t2\t4000\t1\t15\t0.15\t4\t0\t0\t1\t;\n")
    trips = tmp_path / "toy_trips.tntp"
    trips.write_text("<NUMBER OF ZONES> 2\n<END OF METADATA>\n\nOrigin 1\n 2 : 3000.0;\n")
    return net, trips


def test_ue_command(tmp_path, capsys):
    net, trips = _write_tntp(tmp_path)
    assert main(["traffic", "ue", str(net), str(trips), "--gap", "1e-8"]) == 0
    out = capsys.readouterr().out
    assert "relative gap" in out and "TSTT" in out


def test_bad_option_is_a_clear_error(tmp_path, capsys):
    net, trips = _write_tntp(tmp_path)
    assert main(["traffic", "run", "--set", "stuck_time=3"]) == 2
    assert "stuck_time" in capsys.readouterr().err


# --------------------------------------------------------------------------- traffic ue

import subprocess  # noqa: E402
import sys  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def errlog(tmp_path, monkeypatch):
    log = tmp_path / "errors.log"
    monkeypatch.setenv("CITYTWIN_ERROR_LOG", str(log))
    return log


def test_not_converging_exits_non_zero_with_the_gap(tmp_path, capsys):
    net, trips = _write_tntp(tmp_path)
    # one all-or-nothing iteration leaves a gap; the old command exited 0 without a word
    assert main(["traffic", "ue", str(net), str(trips), "--gap", "1e-12", "--max-iter", "1"]) == 1
    err = capsys.readouterr().err
    assert "not converged: relative gap" in err and "after 1 iterations" in err


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_link_flows_are_written(tmp_path, capsys, suffix):
    net, trips = _write_tntp(tmp_path)
    out = tmp_path / f"flows{suffix}"
    assert main(["traffic", "ue", str(net), str(trips), "--gap", "1e-9",
                 "--flows-out", str(out)]) == 0
    df = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert list(df.columns) == ["init_node", "term_node", "flow", "travel_time", "cost", "voc"]
    assert df["flow"].sum() == pytest.approx(3000.0)
    assert df["travel_time"].iloc[0] == pytest.approx(df["travel_time"].iloc[1], rel=1e-6)
    assert main(["traffic", "ue", str(net), str(trips), "--flows-out", str(tmp_path / "f.txt")]) == 2
    assert "expected a .csv or .parquet" in capsys.readouterr().err


def test_flow_comparison_matches_links_by_node_pair(tmp_path, capsys):
    net = tmp_path / "g_net.tntp"
    links = [(1, 2, 500), (2, 3, 800), (1, 3, 700), (3, 2, 900), (2, 1, 600)]
    net.write_text("<NUMBER OF ZONES> 3\n<NUMBER OF NODES> 3\n<NUMBER OF LINKS> 5\n"
                   "<END OF METADATA>\n~ init_node term_node capacity length free_flow_time b power ;\n"
                   + "".join(f"{a} {b} {c} 1 {5 + a + b} 0.15 4 ;\n" for a, b, c in links))
    trips = tmp_path / "g_trips.tntp"
    trips.write_text("<NUMBER OF ZONES> 3\n<END OF METADATA>\nOrigin 1\n 2 : 900; 3 : 600;\n"
                     "Origin 2\n 1 : 300;\n")
    out = tmp_path / "flows.csv"
    assert main(["traffic", "ue", str(net), str(trips), "--gap", "1e-10", "--flows-out", str(out)]) == 0
    df = pd.read_csv(out).iloc[[4, 2, 0, 3, 1]]  # the flow file lists links in another order
    f = tmp_path / "g_flow.tntp"
    f.write_text("From \tTo \tVolume \tCost \n" + "".join(
        f"{a} \t{b} \t{v!r} \t{c!r} \n" for a, b, v, c in
        df[["init_node", "term_node", "flow", "cost"]].itertuples(index=False)))
    capsys.readouterr()
    assert main(["traffic", "ue", str(net), str(trips), "--gap", "1e-10", "--flow", str(f)]) == 0
    out_text = capsys.readouterr().out
    assert "relative difference +0.00e+00" in out_text or "relative difference -0.00e+00" in out_text
    assert "max |d| 0.000" in out_text
    f.write_text(f.read_text().replace("3 \t2 \t", "3 \t1 \t"))  # a link the network lacks
    assert main(["traffic", "ue", str(net), str(trips), "--flow", str(f)]) == 2
    err = capsys.readouterr().err
    assert "in the flow file but not in the network, e.g. 3-1" in err and str(f) in err


def test_toll_net_is_compared_in_time_units(tmp_path, capsys):
    net = tmp_path / "toll_net.tntp"
    net.write_text("<NUMBER OF ZONES> 2\n<NUMBER OF NODES> 2\n<NUMBER OF LINKS> 2\n<TOLL FACTOR> 1\n"
                   "<END OF METADATA>\n~ init_node term_node capacity length free_flow_time b power "
                   "speed toll link_type ;\n1 2 1000 1 10 0.15 4 0 5 1 ;\n1 2 4000 1 15 0.15 4 0 0 1 ;\n")
    trips = tmp_path / "toll_trips.tntp"
    trips.write_text("<NUMBER OF ZONES> 2\n<TOTAL OD FLOW> 3000\n<END OF METADATA>\nOrigin 1\n 2 : 3000;\n")
    out = tmp_path / "flows.csv"
    assert main(["traffic", "ue", str(net), str(trips), "--gap", "1e-10", "--flows-out", str(out)]) == 0
    df = pd.read_csv(out)
    assert df["cost"].iloc[0] == pytest.approx(df["cost"].iloc[1], rel=1e-8)  # generalized cost equal
    assert df["cost"].iloc[0] == pytest.approx(df["travel_time"].iloc[0] + 5.0)
    f = tmp_path / "toll_flow.tntp"  # the flow file's cost column is the generalized cost
    f.write_text("From \tTo \tVolume \tCost \n" + "".join(
        f"{a} \t{b} \t{v!r} \t{c!r} \n" for a, b, v, c in
        df[["init_node", "term_node", "flow", "cost"]].itertuples(index=False)))
    capsys.readouterr()
    assert main(["traffic", "ue", str(net), str(trips), "--gap", "1e-10", "--flow", str(f)]) == 0
    text = capsys.readouterr().out
    tstt = float((df["flow"] * df["travel_time"]).sum())
    assert f"reference TSTT {tstt:,.2f} (relative difference" in text


@pytest.mark.parametrize("net_text, trips_text, expect", [
    ("", None, "empty file"),
    ("<NUMBER OF NODES> x\n<END OF METADATA>\n1 2 1 1 1 0.15 4 0 0 1 ;\n", None,
     "line 1: <NUMBER OF NODES> expected a number, got 'x'"),
    ("DIR", None, "is a directory"),
    (None, "<NUMBER OF ZONES> 2\n<END OF METADATA>\nOrigin\n 2 : 1.0;\n",
     "line 3: expected 'Origin <zone id>', got 'Origin'"),
    (None, "<NUMBER OF ZONES> 3\n<END OF METADATA>\nOrigin 1\n 2 : 1.0;\n",
     "<NUMBER OF ZONES> is 3 here but 2 in the network"),
    ("<NUMBER OF NODES> 2\n<END OF METADATA>\n~ init_node term_node capacity length "
     "free_flow_time b power speed toll link_type ;\n0 2 1000 1 10 0.15 4 0 0 1 ;\n", None,
     "node id >= 1"),
])
def test_bad_tntp_input_is_one_clear_error(tmp_path, capsys, errlog, net_text, trips_text, expect):
    net, trips = _write_tntp(tmp_path)
    if net_text == "DIR":
        net = tmp_path
    elif net_text is not None:
        net.write_text(net_text)
    if trips_text is not None:
        trips.write_text(trips_text)
    assert main(["traffic", "ue", str(net), str(trips)]) == 2
    err = capsys.readouterr().err
    assert expect in err and "internal error" not in err and not errlog.exists()
    assert err.startswith(f"error: {net if trips_text is None else trips}")


def test_ue_does_not_import_the_simulation_stack(tmp_path):
    net, trips = _write_tntp(tmp_path)
    code = ("import sys\nfrom citytwin.cli import main\n"
            f"rc = main(['traffic', 'ue', {str(net)!r}, {str(trips)!r}])\n"
            "print(rc, sorted(m for m in ('mesa', 'pandapower', 'geopandas', 'networkx')"
            " if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "0 []"
