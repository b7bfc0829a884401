"""One source of randomness per run: named, independent child streams from the run seed."""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["stream"]


def stream(seed: int, concern: str) -> np.random.Generator:
    """Return the generator for ``concern`` (e.g. ``"demand"``, ``"incidents"``) of run ``seed``.

    The same (seed, concern) always gives the same stream, in any process, and streams of
    different concerns are independent (the concern name is hashed into the seed sequence).
    """
    key = int.from_bytes(hashlib.sha256(concern.encode()).digest()[:8], "little")
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, key]))
