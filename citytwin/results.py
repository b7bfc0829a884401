"""Results of one run: tidy tables, a manifest, an atomic Parquet directory.

A results directory holds one Parquet file per table (see ``TABLES``) and ``manifest.json``
(scenario, scenario hash, seed, versions, wall time, creation time). It is written into a
temporary directory beside the target and renamed into place, so a reader (or a resumed
batch) never sees half a run. A previous result is swapped out atomically (Linux
``renameat2(RENAME_EXCHANGE)``), or replaced file by file under a journal that the next writer
rolls back after a kill (:func:`remove_stale_temp`): a kill -9 at any moment leaves either
the previous complete result or the new one, never a mix.

Temp and backup folders are named ``.NAME.tmp-<pid>@<host>-<hex>`` (``.old-`` for backups):
a writer on this host is dead when its pid is; a folder of another host (a Dask cluster's
workers sharing the results folder) is only taken as stale once nothing in it changed for
:data:`FOREIGN_TEMP_AGE_S` (a day; a writer only fills its temp folder while it writes the
tables, seconds to minutes), since its pid means nothing here.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from citytwin.errors import InputError

__all__ = ["Results", "TABLES", "empty_table", "versions", "atomic_write_dir", "unit_of",
           "check_output_dir", "remove_stale_temp", "FOREIGN_TEMP_AGE_S", "host_tag", "temp_tag",
           "writer_gone"]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
#: in a ``.NAME.old-*`` backup: which files a replace-in-place moved (for the roll-back)
MERGE_JOURNAL = ".citytwin-merge.json"

#: Contract columns and dtypes of every table (docs/contracts.md, "Results").
TABLES: dict[str, dict[str, str]] = {
    "kpis": {"scenario": "string", "seed": "int64", "domain": "string", "kpi": "string",
             "value": "float64", "unit": "string"},
    "timeseries": {"scenario": "string", "seed": "int64", "domain": "string",
                   "series": "string", "time_s": "float64", "value": "float64"},
    "trips": {"trip_id": "int64", "vehicle_id": "int64", "origin_node": "int64",
              "dest_node": "int64", "depart_s": "float64", "arrive_s": "float64",
              "route_length_m": "float64", "freeflow_s": "float64", "delay_s": "float64",
              "vehicle_type": "string", "status": "string"},
    "links": {"edge_id": "int64", "time_s": "float64", "volume": "float64",
              "speed_kph": "float64", "queue": "float64", "delay_h": "float64"},
    "assets": {"asset_id": "string", "kind": "string", "time_s": "float64",
               "loading_pct": "float64", "vm_pu": "float64"},
    "incidents": {"incident_id": "int64", "time_s": "float64", "type": "string",
                  "priority": "int64", "building_id": "int64", "unit_id": "string",
                  "turnout_s": "float64", "travel_s": "float64", "response_s": "float64",
                  "queued_s": "float64"},
}

_UNIT_SUFFIXES = (
    ("_pct", "%"), ("_kwh", "kWh"), ("_mwh", "MWh"), ("_kw", "kW"), ("_mw", "MW"),
    ("_kvar", "kvar"), ("_kva", "kVA"), ("_veh_h", "veh·h"), ("_veh_km", "veh·km"),
    ("_km", "km"), ("_m", "m"), ("_min", "min"), ("_s", "s"), ("_h", "h"),
    ("_kph", "km/h"), ("_pu", "p.u."), ("_c", "°C"), ("_count", "1"), ("_n", "1"),
    ("_share", "1"), ("_ratio", "1"), ("_eur", "EUR"), ("_t", "t"), ("_kg", "kg"),
)


def unit_of(kpi: str) -> str:
    """The unit encoded in a KPI name's suffix (``mean_delay_s`` -> ``s``), "" if none."""
    name = kpi.lower()
    for suffix, unit in _UNIT_SUFFIXES:
        if name.endswith(suffix):
            return unit
    return ""


