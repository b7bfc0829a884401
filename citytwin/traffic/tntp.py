"""TNTP files (``*_net.tntp``, ``*_trips.tntp``, ``*_flow.tntp``) read and checked.

Format: https://github.com/bstabler/TransportationNetworks (the README there). A file opens with
``<KEY> value`` metadata up to ``<END OF METADATA>``; a net file then has a ``~ init_node
term_node capacity …`` header naming its columns and one link per line ending in ``;``; a trips
file has ``Origin r`` blocks of ``s : demand;`` entries. Every problem of a file is collected and
raised as one :class:`~citytwin.errors.InputError` naming the file, the line and what was
expected: the metadata must agree with the data (NUMBER OF NODES / LINKS / ZONES, FIRST THRU
NODE, TOTAL OD FLOW — a trips file cut short is caught by the last). Node ids are 1-based; 0 is
an error. The generalized cost weights ``<TOLL FACTOR>`` and ``<DISTANCE FACTOR>`` are read.

This module imports only numpy and pandas, so ``citytwin traffic ue`` starts quickly.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from citytwin.errors import InputError

__all__ = [
    "TntpNetwork",
    "read_tntp_net",
    "read_tntp_trips",
    "read_tntp_flow",
    "check_trips_against_net",
    "NET_COLUMNS",
]

#: The net file's columns, in the standard order (used when a file has no ``~`` header).
NET_COLUMNS = ("init_node", "term_node", "capacity", "length", "free_flow_time", "b", "power",
               "speed", "toll", "link_type")
_REQUIRED = ("init_node", "term_node", "capacity", "free_flow_time", "b", "power")
_ALIASES = {
    "init_node": "init_node", "init": "init_node", "initnode": "init_node", "from": "init_node",
    "from_node": "init_node", "a_node": "init_node", "tail": "init_node",
    "term_node": "term_node", "term": "term_node", "termnode": "term_node", "to": "term_node",
    "to_node": "term_node", "b_node": "term_node", "head": "term_node",
    "capacity": "capacity", "cap": "capacity",
    "length": "length", "len": "length", "distance": "length",
    "free_flow_time": "free_flow_time", "fft": "free_flow_time", "freeflowtime": "free_flow_time",
    "free_flow_travel_time": "free_flow_time", "t0": "free_flow_time",
    "b": "b", "alpha": "b", "bpr_b": "b",
    "power": "power", "beta": "power", "bpr_power": "power",
    "speed": "speed", "speed_limit": "speed", "speedlimit": "speed",
    "toll": "toll",
    "link_type": "link_type", "type": "link_type", "linktype": "link_type",
}
_INT_META = ("NUMBER OF NODES", "NUMBER OF LINKS", "NUMBER OF ZONES", "FIRST THRU NODE")
_FLOAT_META = ("TOLL FACTOR", "DISTANCE FACTOR", "TOTAL OD FLOW")


@dataclass(frozen=True)
class TntpNetwork:
    """Links of a TNTP network and its metadata.

    ``links`` has the columns of :data:`NET_COLUMNS` (node ids 1-based, in file order);
    ``toll_factor`` and ``distance_factor`` weigh toll and length into the generalized cost
    ``time + toll_factor * toll + distance_factor * length`` that users minimise.
    """

    links: pd.DataFrame
    n_nodes: int
    n_zones: int
    first_thru_node: int
    toll_factor: float = 0.0
    distance_factor: float = 0.0
    source: str = ""

    def fixed_cost(self) -> np.ndarray:
        """Flow-independent part of each link's generalized cost (toll and distance terms)."""
        fixed = np.zeros(len(self.links))
        if self.toll_factor:
            fixed += self.toll_factor * self.links["toll"].to_numpy(dtype=float)
        if self.distance_factor:
            fixed += self.distance_factor * self.links["length"].to_numpy(dtype=float)
        return fixed


