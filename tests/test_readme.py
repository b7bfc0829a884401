"""The README's Python snippet runs as written (a script with worker processes)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _snippet() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python block"
    return blocks[0]


@pytest.mark.slow
def test_readme_snippet_runs_as_a_script(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    (tmp_path / "geodata").symlink_to(ROOT / "geodata")
    script = tmp_path / "snippet.py"
    script.write_text(_snippet(), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    # printed once each (no re-run of the work in the worker processes)
    assert proc.stdout.count("response_mean_s") == 2  # the baseline and the new station rows
    for d in ("ev_40", "stations", "ev_policy"):
        assert (tmp_path / "results" / d).is_dir()
