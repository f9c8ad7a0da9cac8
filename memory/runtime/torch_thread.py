"""One thread for all of memchat's torch work.

torch runs its kernels on an OpenMP thread team that belongs to the thread that called it. Once
two threads have used torch, each has a team, and on the 2-core bench machine every later
single-token decoding step ran 2-2.5x slower (43-47 tokens/s with one torch thread, 17-20 with
two). OpenMP threads spin only briefly after a parallel region (libgomp's default) and then
sleep, so an idle second team is not spinning; why it still costs was not found. The TUI loads and answers from worker
threads and `memchat ask` from the main thread, so instead of minding which thread is which, every
torch call memchat makes (loading models, batch embedding, generation) goes through run() or
submit() onto this one long-lived thread. Work that is already on it runs directly.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Callable, TypeVar

T = TypeVar("T")

_jobs: queue.SimpleQueue = queue.SimpleQueue()
_thread: threading.Thread | None = None
_start_lock = threading.Lock()


_default_threads: int | None = None


def default_threads() -> int:
    """torch's own thread count (one per physical core), as it was before memchat first changed
    it; memchat runs fewer where other programs keep cores busy (memory/runtime/free_cores.py).
    Call on the torch thread."""
    global _default_threads
    if _default_threads is None:
        import torch

        _default_threads = torch.get_num_threads()
    return _default_threads


def on_torch_thread() -> bool:
    return threading.current_thread() is _thread


def submit(fn: Callable[..., T], *args, **kwargs) -> Future:
    """Queue fn on the torch thread; the Future carries its result or its exception."""
    global _thread
    future: Future = Future()
    if on_torch_thread():  # already there: queueing would wait on ourselves
        _call(future, fn, args, kwargs)
        return future
    with _start_lock:
        if _thread is None:
            # A daemon: a reply still generating must not keep a quitting process alive.
            _thread = threading.Thread(target=_serve, name="memchat-torch", daemon=True)
            _thread.start()
    _jobs.put((future, fn, args, kwargs))
    return future


def run(fn: Callable[..., T], *args, **kwargs) -> T:
    """Call fn on the torch thread and wait for it."""
    return submit(fn, *args, **kwargs).result()


def _serve() -> None:
    while True:
        future, fn, args, kwargs = _jobs.get()
        if future.set_running_or_notify_cancel():
            _call(future, fn, args, kwargs)
        # Let go of the job while waiting for the next: its function is often a model's bound
        # method, which would keep that model alive after its owner dropped it.
        del future, fn, args, kwargs


def _call(future: Future, fn, args, kwargs) -> None:
    try:
        future.set_result(fn(*args, **kwargs))
    except BaseException as exc:  # handed to whoever waits on the future
        future.set_exception(exc)