def _read_lines(path: Path, kind: str) -> list[str]:
    if path.is_dir():
        raise InputError([f"is a directory; expected a TNTP {kind} file"], source=str(path))
    if not path.exists():
        raise InputError([f"no such file; expected a TNTP {kind} file"], source=str(path))
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError([f"byte {exc.start}: not UTF-8 text; expected a TNTP {kind} file"],
                         source=str(path)) from None
    except OSError as exc:
        raise InputError([f"cannot be read ({exc.strerror}); expected a TNTP {kind} file"],
                         source=str(path)) from None
    if "\x00" in text:
        raise InputError([f"binary data (NUL bytes); expected a TNTP {kind} text file"],
                         source=str(path))
    if not text.strip():
        raise InputError([f"empty file; expected a TNTP {kind} file starting with metadata "
                          "such as '<NUMBER OF ZONES> 24' and '<END OF METADATA>'"],
                         source=str(path))
    return text.splitlines()


def _metadata(lines: list[str], problems: list[str]) -> tuple[dict[str, float], int]:
    """``<KEY> value`` lines up to ``<END OF METADATA>``; numbers checked. Returns (meta, start)."""
    meta: dict[str, float] = {}
    end = -1
    seen: dict[str, int] = {}
    for i, line in enumerate(lines):
        s = line.strip()
        if not s:
            continue
        m = re.match(r"<([^>]*)>\s*(.*)$", s)
        if not m:
            if not seen:  # data before any metadata: a file without a metadata block
                return meta, i
            continue
        key, value = m.group(1).strip().upper(), m.group(2).strip()
        if key == "END OF METADATA":
            end = i
            break
        if key in seen:
            problems.append(f"line {i + 1}: <{key}> given twice (first on line {seen[key]})")
        seen[key] = i + 1
        if key in _INT_META or key in _FLOAT_META:
            try:
                num = float(value.rstrip(";").strip())
            except ValueError:
                problems.append(f"line {i + 1}: <{key}> expected a number, got {value[:40]!r}")
                continue
            if not math.isfinite(num) or num < 0:
                problems.append(f"line {i + 1}: <{key}> expected a number >= 0, got {value!r}")
            elif key in _INT_META and num != int(num):
                problems.append(f"line {i + 1}: <{key}> expected a whole number, got {value!r}")
            else:
                meta[key] = num
    if end < 0:
        if seen:
            problems.append("no '<END OF METADATA>' line after the metadata")
        return meta, len(lines) if seen else 0
    return meta, end + 1


def _header(s: str) -> list[str] | None:
    """Column names of a ``~ …`` header line, or None if it does not name link columns."""
    body = s.lstrip("~").strip().rstrip(";").strip()
    parts = [p for p in re.split(r"\t+", body) if p.strip()] if "\t" in body else body.split()
    names = []
    for p in parts:
        key = re.sub(r"[\s\-]+", "_", p.strip().lower()).strip("_")
        names.append(_ALIASES.get(key, _ALIASES.get(key.replace("_", ""), key)))
    if "init_node" in names and "term_node" in names:
        return names
    return None


