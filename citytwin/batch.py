"""Batches: scenarios × replications on one process, a local process pool or Dask.

A run is identified by (scenario hash, seed) and written atomically to
``OUT/<name>__<hash12>__seed<seed>/``. Rerunning a batch skips every run whose directory is
complete, so a killed batch loses only the runs that were in flight.

Replication ``r`` of a scenario uses seed ``scenario.seed + r``: the same seeds in every
scenario (common random numbers), so differences between scenarios are paired.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    as_completed,
    wait,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from citytwin.errors import InputError
from citytwin.results import Results, remove_stale_temp
from citytwin.scenario import Scenario, load_scenario

__all__ = ["RunSpec", "BatchReport", "plan_runs", "run_batch", "run_dir_name"]

log = logging.getLogger(__name__)

BatchProgress = Callable[[int, int, str], None]


def run_dir_name(scenario: Scenario, seed: int) -> str:
    """The directory name of run (scenario, seed): ``<name>__<hash12>__seed<seed>``."""
    return f"{scenario.name}__{scenario.content_hash()[:12]}__seed{int(seed)}"


@dataclass(frozen=True)
class RunSpec:
    """One run of a batch."""

    scenario: Scenario
    seed: int
    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    def payload(self) -> dict[str, Any]:
        """Plain data for a worker process (no pickled objects of ours)."""
        return {"scenario": self.scenario.model_dump(mode="json"), "seed": self.seed,
                "path": str(self.path)}


@dataclass
class BatchReport:
    """What a batch did: ran now, skipped (already finished), failed (run id -> error)."""

    runs: list[RunSpec]
    ran: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    wall_time_s: float = 0.0

    @property
    def paths(self) -> list[Path]:
        """Every finished run directory of this batch, in plan order."""
        return [r.path for r in self.runs if Results.is_complete(r.path)]

    @property
    def ok(self) -> bool:
        return not self.failed


def _as_scenario(item: Scenario | str | Path) -> Scenario:
    return item if isinstance(item, Scenario) else load_scenario(item)


def plan_runs(
    scenarios: Iterable[Scenario | str | Path],
    *,
    out: str | Path,
    replications: int = 1,
    seeds: Sequence[int] | None = None,
) -> list[RunSpec]:
    """Every (scenario, seed) run of a batch, in a deterministic order."""
    if replications < 1:
        raise InputError(f"replications: expected an integer >= 1, got {replications}")
    out = Path(out).expanduser().resolve()  # here, before any worker sees it
    runs: list[RunSpec] = []
    seen: set[str] = set()
    for item in scenarios:
        sc = _as_scenario(item)
        run_seeds = list(seeds) if seeds is not None else [sc.seed + r for r in range(replications)]
        for seed in run_seeds:
            path = out / run_dir_name(sc, seed)
            if path.name in seen:
                continue
            seen.add(path.name)
            runs.append(RunSpec(sc, int(seed), path))
    return runs


def _execute_and_record(run: Any, record: Any) -> None:
    """Run one batch entry in this process and record its result or its error."""
    try:
        result = _execute(run.payload())
    except Exception as exc:  # a failed run must not stop the batch
        record(run.run_id, None, exc)
    else:
        record(run.run_id, result, None)


def _execute(payload: dict[str, Any]) -> dict[str, Any]:
    """Worker entry point: run one scenario × seed and write its directory atomically."""
    from citytwin.model import run_scenario  # late: keeps worker start-up cheap

    path = Path(payload["path"])
    if Results.is_complete(path):
        return {"path": str(path), "skipped": True}
    scenario = Scenario.model_validate(payload["scenario"])
    res = run_scenario(scenario, seed=int(payload["seed"]), out=path)
    return {"path": str(path), "skipped": False, "digest": res.manifest["digest"],
            "wall_time_s": res.manifest["wall_time_s"]}


def run_batch(
    scenarios: Iterable[Scenario | str | Path],
    *,
    out: str | Path,
    replications: int = 1,
    workers: int = 1,
    scheduler: Any = None,
    seeds: Sequence[int] | None = None,
    progress: BatchProgress | None = None,
) -> BatchReport:
    """Run scenarios × replications, skipping runs already finished in ``out``.

    ``workers == 1``: in this process; ``workers > 1``: this process plus ``workers - 1``
    spawned processes, all taking runs from one queue (so the start-up of the spawned
    processes overlaps with useful work here); ``scheduler``: a Dask distributed scheduler address (or a ``distributed.Client``), which
    takes precedence over ``workers``.
    """
    if workers < 1:
        raise InputError(f"workers: expected an integer >= 1, got {workers}")
    t0 = time.perf_counter()
    runs = plan_runs(scenarios, out=out, replications=replications, seeds=seeds)
    remove_stale_temp(Path(out).resolve())
    report = BatchReport(runs)
    todo = []
    for run in runs:
        if Results.is_complete(run.path):
            report.skipped.append(run.path)
        else:
            todo.append(run)
    log.info("batch: %d runs, %d already finished, %d to run", len(runs),
             len(report.skipped), len(todo))
    total = len(runs)
    done = len(report.skipped)

    lock = threading.Lock()

    def _record(run_id: str, result: dict[str, Any] | None, error: BaseException | None) -> None:
        nonlocal done
        with lock:
            done += 1
            if error is not None:
                report.failed[run_id] = f"{type(error).__name__}: {error}"
                log.error("run %s failed: %s", run_id, error)
            elif result is not None:
                (report.skipped if result["skipped"] else report.ran).append(
                    Path(result["path"]))
            if progress is not None:
                progress(done, total, run_id)

    if todo:
        if scheduler is not None:
            _run_dask(todo, scheduler, _record)
        elif workers == 1:
            for run in todo:
                _execute_and_record(run, _record)
        else:
            _run_hybrid_pool(todo, workers, _record)
    report.wall_time_s = time.perf_counter() - t0
    return report


def _warm_up() -> int:
    """Worker start-up: import the model and the domain engines."""
    import citytwin.model  # noqa: F401

    return os.getpid()


def _run_hybrid_pool(todo: list[RunSpec], workers: int, record: Any) -> None:
    """Runs from one queue: ``workers - 1`` spawned processes (fed by a helper thread) and
    this process."""
    queue: deque[RunSpec] = deque(todo)
    qlock = threading.Lock()

    def take() -> RunSpec | None:
        with qlock:
            return queue.popleft() if queue else None

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers - 1, mp_context=ctx) as pool:

        def feed() -> None:
            # hand runs to the spawned workers only once they have imported everything, so no
            # run waits behind a worker's start-up while this process could have done it
            wait([pool.submit(_warm_up) for _ in range(workers - 1)])
            inflight: dict[Future[dict[str, Any]], RunSpec] = {}
            while True:
                while len(inflight) < workers - 1:
                    run = take()
                    if run is None:
                        break
                    try:
                        inflight[pool.submit(_execute, run.payload())] = run
                    except Exception as exc:  # a broken pool: the run fails, the batch goes on
                        record(run.run_id, None, exc)
                if not inflight:
                    return
                finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in finished:
                    run = inflight.pop(fut)
                    error = fut.exception()
                    record(run.run_id, None if error else fut.result(), error)

        feeder = threading.Thread(target=feed, name="citytwin-batch-feeder", daemon=True)
        feeder.start()
        while (run := take()) is not None:
            _execute_and_record(run, record)
        feeder.join()


def _run_on_executor(todo: list[RunSpec], executor: Executor, record: Any) -> None:
    """Submit every run to a ``concurrent.futures.Executor`` and record each as it ends."""
    inflight: dict[Future[dict[str, Any]], RunSpec] = {}
    for run in todo:
        try:
            inflight[executor.submit(_execute, run.payload())] = run
        except Exception as exc:  # a broken executor: the run fails, the batch goes on
            record(run.run_id, None, exc)
    for fut in as_completed(inflight):
        run = inflight[fut]
        error = fut.exception()
        record(run.run_id, None if error else fut.result(), error)


def _run_dask(todo: list[RunSpec], scheduler: Any, record: Any) -> None:
    """Dask through its ``concurrent.futures`` face (``Client.get_executor``)."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - optional dependency
        raise InputError("scheduler: Dask distributed is not installed "
                         "(pip install 'citytwin[distributed]')") from None
    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        _run_on_executor(todo, client.get_executor(pure=False), record)
    finally:
        if own:
            client.close()
