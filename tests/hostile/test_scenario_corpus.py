"""Issue 13: every hostile scenario ends in one clear error (or a documented repair)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.corpus import REPAIRED, SCENARIO_CASES, classify


def test_corpus_is_big_enough() -> None:
    assert len(SCENARIO_CASES) >= 50
    assert len({name for name, _ in SCENARIO_CASES}) == len(SCENARIO_CASES)


@pytest.mark.parametrize("name,write", SCENARIO_CASES, ids=[c[0] for c in SCENARIO_CASES])
def test_scenario_case(name, write, tmp_path: Path) -> None:
    outcome, msg = classify(write, tmp_path / "case", repaired=name in REPAIRED)
    expected = "repaired" if name in REPAIRED else "clear"
    assert outcome == expected, f"{name}: {outcome}: {msg}"
    if outcome == "clear":  # names the file (or the key) it is about
        assert "s.toml" in msg or "a.toml" in msg or ".toml" in msg or ":" in msg
