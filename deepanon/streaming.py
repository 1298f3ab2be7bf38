"""Overlapping stages of a stream with threads and bounded queues (decode | detect | generate+encode).

Each stage runs in its own thread; the queues between them hold a few items, so memory stays flat in the stream's
length. An exception in a background stage is raised again in the caller's thread, at its next call.
"""

from __future__ import annotations

import ctypes
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_DONE = object()
_POLL_SECONDS = 0.1
_M_ARENA_MAX = -8  # glibc's mallopt parameter number


def share_one_malloc_arena() -> bool:
    """Have glibc's malloc serve every thread of this process from one arena, as the stages hand frames from thread
    to thread: with an arena per thread, memory freed in one arena is not reused by the others (a 1080p video's
    peak 25 MiB lower, its time unchanged: benchmarks/NOTES.md). Call before the threads start; False where the C
    library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_ARENA_MAX, 1))


def prefetched(items: Iterable[T], depth: int) -> Iterator[T]:
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead of the consumer.

    When the consumer stops early (break, exception, garbage collection), the producer stops too and ``items`` is
    closed in its thread (a generator's ``finally`` runs there).
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        source = iter(items)
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        buffer.put((item, None), timeout=_POLL_SECONDS)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put((_DONE, None))
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, raised there
            buffer.put((_DONE, err))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="deepanon-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                buffer.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                pass
        thread.join()


class Worker(Generic[T]):
    """Calls ``handle(item)`` in one background thread for each submitted item, in submission order.

    ``submit`` blocks while ``depth`` items are waiting. After ``handle`` raised, the worker drops the remaining items
    and ``submit``/``join`` raise that exception. Use as a context manager: leaving it normally joins the thread;
    leaving it by an exception drops the items still waiting, then joins.
    """

    def __init__(self, handle: Callable[[T], None], depth: int) -> None:
        self.handle = handle
        self.items: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.cancelled = threading.Event()
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._run, name="deepanon-worker", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        # Polls instead of waiting for a wake-up: SIGTERM raises SystemExit in the submitting thread wherever it is,
        # possibly inside Queue.put, and a wake-up lost there must not leave this thread (and the join) waiting forever.
        while True:
            try:
                item = self.items.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if self.closing.is_set() and self.items.empty():
                    return
                continue
            if self.error is None and not self.cancelled.is_set():
                try:
                    self.handle(item)
                except BaseException as err:  # noqa: BLE001 - raised in the submitting thread
                    self.error = err

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def submit(self, item: T) -> None:
        while True:
            self._raise()
            try:
                self.items.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def _finish(self) -> None:
        self.closing.set()
        self.thread.join()

    def join(self) -> None:
        """Wait until every submitted item is handled; raise the first error of ``handle``."""
        self._finish()
        self._raise()

    def __enter__(self) -> Worker[T]:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is not None:
            self.cancelled.set()
        self._finish()