def empty_table(name: str) -> pd.DataFrame:
    """A zero-row table with the contract columns and dtypes."""
    cols = TABLES[name]
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in cols.items()})


def _conform(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Order contract columns first with their dtypes; keep extra columns after them."""
    cols = TABLES.get(name)
    if cols is None:
        return df.reset_index(drop=True)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"table {name!r} lacks contract columns {missing} "
                         f"(expected {list(cols)})")
    extra = [c for c in df.columns if c not in cols]
    out = df[list(cols) + extra].reset_index(drop=True).copy()
    for c, t in cols.items():
        if t == "string":
            out[c] = out[c].astype("string")
        elif t == "int64":
            out[c] = pd.to_numeric(out[c]).astype("int64")
        else:
            out[c] = pd.to_numeric(out[c]).astype("float64")
    return out


def versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape results."""
    out = {"python": platform.python_version()}
    for pkg in ("citytwin", "numpy", "pandas", "scipy", "networkx", "mesa", "pandapower",
                "pyarrow", "pydantic"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:  # pragma: no cover - optional packages
            continue
    return out


#: Age (seconds since the last change inside it) after which another host's temp or backup
#: folder is taken as left by a dead writer.
FOREIGN_TEMP_AGE_S = 24 * 3600.0


@functools.cache
def host_tag() -> str:
    """This host's name as used in temp folder names (letters, digits, '.', '_', '-')."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname())[:64] or "host"


def temp_tag() -> str:
    """``<pid>@<host>``: who writes a temp folder (see :func:`remove_stale_temp`)."""
    return f"{os.getpid()}@{host_tag()}"


def _writer_of(name: str, marker: str) -> tuple[int, str] | None:
    """(pid, host) of a temp folder name; a name without ``@host`` (older citytwin) is this
    host's; None when the name is not a temp folder's."""
    try:
        tag = name.rsplit(marker, 1)[1].rsplit("-", 1)[0]
        pid_s, _, host = tag.partition("@")
        return int(pid_s), host or host_tag()
    except (IndexError, ValueError):
        return None


def _last_change(path: Path) -> float:
    """Newest mtime of ``path`` and (a folder) the entries directly in it."""
    times = [path.lstat().st_mtime]
    if not path.is_dir():
        return times[0]
    with os.scandir(path) as it:
        for e in it:
            try:
                times.append(e.stat(follow_symlinks=False).st_mtime)
            except OSError:
                continue
    return max(times)


def writer_gone(p: Path, marker: str, *, foreign_age_s: float = FOREIGN_TEMP_AGE_S) -> bool:
    """Whether the writer of the temp file or folder ``p`` (named ``…<marker><pid>@<host>-…``) is
    gone: on this host its pid is dead, another host's wrote nothing for ``foreign_age_s``."""
    who = _writer_of(p.name, marker)
    if who is None:
        return False
    pid, host = who
    if host == host_tag():
        return not _pid_alive(pid)
    try:
        return time.time() - _last_change(p) > foreign_age_s
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's live process
        return True
    return True


def remove_stale_temp(folder: str | Path, *,
                      foreign_age_s: float = FOREIGN_TEMP_AGE_S) -> list[Path]:
    """Clean up after writers killed beside ``folder`` (on this host: their pid no longer
    alive; another host's: nothing changed in the folder for ``foreign_age_s``): remove
    ``.NAME.tmp-<pid>@<host>-*`` dirs, roll back an interrupted replace-in-place from its
    ``.NAME.old-<pid>@<host>-*`` backup (journal inside), put back a previous result whose
    swap was cut between its two renames, and remove the other ``.old`` dirs. Returns what
    was removed."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for p in sorted(folder.glob(".*.*-*")):
        for marker in (".tmp-", ".old-"):
            if marker not in p.name:
                continue
            if not p.is_dir() or not writer_gone(p, marker, foreign_age_s=foreign_age_s):
                continue
            target = folder / p.name[1:].rsplit(marker, 1)[0]
            if marker == ".old-" and (p / MERGE_JOURNAL).is_file() and target.is_dir():
                log.warning("rolling back the interrupted write of %s from %s", target, p)
                _roll_back_merge(p, target)
            elif marker == ".old-" and not target.exists() and (p / MANIFEST).is_file():
                log.warning("putting back the previous result %s (its writer was killed "
                            "between two renames)", target)
                os.rename(p, target)
                continue
            log.info("removing stale temp dir %s", p)
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@functools.cache
def _renameat2() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # glibc < 2.28, musl
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``);
    False where the system or file system does not offer it."""
    fn = _renameat2()
    if fn is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def _own_files(path: Path) -> set[str]:
    """Names of the files citytwin writes in a results directory (tables + manifest)."""
    names = {MANIFEST} | {f"{t}.parquet" for t in TABLES}
    man = path / MANIFEST
    if man.is_file():
        try:
            names |= {f"{t}.parquet" for t in json.loads(man.read_text()).get("tables", [])}
        except (OSError, ValueError, AttributeError, TypeError):
            pass
    return names


def check_output_dir(target: str | Path, *, force: bool = False) -> Path:
    """The resolved ``target`` if citytwin may write a results directory there.

    Allowed: a path that does not exist, an empty folder, or a folder that is already a
    citytwin result (has ``manifest.json``). Anything else (a file, a folder with other
    files) is refused with :class:`InputError`; ``force`` allows a non-empty folder, and
    even then only citytwin's own files in it are replaced.
    """
    raw = target
    target = Path(target).expanduser().resolve()
    remove_stale_temp(target.parent)  # a killed writer's temp dirs, or its half-done replace
    if not target.exists():
        if target.parent.exists() and not target.parent.is_dir():
            raise InputError(f"--out {raw}: {target.parent} is a file, not a folder")
        return target
    if not target.is_dir():
        raise InputError(f"--out {raw}: {target} is an existing file, not a results folder; "
                         "choose a new folder name (citytwin never replaces other files)")
    if (target / MANIFEST).is_file() or force:
        return target
    others = sorted(p.name for p in target.iterdir())
    if others:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise InputError(
            f"--out {raw}: {target} is a folder that is not a citytwin result (no {MANIFEST}; "
            f"it holds {len(others)} entries: {shown}); choose a new or empty folder, or pass "
            "--force to write citytwin's files into it (other files are kept)")
    return target


def _merge_into(tmp: Path, target: Path, backup: Path) -> None:
    """Replace citytwin's files in an existing folder by those of ``tmp``; keep the rest.

    The previous files go to ``backup`` (manifest first: the folder reads as unfinished), the
    new ones come in (manifest last), then the journal in ``backup`` is removed - the commit.
    A writer killed before that is rolled back by :func:`remove_stale_temp`."""
    new = sorted(f.name for f in tmp.iterdir())
    # every file about to be replaced or removed is backed up first
    old = sorted(n for n in _own_files(target) | set(new) if (target / n).is_file())
    backup.mkdir()
    journal = backup / MERGE_JOURNAL
    with open(journal, "w", encoding="utf-8") as fh:
        json.dump({"old": old, "new": new}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(backup)
    first = [MANIFEST] if MANIFEST in old else []
    for name in first + [n for n in old if n != MANIFEST]:
        os.replace(target / name, backup / name)
    last = [MANIFEST] if MANIFEST in new else []
    for name in [n for n in new if n != MANIFEST] + last:
        os.replace(tmp / name, target / name)
    _fsync_dir(target)
    journal.unlink()  # committed
    _fsync_dir(backup)
    shutil.rmtree(backup, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)


def _roll_back_merge(backup: Path, target: Path) -> None:
    """Undo an interrupted :func:`_merge_into` (idempotent: a kill during the roll-back is
    rolled back again by the next writer). The manifest is restored last, so it is still in
    ``backup`` until everything else is back."""
    try:
        journal = json.loads((backup / MERGE_JOURNAL).read_text(encoding="utf-8"))
        old, new = list(journal["old"]), list(journal["new"])
    except (ValueError, KeyError, TypeError):  # cut while the journal was written: no file
        (backup / MERGE_JOURNAL).unlink()  # had been moved yet
        return
    if (backup / MANIFEST).exists() or MANIFEST not in old:
        (target / MANIFEST).unlink(missing_ok=True)  # never a manifest over a mix of files
    for name in old:
        if name != MANIFEST and (backup / name).exists():
            os.replace(backup / name, target / name)
    for name in new:
        if name not in old:
            (target / name).unlink(missing_ok=True)
    if (backup / MANIFEST).exists():
        os.replace(backup / MANIFEST, target / MANIFEST)
    _fsync_dir(target)
    (backup / MERGE_JOURNAL).unlink()


def atomic_write_dir(target: Path, write: Any, *, force: bool = False) -> Path:
    """Call ``write(tmpdir)`` then move the filled temp dir to ``target``.

    ``target`` must pass :func:`check_output_dir` (which first cleans up after killed
    writers). A new target is one rename; an existing citytwin result holding only citytwin's
    files is swapped in one atomic step (two renames where the file system cannot); any other
    existing folder (the working folder, one with the user's files, ``force``) gets citytwin's
    files replaced one by one under a journal, everything else in it is kept. An error half-way
    (a full disk) puts the previous result back before it is raised.
    """
    target = check_output_dir(target, force=force)  # (cleans up after killed writers)
    target.parent.mkdir(parents=True, exist_ok=True)
    tag = temp_tag()
    tmp = target.parent / f".{target.name}.tmp-{tag}-{uuid.uuid4().hex[:8]}"
    backup = target.parent / f".{target.name}.old-{tag}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        write(tmp)
        for f in tmp.iterdir():  # flush file contents before the rename makes them visible
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        try:
            os.rename(tmp, target)  # a new target (or an empty folder, on Linux)
            return target
        except OSError:
            if not target.is_dir():
                raise
        # the target exists (perhaps created by a racing writer meanwhile): check it again
        check_output_dir(target, force=force)
        cwd = Path.cwd().resolve()
        only_ours = {p.name for p in target.iterdir()} <= _own_files(target)
        if only_ours and target != cwd and target not in cwd.parents:
            if _exchange(tmp, target):  # one atomic step; tmp now holds the previous result
                shutil.rmtree(tmp, ignore_errors=True)
                return target
            os.rename(target, backup)  # a kill between these two: remove_stale_temp puts
            os.rename(tmp, target)  # the previous result back
            shutil.rmtree(backup, ignore_errors=True)
        else:
            _merge_into(tmp, target, backup)
    except BaseException:
        _undo(target, backup)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _undo(target: Path, backup: Path) -> None:
    """After an error (a full disk, a failed rename) half-way through replacing ``target``:
    the previous result back from ``backup`` at once, not only when the next writer comes."""
    if not backup.is_dir():
        return
    try:
        if (backup / MERGE_JOURNAL).is_file() and target.is_dir():
            _roll_back_merge(backup, target)
        elif not target.exists() and (backup / MANIFEST).is_file():
            os.rename(backup, target)
            return
        shutil.rmtree(backup, ignore_errors=True)
    except OSError as exc:  # the next writer tries again (remove_stale_temp)
        log.warning("could not restore %s from %s yet: %s", target, backup, exc)


@dataclass
class Results:
    """The tables and manifest of one run (scenario × seed)."""

    tables: dict[str, pd.DataFrame]
    manifest: dict[str, Any]
    path: Path | None = field(default=None)

    @classmethod
    def build(
        cls,
        *,
        scenario: str,
        seed: int,
        kpis: Mapping[str, Mapping[str, float]],
        tables: Mapping[str, pd.DataFrame],
        timeseries: Mapping[str, pd.DataFrame] | None = None,
        manifest: Mapping[str, Any],
    ) -> Results:
        """Assemble tables from per-domain KPI dicts and engine tables."""
        rows = [
            (scenario, int(seed), domain, str(k), float(v), unit_of(str(k)))
            for domain, values in kpis.items()
            for k, v in values.items()
        ]
        kpi_df = pd.DataFrame(rows, columns=list(TABLES["kpis"]))
        ts_parts = []
        for domain, ts in (timeseries or {}).items():
            if ts is None or ts.empty:
                continue
            ts = ts.copy()
            ts.insert(0, "domain", domain)
            ts.insert(0, "seed", int(seed))
            ts.insert(0, "scenario", scenario)
            ts_parts.append(ts)
        ts_df = pd.concat(ts_parts, ignore_index=True) if ts_parts else empty_table("timeseries")
        out: dict[str, pd.DataFrame] = {}
        for name in TABLES:
            if name == "kpis":
                df = kpi_df
            elif name == "timeseries":
                df = ts_df
            else:
                df = tables.get(name)
            out[name] = empty_table(name) if df is None or len(df.columns) == 0 else df
        for name, df in tables.items():
            if name not in out:
                out[name] = df
        return cls({n: _conform(n, df) for n, df in out.items()}, dict(manifest))

    # ---- convenience accessors
    @property
    def kpis(self) -> pd.DataFrame:
        return self.tables["kpis"]

    def kpi(self, name: str) -> float:
        """The value of one KPI (``InputError`` naming the known KPIs if unknown)."""
        hit = self.kpis.loc[self.kpis["kpi"] == name, "value"]
        if hit.empty:
            raise InputError(f"unknown KPI {name!r} (known: {sorted(self.kpis['kpi'])})")
        return float(hit.iloc[0])

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]

    # ---- identity
    def digest(self) -> str:
        """SHA-256 over every table's columns, dtypes and values (not the manifest)."""
        h = hashlib.sha256()
        for name in sorted(self.tables):
            df = self.tables[name]
            h.update(name.encode())
            h.update(json.dumps([[c, str(t)] for c, t in df.dtypes.items()]).encode())
            if len(df):
                h.update(np.ascontiguousarray(
                    pd.util.hash_pandas_object(df, index=False).to_numpy()).tobytes())
        return h.hexdigest()

    # ---- disk
    def write(self, out: str | Path, *, force: bool = False) -> Path:
        """Write the results directory atomically (see :func:`atomic_write_dir`).

        Afterwards ``manifest["digest"]`` is the digest written (as :meth:`read` gives it)."""
        out = Path(out).resolve()
        digest = self.digest()

        def _write(tmp: Path) -> None:
            for name, df in self.tables.items():
                df.to_parquet(tmp / f"{name}.parquet", index=False)
            manifest = dict(self.manifest)
            manifest["digest"] = digest
            manifest["tables"] = sorted(self.tables)  # citytwin's own files, for a rewrite
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True,
                                                   default=str))

        atomic_write_dir(out, _write, force=force)
        self.path = out
        self.manifest["digest"] = digest  # callers print it without hashing every table again
        log.info("wrote results %s", out)
        return out

    @classmethod
    def read(cls, path: str | Path) -> Results:
        """Read a results directory written by :meth:`write`."""
        path = Path(path)
        man = path / MANIFEST
        if not man.is_file():
            raise InputError(f"{path}: not a results directory (no {MANIFEST})")
        try:
            manifest = json.loads(man.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{man}: invalid JSON ({exc})") from None
        tables = {p.stem: pd.read_parquet(p) for p in sorted(path.glob("*.parquet"))}
        missing = [t for t in TABLES if t not in tables]
        if missing:
            raise InputError(f"{path}: missing tables {missing}")
        return cls(tables, manifest, path)

    @staticmethod
    def is_complete(path: str | Path) -> bool:
        """True when ``path`` is a finished results directory."""
        return (Path(path) / MANIFEST).is_file()
