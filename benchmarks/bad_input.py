"""Hostile inputs (issue 13): how each case of the corpora ends, through the real CLI.

Prints one line per case that is not clear-or-repaired, then the score per corpus:
tried / clear / repaired / traceback / silent / lost.

    .venv/bin/python benchmarks/bad_input.py [--verbose]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUTCOMES = ("clear", "repaired", "traceback", "silent", "lost")


def main() -> int:
    from tests.hostile import corpus

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--verbose", action="store_true", help="print every case and its message")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    corpora = {"scenario": corpus.SCENARIO_CASES}
    geodata = getattr(corpus, "GEODATA_CASES", None)
    if geodata:
        corpora["geodata"] = geodata
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for label, cases in corpora.items():
            counts: Counter[str] = Counter()
            for i, (name, write) in enumerate(cases):
                outcome, msg = corpus.classify(write, Path(tmp) / label / str(i),
                                               repaired=name in corpus.REPAIRED)
                counts[outcome] += 1
                if args.verbose or outcome not in ("clear", "repaired"):
                    print(f"  {label:8s} {outcome:9s} {name}: {msg.splitlines()[0][:160]}")
            n = sum(counts.values())
            ok = counts["clear"] + counts["repaired"]
            bad += n - ok
            print(f"{label:8s} tried {n}  " + "  ".join(f"{o} {counts[o]}" for o in OUTCOMES)
                  + f"  -> {100 * ok / max(n, 1):.0f} % clear-or-repaired")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
