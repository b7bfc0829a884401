"""The city cache's temp files carry their writer's pid and host, like the result folders'."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from citytwin.city import _atomic_pickle
from citytwin.results import FOREIGN_TEMP_AGE_S, host_tag


def test_stale_cache_temps_by_host_and_age(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    mine_dead = tmp_path / f"city.pkl.tmp-{dead}@{host_tag()}-a"
    mine_live = tmp_path / f"city.pkl.tmp-{os.getpid()}@{host_tag()}-b"
    other_new = tmp_path / "city.pkl.tmp-1@another-node-c"
    other_old = tmp_path / "city.pkl.tmp-1@another-node-d"
    legacy_dead = tmp_path / f"city.pkl.tmp-{dead}-e"  # a name from before the host tag
    for p in (mine_dead, mine_live, other_new, other_old, legacy_dead):
        p.write_bytes(b"partial")
    old = time.time() - FOREIGN_TEMP_AGE_S - 60
    os.utime(other_old, (old, old))
    _atomic_pickle({"x": 1}, tmp_path / "city.pkl")
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"city.pkl", mine_live.name, other_new.name}
