"""The sessions of all the worker processes of one pod, counted together for `maxSessionsPerPod`.

A runner with `--workers N` (workers.py) runs N processes on one listening socket; each admits its
own sessions (sessions.py), but the limit is the pod's. The count lives in shared memory: one slot
per worker, written only by that worker, summed under the array's lock, so two workers cannot both
take the last place. A single-process runner uses the same class on a plain list.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import MutableSequence
from typing import Any


class PodSessions:
    """Worker `index`'s view of the pod's session count."""

    def __init__(self, slots: MutableSequence[int], index: int = 0, lock: Any = None) -> None:
        self._slots = slots
        self._index = index
        self._lock = lock if lock is not None else contextlib.nullcontext()

    @classmethod
    def single(cls) -> PodSessions:
        """A pod of one process."""
        return cls([0])

    @classmethod
    def shared(cls, slots: Any, index: int) -> PodSessions:
        """Worker `index` of `slots`, a `multiprocessing` Array of int (`shared_slots`)."""
        return cls(slots.get_obj(), index, slots.get_lock())

    def try_add(self, limit: int) -> bool:
        """Count one more session of this worker, unless the pod already has `limit`."""
        with self._lock:
            if sum(self._slots) >= limit:
                return False
            self._slots[self._index] += 1
        return True

    def remove(self) -> None:
        with self._lock:
            self._slots[self._index] -= 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._slots)


def shared_slots(workers: int) -> Any:
    """The shared array of `workers` session counts, created by the supervisor before it starts
    the workers (who get it as an argument of their process)."""
    return multiprocessing.get_context("spawn").Array("i", workers)
