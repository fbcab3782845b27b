"""A bounded work queue: a few worker threads, and a fixed number of places for requests.

A request takes a place before its upload is read and gives it back when its
answer is ready; with every place taken, the next request is refused at once
(:class:`Busy`, HTTP 503) instead of piling uploads up in memory. At most
``places`` uploads are held at a time, and at most ``workers`` photos are
decoded and read at a time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

__all__ = ["Busy", "WorkQueue"]

T = TypeVar("T")


class Busy(Exception):
    """Every place of the queue is taken."""


class WorkQueue:
    """``places`` requests at most, waiting or at work, on ``workers`` threads.

    Parameters
    ----------
    places : int
        Requests admitted at once (waiting for a worker or at work); more are refused.
    workers : int
        Threads that do the work (decoding, normalising, the network).
    """

    def __init__(self, places: int, workers: int) -> None:
        if places < 1 or workers < 1:
            raise ValueError("a work queue needs at least one place and one worker")
        self.places, self.workers = places, workers
        self._free = places
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="leafprep-serve")

    @property
    def taken(self) -> int:
        """Places taken now."""
        with self._lock:
            return self.places - self._free

    @contextmanager
    def place(self) -> Iterator[None]:
        """Hold a place for the duration of the block; :class:`Busy` at once when there is none (it never waits)."""
        with self._lock:
            if self._free == 0:
                raise Busy()
            self._free -= 1
        try:
            yield
        finally:
            with self._lock:
                self._free += 1

    async def run(self, work: Callable[[], T]) -> T:
        """Run ``work`` on a worker thread and wait for its result (or its exception)."""
        return await asyncio.wrap_future(self._pool.submit(work))

    def close(self) -> None:
        """Let the work in hand finish and stop the threads."""
        self._pool.shutdown(wait=True, cancel_futures=True)