def read_tntp_net(path: str | Path) -> TntpNetwork:
    """Read and check a ``*_net.tntp`` file (columns by its ``~`` header when it has one)."""
    path = Path(path)
    lines = _read_lines(path, "network")
    problems: list[str] = []
    meta, start = _metadata(lines, problems)
    cols: list[str] | None = None
    rows: list[list[float]] = []
    row_line: list[int] = []
    for i in range(start, len(lines)):
        s = lines[i].strip()
        if not s:
            continue
        if s.startswith("~"):
            h = _header(s)
            if h is not None and not rows:
                cols = h
            continue
        if s.startswith("<"):
            problems.append(f"line {i + 1}: metadata line after the data: {s[:60]!r}")
            continue
        parts = s.split(";")[0].split()
        if cols is None:
            cols = list(NET_COLUMNS[:max(len(parts), len(_REQUIRED))])
            if len(parts) > len(NET_COLUMNS):
                cols += [f"extra_{k}" for k in range(len(parts) - len(NET_COLUMNS))]
        try:
            vals = [float(x) for x in parts]
        except ValueError:
            problems.append(f"line {i + 1}: expected {len(cols)} numbers "
                            f"({' '.join(cols)}), got {s[:80]!r}")
            continue
        if len(vals) != len(cols):
            problems.append(f"line {i + 1}: expected {len(cols)} values ({' '.join(cols)}), "
                            f"got {len(vals)}")
            continue
        rows.append(vals)
        row_line.append(i + 1)
    if cols is not None:
        missing = [c for c in _REQUIRED if c not in cols]
        if missing:
            problems.append(f"column header names no {', '.join(missing)} "
                            f"(expected e.g. '~ {' '.join(NET_COLUMNS)} ;'); got {cols}")
        dup = sorted({c for c in cols if cols.count(c) > 1})
        if dup:
            problems.append(f"column header names {dup} twice")
    if not rows and not problems:
        problems.append("no link lines after the metadata; expected lines like "
                        "'1 2 25900.2 6 6 0.15 4 0 0 1 ;'")
    if problems:
        raise InputError(problems, source=str(path))
    assert cols is not None
    df = pd.DataFrame(np.array(rows, dtype=float), columns=cols)
    for c in NET_COLUMNS:
        if c not in df:
            df[c] = 0.0
    df = df[list(NET_COLUMNS) + [c for c in cols if c not in NET_COLUMNS]]
    lines_of = np.asarray(row_line)

    def where(mask: np.ndarray) -> str:
        idx = np.flatnonzero(mask)
        shown = ", ".join(str(int(x)) for x in lines_of[idx[:5]])
        return f"line{'s' if idx.size > 1 else ''} {shown}{' …' if idx.size > 5 else ''}" \
               f" ({idx.size} link{'s' if idx.size > 1 else ''})"

    n_nodes_meta = meta.get("NUMBER OF NODES")
    for c in ("init_node", "term_node"):
        v = df[c].to_numpy()
        if (bad := ~np.isfinite(v) | (v != np.round(v))).any():
            problems.append(f"{where(bad)}: {c} expected a whole node id")
        elif (bad := v < 1).any():
            problems.append(f"{where(bad)}: {c} expected a node id >= 1 (TNTP ids are 1-based), "
                            f"got {v[bad][0]:g}")
        elif n_nodes_meta is not None and (bad := v > n_nodes_meta).any():
            problems.append(f"{where(bad)}: {c} {v[bad][0]:g} is above <NUMBER OF NODES> "
                            f"{n_nodes_meta:g}")
    checks = [("capacity", lambda v: v > 0, "> 0"), ("free_flow_time", lambda v: v >= 0, ">= 0"),
              ("b", lambda v: v >= 0, ">= 0"), ("power", lambda v: v > 0, "> 0"),
              ("length", lambda v: v >= 0, ">= 0"), ("toll", lambda v: v >= 0, ">= 0")]
    for c, ok, what in checks:
        v = df[c].to_numpy()
        if (bad := ~(np.isfinite(v) & ok(v))).any():
            problems.append(f"{where(bad)}: {c} expected a finite number {what}, "
                            f"got {v[bad][0]:g}")
    if (bad := (df["init_node"] == df["term_node"]).to_numpy()).any():
        problems.append(f"{where(bad)}: a link from a node to itself")
    n_links = meta.get("NUMBER OF LINKS")
    if n_links is not None and n_links != len(df):
        problems.append(f"<NUMBER OF LINKS> is {n_links:g} but the file has {len(df)} link lines"
                        + (" (cut short?)" if len(df) < n_links else ""))
    top = int(df[["init_node", "term_node"]].to_numpy().max()) if not problems else 0
    n_nodes = int(n_nodes_meta) if n_nodes_meta is not None else top
    n_zones = int(meta.get("NUMBER OF ZONES", n_nodes))
    ftn = int(meta.get("FIRST THRU NODE", 1))
    if n_zones > n_nodes:
        problems.append(f"<NUMBER OF ZONES> {n_zones} is above <NUMBER OF NODES> {n_nodes}")
    if not 1 <= ftn <= max(n_nodes, 1) + 1:
        problems.append(f"<FIRST THRU NODE> {ftn} expected within 1..{n_nodes + 1}")
    toll_f = float(meta.get("TOLL FACTOR", 0.0))
    dist_f = float(meta.get("DISTANCE FACTOR", 0.0))
    if toll_f and "toll" not in cols:
        problems.append(f"<TOLL FACTOR> is {toll_f:g} but the header names no toll column")
    if dist_f and "length" not in cols:
        problems.append(f"<DISTANCE FACTOR> is {dist_f:g} but the header names no length column")
    if problems:
        raise InputError(problems, source=str(path))
    df["init_node"] = df["init_node"].astype(np.int64)
    df["term_node"] = df["term_node"].astype(np.int64)
    return TntpNetwork(links=df, n_nodes=n_nodes, n_zones=n_zones, first_thru_node=ftn,
                       toll_factor=toll_f, distance_factor=dist_f, source=str(path))


