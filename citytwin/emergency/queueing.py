"""Analytic references for validation: Erlang-B and Larson's (1974) hypercube queueing model.

The hypercube model (zero-line capacity, i.e. lost calls): N distinguishable servers, arrivals
from atoms j at Poisson rate ``lam[j]``, each atom has a dispatch preference order over servers;
a call goes to the first free server of its atom's list, or is lost when all are busy. Service is
exponential with rate ``mu`` per server. The state is the set of busy servers (2^N states);
we solve the continuous-time Markov chain's balance equations exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["erlang_b", "erlang_c", "hypercube"]


def erlang_b(servers: int, offered_erlangs: float) -> float:
    """Blocking probability of M/M/c/c (stable recursion B(k) = a B(k-1) / (k + a B(k-1)))."""
    if servers < 0 or offered_erlangs < 0:
        raise ValueError("erlang_b: servers and offered load must be >= 0")
    b = 1.0
    for k in range(1, servers + 1):
        b = offered_erlangs * b / (k + offered_erlangs * b)
    return b


def erlang_c(servers: int, offered_erlangs: float) -> float:
    """Probability that a call waits in M/M/c (infinite queue); needs offered load < servers.

    Mean wait of all calls: ``erlang_c(c, a) / (c * mu - lam)``.
    """
    if offered_erlangs >= servers:
        raise ValueError("erlang_c: offered load must be below the number of servers")
    b = erlang_b(servers, offered_erlangs)
    return servers * b / (servers - offered_erlangs * (1.0 - b))


def hypercube(
    lam: Sequence[float], preferences: Sequence[Sequence[int]], mu: float, n_servers: int
) -> dict[str, np.ndarray | float]:
    """Steady state of the zero-line-capacity hypercube model.

    Returns ``p`` (probability of each busy-set bitmask, shape 2^N), ``busy`` (busy fraction per
    server), ``all_busy`` (P(every server busy) = loss probability by PASTA) and ``workload``
    (share of calls handled by each server).
    """
    n = n_servers
    if n > 12:
        raise ValueError("hypercube: at most 12 servers (2^N states)")
    rates = np.asarray(lam, dtype=float)
    if len(preferences) != len(rates):
        raise ValueError("hypercube: one preference list per atom")
    s = 1 << n
    q = np.zeros((s, s))
    for b in range(s):
        for j, pref in enumerate(preferences):
            free = next((i for i in pref if not (b >> i) & 1), None)
            if free is not None:
                q[b, b | (1 << free)] += rates[j]
        for i in range(n):
            if (b >> i) & 1:
                q[b, b & ~(1 << i)] += mu
    np.fill_diagonal(q, -q.sum(axis=1))
    # pi Q = 0, sum pi = 1: replace one balance equation by the normalisation
    a = q.T.copy()
    a[-1, :] = 1.0
    rhs = np.zeros(s)
    rhs[-1] = 1.0
    p = np.linalg.solve(a, rhs)
    busy = np.array([p[[b for b in range(s) if (b >> i) & 1]].sum() for i in range(n)])
    dispatched = np.zeros(n)
    for b in range(s):
        for j, pref in enumerate(preferences):
            free = next((i for i in pref if not (b >> i) & 1), None)
            if free is not None:
                dispatched[free] += p[b] * rates[j]
    return {"p": p, "busy": busy, "all_busy": float(p[s - 1]),
            "workload": dispatched / dispatched.sum()}
