"""Threaded stages: order kept, bounded look-ahead, errors raised in the caller, early stops clean up."""

from __future__ import annotations

import platform
import subprocess
import sys
import threading
import time

import pytest

from deepanon.streaming import Worker, prefetched


def test_prefetched_yields_every_item_in_order_from_another_thread():
    threads = set()

    def numbers():
        for i in range(50):
            threads.add(threading.current_thread().name)
            yield i

    assert list(prefetched(numbers(), depth=3)) == list(range(50))
    assert threads == {"deepanon-prefetch"}


def test_prefetched_runs_at_most_depth_items_ahead():
    produced = []

    def numbers():
        for i in range(100):
            produced.append(i)
            yield i

    stream = prefetched(numbers(), depth=2)
    assert next(stream) == 0
    time.sleep(0.3)
    # item 0 consumed, 2 in the queue, 1 more produced and waiting to be put
    assert len(produced) == 4
    stream.close()


def test_prefetched_raises_the_producers_error_after_the_items_before_it():
    def failing():
        yield 1
        yield 2
        raise OSError("disk gone")

    seen = []
    with pytest.raises(OSError, match="disk gone"):
        for item in prefetched(failing(), depth=4):
            seen.append(item)
    assert seen == [1, 2]


def test_prefetched_closes_the_source_when_the_consumer_stops_early():
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    for item in prefetched(endless(), depth=2):
        if item == 5:
            break
    assert closed.wait(2)


def test_worker_handles_items_in_order_in_one_background_thread():
    handled, threads = [], set()

    def handle(item):
        threads.add(threading.current_thread().name)
        time.sleep(0.001)
        handled.append(item)

    with Worker(handle, depth=2) as worker:
        for i in range(30):
            worker.submit(i)
        worker.join()
    assert handled == list(range(30))
    assert threads == {"deepanon-worker"}


def test_worker_error_is_raised_at_the_next_submit_and_later_items_are_dropped():
    handled = []

    def handle(item):
        if item == 3:
            raise ValueError("encoder died")
        handled.append(item)

    with pytest.raises(ValueError, match="encoder died"):
        with Worker(handle, depth=1) as worker:
            for i in range(100):
                worker.submit(i)
                time.sleep(0.005)
            worker.join()
    assert handled == [0, 1, 2]


def test_worker_error_in_the_last_item_is_raised_by_join():
    def handle(item):
        raise RuntimeError(f"failed on {item}")

    worker = Worker(handle, depth=1)
    worker.submit("last")
    with pytest.raises(RuntimeError, match="failed on last"):
        worker.join()


def test_leaving_a_worker_by_an_exception_drops_the_waiting_items():
    handled, release = [], threading.Event()

    def handle(item):
        release.wait(2)
        handled.append(item)

    with pytest.raises(KeyboardInterrupt):
        with Worker(handle, depth=5) as worker:
            for i in range(5):
                worker.submit(i)
            raise KeyboardInterrupt
    release.set()
    assert len(handled) <= 1  # at most the item already being handled when the exception left the block


def test_worker_finishes_even_when_its_wake_ups_are_lost():
    """SIGTERM raises SystemExit in the submitting thread, possibly inside Queue.put, where a wake-up of the worker can
    be lost (a video once hung there on exit). Every wake-up is dropped here: the items must still all be handled and
    leaving the worker must not hang."""
    handled: list[int] = []
    done = threading.Event()

    def run() -> None:
        with Worker(handled.append, depth=2) as worker:
            time.sleep(0.05)  # the worker now waits on an empty queue
            worker.items.not_empty.notify = lambda n=1: None
            for item in range(5):
                worker.submit(item)
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=5)
    assert done.is_set() and handled == [0, 1, 2, 3, 4]


ARENA_PROBE = """
import ctypes, sys, threading
import numpy as np
from deepanon.streaming import share_one_malloc_arena
if sys.argv[1] == "shared":
    assert share_one_malloc_arena()
barrier = threading.Barrier(5)
def allocate():
    kept = [np.ones(1000) for _ in range(10)]  # 8 KB blocks: malloc's arenas, not mmap
    barrier.wait()  # all four threads alive at once, so none inherits another's arena
    barrier.wait()
threads = [threading.Thread(target=allocate) for _ in range(4)]
for t in threads:
    t.start()
barrier.wait()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
stream = libc.fopen(sys.argv[2].encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(stream))
libc.fclose(ctypes.c_void_p(stream))
barrier.wait()
for t in threads:
    t.join()
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc arenas")
@pytest.mark.parametrize(("mode", "heaps"), [("shared", 1), ("default", 5)])
def test_one_malloc_arena_serves_every_thread(tmp_path, mode, heaps):
    info = tmp_path / "malloc_info.xml"
    subprocess.run([sys.executable, "-c", ARENA_PROBE, mode, str(info)], check=True)
    # malloc_info lists one <heap nr=...> per arena: the main one, plus one per thread without the limit
    assert info.read_text().count("<heap nr=") == heaps
