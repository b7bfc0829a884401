"""Fast shortest paths on the road graph: CSR arrays + ``scipy.sparse.csgraph``.

The road graph (``nx.MultiDiGraph``) is flattened once into :class:`RoadArrays`: node positions
``0..n-1`` and edge arrays indexed by the edge attribute ``edge_id`` (``0..m-1``). Link costs are a
plain ``float`` array of length ``m`` (seconds), so time-dependent costs are just a new array.
Parallel edges are collapsed to the cheapest one when a sparse matrix is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

__all__ = ["RoadArrays", "road_arrays", "travel_times", "shortest_path_tree", "path_edges"]


@dataclass(frozen=True)
class RoadArrays:
    """The road graph as arrays. ``node_ids[i]`` is the graph node at position ``i``."""

    node_ids: np.ndarray  # (n,) graph node ids
    x: np.ndarray  # (n,) metres, projected CRS
    y: np.ndarray
    edge_from: np.ndarray  # (m,) node positions, indexed by edge_id
    edge_to: np.ndarray
    length_m: np.ndarray  # (m,)
    freeflow_s: np.ndarray  # (m,) length / speed
    lanes: np.ndarray  # (m,)
    capacity_vph: np.ndarray  # (m,) whole-link capacity, vehicles per hour
    edge_keys: tuple[tuple[object, object, int], ...]  # (u, v, key) per edge_id

    @property
    def n_nodes(self) -> int:
        return int(self.node_ids.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edge_from.shape[0])

    def node_pos(self, node_id: object) -> int:
        """Position of graph node ``node_id`` (KeyError if unknown)."""
        return self._pos[node_id]

    @property
    def _pos(self) -> dict[object, int]:
        cache = self.__dict__.get("_pos_cache")
        if cache is None:
            cache = {n: i for i, n in enumerate(self.node_ids.tolist())}
            object.__setattr__(self, "_pos_cache", cache)
        return cache

    def matrix(self, cost: np.ndarray) -> sparse.csr_matrix:
        """CSR adjacency with ``cost`` per edge (parallel edges: the cheapest wins)."""
        cost = np.asarray(cost, dtype=float)
        ok = np.isfinite(cost)
        order = np.lexsort((-cost[ok], self.edge_to[ok], self.edge_from[ok]))
        f, t, c = self.edge_from[ok][order], self.edge_to[ok][order], cost[ok][order]
        # after sorting by (from, to, -cost) the last of each (from, to) group is the cheapest
        last = np.ones(f.shape[0], dtype=bool)
        last[:-1] = (f[1:] != f[:-1]) | (t[1:] != t[:-1])
        # csgraph treats explicit zeros as missing edges: keep a tiny positive cost instead
        c = np.maximum(c[last], 1e-9)
        return sparse.csr_matrix((c, (f[last], t[last])), shape=(self.n_nodes, self.n_nodes))


def road_arrays(G: nx.MultiDiGraph) -> RoadArrays:
    """Flatten an osmnx-style road graph whose edges carry ``edge_id`` = 0..m-1."""
    nodes = list(G.nodes)
    pos = {n: i for i, n in enumerate(nodes)}
    m = G.number_of_edges()
    ef = np.empty(m, dtype=np.int64)
    et = np.empty(m, dtype=np.int64)
    length = np.empty(m)
    ff = np.empty(m)
    lanes = np.empty(m)
    cap = np.empty(m)
    keys: list[tuple[object, object, int]] = [None] * m  # type: ignore[list-item]
    seen = np.zeros(m, dtype=bool)
    for u, v, k, d in G.edges(keys=True, data=True):
        i = int(d["edge_id"])
        if not 0 <= i < m or seen[i]:
            raise ValueError(f"edge ({u}, {v}, {k}): edge_id {i} is not a unique id in 0..{m - 1}")
        seen[i] = True
        ef[i], et[i] = pos[u], pos[v]
        length[i] = float(d["length"])
        ff[i] = float(d.get("travel_time", length[i] / (float(d["speed_kph"]) / 3.6)))
        lanes[i] = float(d.get("lanes", 1))
        cap[i] = float(d.get("capacity_vph", 1800.0 * lanes[i]))
        keys[i] = (u, v, k)
    x = np.array([float(G.nodes[n]["x"]) for n in nodes])
    y = np.array([float(G.nodes[n]["y"]) for n in nodes])
    return RoadArrays(
        node_ids=np.array(nodes),
        x=x,
        y=y,
        edge_from=ef,
        edge_to=et,
        length_m=length,
        freeflow_s=ff,
        lanes=lanes,
        capacity_vph=cap,
        edge_keys=tuple(keys),
    )


def travel_times(
    arrays: RoadArrays,
    sources: np.ndarray | list[int],
    *,
    cost: np.ndarray | None = None,
    reverse: bool = False,
    limit: float = np.inf,
) -> np.ndarray:
    """Shortest travel time (s) from each source position to every node: shape (len(sources), n).

    ``reverse=True`` gives times *to* the sources (one tree per destination). Unreachable: ``inf``.
    """
    mat = arrays.matrix(arrays.freeflow_s if cost is None else cost)
    if reverse:
        mat = mat.T.tocsr()
    return csgraph.dijkstra(mat, directed=True, indices=np.asarray(sources), limit=limit)


def shortest_path_tree(
    arrays: RoadArrays, source: int, *, cost: np.ndarray | None = None, reverse: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(times, predecessors) of the tree rooted at ``source`` (positions; predecessor -9999 = none)."""
    mat = arrays.matrix(arrays.freeflow_s if cost is None else cost)
    if reverse:
        mat = mat.T.tocsr()
    dist, pred = csgraph.dijkstra(mat, directed=True, indices=source, return_predecessors=True)
    return dist, pred


def path_edges(
    arrays: RoadArrays, pred: np.ndarray, target: int, *, cost: np.ndarray | None = None
) -> list[int]:
    """Edge ids on the tree path to ``target`` (predecessors from :func:`shortest_path_tree`)."""
    c = arrays.freeflow_s if cost is None else np.asarray(cost, dtype=float)
    # cheapest edge per (from, to) pair
    best: dict[tuple[int, int], int] = {}
    nodes: list[int] = []
    cur = target
    while cur >= 0:
        nodes.append(cur)
        cur = int(pred[cur])
    nodes.reverse()
    if len(nodes) < 2:
        return []
    want = set(zip(nodes[:-1], nodes[1:], strict=True))
    for e in np.flatnonzero(np.isin(arrays.edge_from, nodes[:-1])):
        key = (int(arrays.edge_from[e]), int(arrays.edge_to[e]))
        if key in want and (key not in best or c[e] < c[best[key]]):
            best[key] = int(e)
    return [best[(a, b)] for a, b in zip(nodes[:-1], nodes[1:], strict=True)]