_ORIGIN = re.compile(r"origin\b\s*(.*)$", re.IGNORECASE)


def read_tntp_trips(path: str | Path, *, keep_zero: bool = False) -> pd.DataFrame:
    """Read and check a ``*_trips.tntp`` OD table: columns ``origin``, ``dest`` (1-based zone
    ids), ``demand``. Intrazonal and zero entries are dropped unless ``keep_zero``.

    ``df.attrs`` carries ``n_zones`` (from ``<NUMBER OF ZONES>``) and ``source``."""
    path = Path(path)
    lines = _read_lines(path, "trips")
    problems: list[str] = []
    meta, start = _metadata(lines, problems)
    n_zones = int(meta["NUMBER OF ZONES"]) if "NUMBER OF ZONES" in meta else None
    origins: list[int] = []
    dests: list[int] = []
    demand: list[float] = []
    origin: int | None = None
    origin_failed = False
    origin_line: dict[int, int] = {}
    seen_dest: set[int] = set()
    for i in range(start, len(lines)):
        s = lines[i].strip()
        if not s or s.startswith("~"):
            continue
        m = _ORIGIN.match(s)
        if m:
            tok = m.group(1).strip().rstrip(";").strip()
            try:
                origin = int(tok)
            except ValueError:
                problems.append(f"line {i + 1}: expected 'Origin <zone id>', got {s[:60]!r}")
                origin, origin_failed = None, True
                continue
            origin_failed = False
            if origin < 1 or (n_zones is not None and origin > n_zones):
                problems.append(f"line {i + 1}: origin {origin} outside the zones 1.."
                                f"{n_zones if n_zones is not None else 'N'}")
            if origin in origin_line:
                problems.append(f"line {i + 1}: origin {origin} given twice "
                                f"(first on line {origin_line[origin]})")
            origin_line[origin] = i + 1
            seen_dest = set()
            continue
        if s.startswith("<"):
            problems.append(f"line {i + 1}: metadata line after the data: {s[:60]!r}")
            continue
        if origin is None:
            if not origin_failed:
                problems.append(f"line {i + 1}: destination entries before any 'Origin' line")
            continue
        for item in s.split(";"):
            item = item.strip()
            if not item:
                continue
            parts = item.split(":")
            try:
                if len(parts) != 2:
                    raise ValueError
                d, v = int(parts[0]), float(parts[1])
            except ValueError:
                problems.append(f"line {i + 1}: expected 'dest : demand;', got {item[:40]!r}")
                continue
            if d < 1 or (n_zones is not None and d > n_zones):
                problems.append(f"line {i + 1}: destination {d} outside the zones 1.."
                                f"{n_zones if n_zones is not None else 'N'}")
            elif not (math.isfinite(v) and v >= 0):
                problems.append(f"line {i + 1}: demand {origin} -> {d} expected a finite "
                                f"number >= 0, got {parts[1].strip()!r}")
            elif d in seen_dest:
                problems.append(f"line {i + 1}: demand {origin} -> {d} given twice")
            else:
                seen_dest.add(d)
                origins.append(origin)
                dests.append(d)
                demand.append(v)
    if not origin_line and not problems:
        problems.append("no 'Origin <zone>' blocks after the metadata")
    total = float(np.sum(demand)) if demand else 0.0
    expected = meta.get("TOTAL OD FLOW")
    if not problems and expected is not None and \
            not math.isclose(total, expected, rel_tol=1e-6, abs_tol=1e-6):
        problems.append(f"the demand adds up to {total:,.6g} but <TOTAL OD FLOW> is "
                        f"{expected:,.6g}" + (" (file cut short?)" if total < expected else ""))
    if problems:
        raise InputError(problems, source=str(path))
    od = pd.DataFrame({"origin": np.asarray(origins, dtype=np.int64),
                       "dest": np.asarray(dests, dtype=np.int64),
                       "demand": np.asarray(demand, dtype=float)})
    if not keep_zero:
        od = od[(od["demand"] > 0) & (od["origin"] != od["dest"])].reset_index(drop=True)
    od.attrs["n_zones"] = n_zones
    od.attrs["source"] = str(path)
    return od


