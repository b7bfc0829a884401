"""The TNTP reader: headers read, metadata checked against the data, every bad file a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from citytwin.errors import InputError
from citytwin.traffic.tntp import (
    check_trips_against_net,
    read_tntp_flow,
    read_tntp_net,
    read_tntp_trips,
)

META = "<NUMBER OF ZONES> 2\n<NUMBER OF NODES> 3\n<FIRST THRU NODE> 1\n<NUMBER OF LINKS> 3\n" \
       "<END OF METADATA>\n"
HEADER = "~ init_node term_node capacity length free_flow_time b power speed toll link_type ;\n"
LINKS = ("1 2 1000 1 10 0.15 4 0 0 1 ;\n"
         "1 3 4000 2 7 0.15 4 0 0 1 ;\n"
         "3 2 4000 3 8 0.15 4 0 0 1 ;\n")


def _write(tmp_path, name, text):
    f = tmp_path / name
    f.write_text(text)
    return f


def test_standard_net_is_read_with_its_metadata(tmp_path):
    net = read_tntp_net(_write(tmp_path, "n_net.tntp", META + HEADER + LINKS))
    assert (net.n_nodes, net.n_zones, net.first_thru_node) == (3, 2, 1)
    assert net.links["init_node"].tolist() == [1, 1, 3]
    assert net.links["free_flow_time"].tolist() == [10, 7, 8]
    assert (net.toll_factor, net.distance_factor) == (0.0, 0.0)


def test_columns_in_another_order_are_read_by_the_header(tmp_path):
    # the old reader took columns by position: capacity became the node id, etc.
    header = "~ term_node init_node free_flow_time capacity power b length toll ;\n"
    links = "2 1 10 1000 4 0.15 1 0 ;\n3 1 7 4000 4 0.15 2 0 ;\n2 3 8 4000 4 0.15 3 0 ;\n"
    net = read_tntp_net(_write(tmp_path, "o_net.tntp", META + header + links))
    ref = read_tntp_net(_write(tmp_path, "s_net.tntp", META + HEADER + LINKS))
    cols = ["init_node", "term_node", "capacity", "length", "free_flow_time", "b", "power"]
    assert net.links[cols].equals(ref.links[cols])


def test_original_header_with_spaced_names_is_read(tmp_path):
    header = "~ \tInit node \tTerm node \tCapacity \tLength \tFree Flow Time \tB\tPower\t" \
             "Speed limit \tToll \tType\t;\n"
    net = read_tntp_net(_write(tmp_path, "h_net.tntp", META + header + LINKS))
    assert net.links["capacity"].tolist() == [1000, 4000, 4000]


def test_toll_and_distance_factors_are_read(tmp_path):
    meta = META.replace("<END", "<TOLL FACTOR> 0.5\n<DISTANCE FACTOR> 2\n<END")
    links = LINKS.replace("1 2 1000 1 10 0.15 4 0 0 1", "1 2 1000 1 10 0.15 4 0 3 1")
    net = read_tntp_net(_write(tmp_path, "t_net.tntp", meta + HEADER + links))
    assert (net.toll_factor, net.distance_factor) == (0.5, 2.0)
    np.testing.assert_allclose(net.fixed_cost(), [0.5 * 3 + 2 * 1, 2 * 2, 2 * 3])


@pytest.mark.parametrize("links, expect", [
    ("0 2 1000 1 10 0.15 4 0 0 1 ;\n", "node id >= 1"),  # used to become the last node
    ("1 9 1000 1 10 0.15 4 0 0 1 ;\n", "above <NUMBER OF NODES> 3"),
    ("1 2.5 1000 1 10 0.15 4 0 0 1 ;\n", "whole node id"),
    ("1 2 -5 1 10 0.15 4 0 0 1 ;\n", "capacity expected a finite number > 0"),
    ("1 2 1000 1 nan 0.15 4 0 0 1 ;\n", "free_flow_time expected a finite number"),
    ("1 2 1000 1 10 0.15 4 0 ;\n", "expected 10 values"),
    ("1 2 1000 1 ten 0.15 4 0 0 1 ;\n", "expected 10 numbers"),
])
def test_bad_link_lines_name_the_line(tmp_path, links, expect):
    f = _write(tmp_path, "b_net.tntp", META + HEADER + links + LINKS.split("\n", 1)[1])
    with pytest.raises(InputError) as err:
        read_tntp_net(f)
    msg = str(err.value)
    assert str(f) in msg and expect in msg and "line 7" in msg


@pytest.mark.parametrize("text, expect", [
    ("", "empty file"),
    ("   \n\n", "empty file"),
    ("<NUMBER OF NODES> many\n<END OF METADATA>\n" + HEADER + LINKS, "line 1: <NUMBER OF NODES> "
     "expected a number, got 'many'"),
    ("<NUMBER OF NODES> 3.5\n<END OF METADATA>\n" + HEADER + LINKS, "expected a whole number"),
    (META, "no link lines"),
    (META.replace("<NUMBER OF LINKS> 3", "<NUMBER OF LINKS> 5") + HEADER + LINKS,
     "<NUMBER OF LINKS> is 5 but the file has 3 link lines (cut short?)"),
    (META.replace("ZONES> 2", "ZONES> 7") + HEADER + LINKS, "<NUMBER OF ZONES> 7 is above"),
    ("<NUMBER OF NODES> 3\n" + HEADER + LINKS, "no '<END OF METADATA>'"),
    (META + "~ init_node term_node length ;\n1 2 3 ;\n", "header names no capacity"),
    (META.replace("<END", "<TOLL FACTOR> 1\n<END") + "~ init_node term_node capacity "
     "free_flow_time b power ;\n1 2 1000 10 0.15 4 ;\n", "no toll column"),
    (META + HEADER + "1 1 1000 1 10 0.15 4 0 0 1 ;\n", "a link from a node to itself"),
])
def test_bad_net_files_are_clear_errors(tmp_path, text, expect):
    f = _write(tmp_path, "x_net.tntp", text)
    with pytest.raises(InputError) as err:
        read_tntp_net(f)
    assert expect in str(err.value) and str(f) in str(err.value)


def test_a_directory_binary_or_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        read_tntp_net(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        read_tntp_trips(tmp_path / "nope.tntp")
    (tmp_path / "bin.tntp").write_bytes(b"\x00\x01\xff\xfe")
    with pytest.raises(InputError, match="not UTF-8|binary"):
        read_tntp_net(tmp_path / "bin.tntp")


TRIPS = "<NUMBER OF ZONES> 2\n<TOTAL OD FLOW> 3000.0\n<END OF METADATA>\n\nOrigin 1\n" \
        " 1 : 0.0; 2 : 2000.0;\n\nOrigin 2\n 1 : 1000.0; 2 : 0.0;\n"


def test_trips_are_read_and_checked_against_the_total(tmp_path):
    od = read_tntp_trips(_write(tmp_path, "t_trips.tntp", TRIPS))
    assert od[["origin", "dest", "demand"]].values.tolist() == [[1, 2, 2000.0], [2, 1, 1000.0]]
    assert od.attrs["n_zones"] == 2


def test_a_trips_file_cut_at_a_line_boundary_is_detected(tmp_path):
    cut = TRIPS[: TRIPS.index("Origin 2")]  # ends cleanly after origin 1: the old reader ran it
    with pytest.raises(InputError, match=r"adds up to 2,000 but <TOTAL OD FLOW> is 3,000 "
                                         r"\(file cut short\?\)"):
        read_tntp_trips(_write(tmp_path, "c_trips.tntp", cut))


@pytest.mark.parametrize("body, expect", [
    ("Origin\n 2 : 5.0;\n", "line 4: expected 'Origin <zone id>', got 'Origin'"),
    ("Origin x\n 2 : 5.0;\n", "line 4: expected 'Origin <zone id>'"),
    (" 2 : 5.0;\nOrigin 1\n", "line 4: destination entries before any 'Origin' line"),
    ("Origin 1\n 2 : five;\n", "line 5: expected 'dest : demand;', got '2 : five'"),
    ("Origin 1\n 3 : 5.0;\n", "line 5: destination 3 outside the zones 1..2"),
    ("Origin 3\n 2 : 5.0;\n", "line 4: origin 3 outside the zones 1..2"),
    ("Origin 1\n 2 : -5.0;\n", "expected a finite number >= 0"),
    ("Origin 1\n 2 : 5.0; 2 : 1.0;\n", "demand 1 -> 2 given twice"),
    ("Origin 1\n 2 : 5.0;\nOrigin 1\n", "origin 1 given twice (first on line 4)"),
    ("", "no 'Origin <zone>' blocks"),
])
def test_bad_trips_files_name_the_line(tmp_path, body, expect):
    f = _write(tmp_path, "b_trips.tntp", "<NUMBER OF ZONES> 2\n<END OF METADATA>\n\n" + body)
    with pytest.raises(InputError) as err:
        read_tntp_trips(f)
    assert expect in str(err.value) and str(f) in str(err.value)


def test_trip_zones_must_be_the_nets_zones(tmp_path):
    net = read_tntp_net(_write(tmp_path, "n_net.tntp", META + HEADER + LINKS))
    od = read_tntp_trips(_write(tmp_path, "z_trips.tntp", TRIPS.replace("ZONES> 2", "ZONES> 3")))
    with pytest.raises(InputError, match="<NUMBER OF ZONES> is 3 here but 2 in the network"):
        check_trips_against_net(net, od)


def test_flow_file_is_read_by_its_header(tmp_path):
    f = _write(tmp_path, "f_flow.tntp", "From \tTo \tVolume \tCost \n1 \t2 \t5.5 \t7.25 \n"
                                        "3 \t2 \t1 \t2 \n")
    df = read_tntp_flow(f)
    assert df.values.tolist() == [[1, 2, 5.5, 7.25], [3, 2, 1.0, 2.0]]
    with pytest.raises(InputError, match="line 3: expected numbers"):
        read_tntp_flow(_write(tmp_path, "g_flow.tntp", "From To Volume Cost\n1 2 3 4\nx y z\n"))
