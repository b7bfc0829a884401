"""``citytwin validate [CITY_OR_SCENARIO]`` — the cross-domain validation suite."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="cross-domain validation checks (writes a report and "
                                        "prints a pass/fail table)")
    p.add_argument("target", nargs="?", default=None,
                   help="city file or scenario TOML (default: the shipped city)")
    p.add_argument("--out", default=None,
                   help="report folder (validation.md, validation.json; default "
                        "validation_<city>)")
    p.add_argument("--days", type=int, default=3, help="length of the coupled runs, days")
    p.add_argument("--only", action="append", default=None,
                   help="run only this check (repeatable)")
    p.add_argument("--power-flow", action="store_true",
                   help="solve the power flow every step (losses enter the balance)")
    p.set_defaults(func=_validate)


def _validate(args: argparse.Namespace) -> int:
    from citytwin.validate import validate

    report = validate(args.target, days=args.days, only=args.only, power_flow=args.power_flow)
    out = Path(args.out) if args.out else Path(f"validation_{report.city}")
    report.write(out)
    print(report.table())
    print(f"report: {out / 'validation.md'}, {out / 'validation.json'}")
    return 0 if report.ok else 1
