"""Hostile inputs (issue 13): how each case of the corpora ends, through the real CLI
(scenario and geodata corpora) and, with ``--app``, through the real app in headless
Chromium (the app probes of tests/hostile/app_corpus.py: uploads, selects, scenario path
fields; needs /usr/bin/chromium and Playwright).

Prints one line per case that is not clear-or-repaired, then the score per corpus:
tried / clear / repaired / traceback / silent / lost, and the total.

    .venv/bin/python benchmarks/bad_input.py [--app] [--verbose]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUTCOMES = ("clear", "repaired", "traceback", "silent", "lost")


def main() -> int:
    from tests.hostile import corpus

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--verbose", action="store_true", help="print every case and its message")
    ap.add_argument("--app", action="store_true",
                    help="also the app probes, through the real app in headless Chromium")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    corpora = {"scenario": corpus.SCENARIO_CASES}
    geodata = getattr(corpus, "GEODATA_CASES", None)
    if geodata:
        corpora["geodata"] = geodata
    total: Counter[str] = Counter()
    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        for label, cases in corpora.items():
            counts: Counter[str] = Counter()
            for i, (name, write) in enumerate(cases):
                outcome, msg = corpus.classify(write, Path(tmp) / label / str(i),
                                               repaired=name in corpus.REPAIRED)
                counts[outcome] += 1
                _case(args.verbose, label, outcome, name, msg)
            _score(label, counts)
            total.update(counts)
        if args.app:
            counts = _app_corpus(Path(tmp) / "app", verbose=args.verbose)
            _score("app", counts)
            total.update(counts)
    _score("total", total)
    print(f"wall {time.perf_counter() - t0:.0f} s, CPU of this process {time.process_time() - c0:.0f} s"
          f" (the app server and Chromium not counted), load {os.getloadavg()[0]:.2f}")
    return 0 if total["clear"] + total["repaired"] == sum(total.values()) else 1


def _case(verbose: bool, label: str, outcome: str, name: str, msg: str) -> None:
    if verbose or outcome not in ("clear", "repaired"):
        first = (msg.splitlines() or [""])[0]
        print(f"  {label:8s} {outcome:9s} {name}: {first[:160]}")


def _score(label: str, counts: Counter[str]) -> None:
    n = sum(counts.values())
    ok = counts["clear"] + counts["repaired"]
    print(f"{label:8s} tried {n}  " + "  ".join(f"{o} {counts[o]}" for o in OUTCOMES)
          + f"  -> {100 * ok / max(n, 1):.0f} % clear-or-repaired")


def _app_corpus(folder: Path, *, verbose: bool) -> Counter[str]:
    """The app probes (tests/hostile/app_corpus.py) against one app server and browser."""
    from tests.hostile import app_corpus

    counts: Counter[str] = Counter()
    if not app_corpus.chromium_available():
        print("app      skipped: /usr/bin/chromium not installed")
        return counts
    folder.mkdir(parents=True)
    with app_corpus.app_session(folder) as env:
        for probe in app_corpus.APP_PROBES:
            outcome, msg = app_corpus.run_probe(env, probe)
            counts[outcome] += 1
            _case(verbose, "app", outcome, probe.name, msg)
    return counts


if __name__ == "__main__":
    sys.exit(main())
