"""The pod's session count shared by worker processes (pod_sessions.py): real processes racing for
the last places of one limit never take more than it."""

from __future__ import annotations

import multiprocessing
from typing import Any

from aiassistant_runner.pod_sessions import PodSessions, shared_slots

LIMIT = 3
ROUNDS = 20_000


def churn(slots: Any, index: int, go: Any, taken: Any, over: Any) -> None:
    """A worker: take a place and give it back, over and over, noting whenever the pod holds more
    than the limit right after this worker got its place."""
    pod = PodSessions.shared(slots, index)
    go.wait(30)
    for _ in range(ROUNDS):
        if pod.try_add(LIMIT):
            taken[index] += 1
            if pod.total > LIMIT:
                over[index] += 1
            pod.remove()


def test_racing_workers_never_take_more_than_the_limit() -> None:
    workers = 4  # more than the limit: each round some must be refused
    context = multiprocessing.get_context("spawn")
    slots, go = shared_slots(workers), context.Barrier(workers)
    taken, over = context.Array("i", workers, lock=False), context.Array("i", workers, lock=False)
    processes = [context.Process(target=churn, args=(slots, i, go, taken, over)) for i in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    assert all(count > 0 for count in taken), list(taken)  # each took places: they raced
    assert list(over) == [0] * workers  # never more than LIMIT at once
    assert slots[:] == [0] * workers  # every place given back


def test_each_worker_writes_its_own_slot_and_reads_the_pod() -> None:
    slots = shared_slots(2)
    first, second = PodSessions.shared(slots, 0), PodSessions.shared(slots, 1)
    assert first.try_add(2) and second.try_add(2)
    assert not first.try_add(2) and not second.try_add(2)  # the pod is full, whoever asks
    assert slots[:] == [1, 1] and first.total == second.total == 2
    second.remove()
    assert first.total == 1 and first.try_add(2)
    assert slots[:] == [2, 0]


def test_a_pod_of_one_process() -> None:
    pod = PodSessions.single()
    assert pod.try_add(1) and not pod.try_add(1)
    pod.remove()
    assert pod.total == 0
