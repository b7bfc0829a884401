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