def check_trips_against_net(net: TntpNetwork, od: pd.DataFrame) -> None:
    """The trips' zones must be zones of the net (``<NUMBER OF ZONES>`` agree, ids in range)."""
    problems = []
    nz = od.attrs.get("n_zones")
    if nz is not None and nz != net.n_zones:
        problems.append(f"<NUMBER OF ZONES> is {nz} here but {net.n_zones} in the network "
                        f"{net.source or ''}".rstrip())
    for col in ("origin", "dest"):
        v = od[col].to_numpy()
        bad = (v < 1) | (v > net.n_zones)
        if bad.any():
            problems.append(f"{col} zone ids outside the network's zones 1..{net.n_zones}: "
                            f"{sorted(set(v[bad].tolist()))[:5]}")
    if problems:
        raise InputError(problems, source=od.attrs.get("source") or "trips")


def read_tntp_flow(path: str | Path) -> pd.DataFrame:
    """Read a ``*_flow.tntp`` solution: ``init_node``, ``term_node``, ``volume`` and, where the
    file has it, ``cost`` (the file's cost column: the generalized cost on nets with tolls or
    distance factors — recompute travel times from the volumes to compare times)."""
    path = Path(path)
    lines = _read_lines(path, "flow")
    problems: list[str] = []
    cols: list[str] | None = None
    rows: list[list[float]] = []
    names = {"from": "init_node", "init_node": "init_node", "init": "init_node",
             "tail": "init_node", "to": "term_node", "term_node": "term_node",
             "term": "term_node", "head": "term_node", "volume": "volume", "flow": "volume",
             "cost": "cost", "time": "cost"}
    for i, line in enumerate(lines):
        s = line.strip().lstrip("~").strip()
        if not s or s.startswith("<"):
            continue
        parts = s.split(";")[0].split()
        try:
            vals = [float(x) for x in parts]
        except ValueError:
            if cols is None and not rows:
                cols = [names.get(p.lower(), p.lower()) for p in parts]
                continue
            problems.append(f"line {i + 1}: expected numbers, got {s[:60]!r}")
            continue
        if cols is None:
            cols = ["init_node", "term_node", "volume", "cost"][:len(vals)]
        if len(vals) < 3 or len(vals) != len(cols):
            problems.append(f"line {i + 1}: expected {len(cols)} values ({' '.join(cols)}), "
                            f"got {len(vals)}")
            continue
        rows.append(vals)
    if cols is not None and not {"init_node", "term_node", "volume"} <= set(cols):
        problems.append(f"header names no From/To/Volume columns: {cols}")
    if not rows and not problems:
        problems.append("no flow lines; expected 'From To Volume Cost' rows")
    if problems:
        raise InputError(problems, source=str(path))
    assert cols is not None
    df = pd.DataFrame(np.array(rows, dtype=float), columns=cols)
    keep = [c for c in ("init_node", "term_node", "volume", "cost") if c in df]
    df = df[keep]
    for c in ("init_node", "term_node"):
        v = df[c].to_numpy()
        if ((v != np.round(v)) | (v < 1)).any():
            raise InputError([f"column {c}: expected node ids >= 1"], source=str(path))
    df["init_node"] = df["init_node"].astype(np.int64)
    df["term_node"] = df["term_node"].astype(np.int64)
    df.attrs["source"] = str(path)
    return df
