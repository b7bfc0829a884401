"""Issue 14 item 6: progress bars on stderr for run/batch, off when not a TTY or --quiet."""

from __future__ import annotations

import sys

from citytwin._cli.run import _bar
from citytwin.cli import build_parser


def test_bar_only_on_a_terminal(monkeypatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    on = _bar(10, "run", False)
    off = _bar(10, "run", True)
    assert not on.disable and off.disable
    on.close()
    off.close()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    piped = _bar(10, "run", False)
    assert piped.disable
    piped.close()


def test_quiet_flag_on_run_and_batch() -> None:
    parser = build_parser()
    for argv in (["run", "s.toml", "--quiet"], ["run", "s.toml", "-q"],
                 ["batch", "s.toml", "--quiet"], ["run", "s.toml", "--no-progress"]):
        assert parser.parse_args(argv).no_progress is True
    assert parser.parse_args(["run", "s.toml"]).no_progress is False
