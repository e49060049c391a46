"""One inference at a time, a bounded queue behind it, and cancel.

A server holds one engine on one device; :class:`JobQueue` runs its jobs one after another in
a worker thread (so the event loop keeps answering, e.g. health, while a job runs). A request
that finds the queue full is answered 429 with ``Retry-After``. Cancelling a queued job
answers it at once; cancelling the running one sets the ``threading.Event`` the engine checks
between batches. A job whose client goes away is cancelled the same way.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from napari_deepliif.errors import Cancelled
from napari_deepliif.server.problems import Problem

log = logging.getLogger(__name__)

#: Seconds between two checks that the client of a waiting request is still connected.
DISCONNECT_POLL_S = 0.1
#: Weight of the newest job in the running mean of job durations (for Retry-After).
_DURATION_WEIGHT = 0.3


@dataclass(eq=False)
class Job:
    """A unit of work: ``work(cancel_event)`` runs in the worker thread."""

    id: str
    work: Callable[[threading.Event], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    cancel: threading.Event = field(default_factory=threading.Event)

    def deliver(self, result: Any = None, error: BaseException | None = None) -> None:
        """Hand the outcome to the waiting request (from any thread)."""
        def settle() -> None:
            if self.future.done():
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        self.loop.call_soon_threadsafe(settle)


class JobQueue:
    """A worker thread and a bounded FIFO of jobs.

    Parameters
    ----------
    queue_size : int
        Jobs that may wait while one runs; one more is answered 429.
    """

    def __init__(self, queue_size: int):
        self.queue_size = queue_size
        self._waiting: collections.deque[Job] = collections.deque()
        self._running: Job | None = None
        self._condition = threading.Condition()
        self._mean_duration = 1.0
        self._stopped = False
        self._thread = threading.Thread(target=self._work, name="napari-deepliif-jobs", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        """Whether a job runs or waits."""
        with self._condition:
            return self._running is not None or bool(self._waiting)

    async def run(self, work: Callable[[threading.Event], Any], request_id: str | None = None,
                  disconnected: Callable[[], Awaitable[bool]] | None = None) -> Any:
        """Queue ``work`` and wait for its result (exceptions are re-raised here).

        Parameters
        ----------
        work : callable
            Runs in the worker thread with the job's cancel event.
        request_id : str, optional
            The client's id for the job (for :meth:`cancel`); a random one if None.
        disconnected : async callable, optional
            Whether the client went away (Starlette's ``Request.is_disconnected``), asked
            every ``DISCONNECT_POLL_S`` seconds while the job waits or runs: if so, the job
            is cancelled, so no one's abandoned request keeps the engine busy.

        Raises
        ------
        Problem
            429 with ``Retry-After`` when the queue is full, 409 when ``request_id`` is in use.
        """
        loop = asyncio.get_running_loop()
        job = Job(request_id or uuid.uuid4().hex, work, loop, loop.create_future())
        with self._condition:
            if self._stopped:
                raise Problem(503, "the server is shutting down")
            if any(j.id == job.id for j in self._jobs()):
                raise Problem(409, f"request_id {job.id!r} is already queued or running: use a new id per request")
            if len(self._jobs()) > self.queue_size:
                wait = max(1, math.ceil(self._mean_duration * (len(self._waiting) + 1)))
                raise Problem(429, f"the server is busy: {len(self._waiting)} requests wait behind the running one "
                              f"(--queue-size {self.queue_size}); retry in about {wait} s",
                              headers={"Retry-After": str(wait)})
            self._waiting.append(job)
            self._condition.notify()
        while disconnected is not None and not job.future.done():
            await asyncio.wait([job.future], timeout=DISCONNECT_POLL_S)
            if not job.future.done() and await disconnected():
                log.info("the client of %s went away: cancelling it", job.id)
                self.cancel(job.id)
                break
        return await job.future

    def cancel(self, request_id: str | None = None) -> bool:
        """Cancel the job with ``request_id`` (queued or running), or the running job.

        Returns
        -------
        bool
            Whether a job was found to cancel.
        """
        with self._condition:
            if request_id is None:
                job = self._running
            else:
                job = next((j for j in self._jobs() if j.id == request_id), None)
            if job is None:
                return False
            job.cancel.set()
            if job in self._waiting:
                self._waiting.remove(job)
                job.deliver(error=Cancelled(f"request {job.id!r} was cancelled while queued"))
        log.info("cancel requested for %s", job.id)
        return True

    def stop(self) -> None:
        """Cancel everything and end the worker thread."""
        with self._condition:
            self._stopped = True
            for job in self._jobs():
                job.cancel.set()
            for job in self._waiting:
                job.deliver(error=Problem(503, "the server is shutting down"))
            self._waiting.clear()
            self._condition.notify_all()
        self._thread.join(timeout=30)

    def _jobs(self) -> list[Job]:
        return ([self._running] if self._running is not None else []) + list(self._waiting)

    def _work(self) -> None:
        while True:
            with self._condition:
                while not self._waiting and not self._stopped:
                    self._condition.wait()
                if self._stopped:
                    return
                job = self._running = self._waiting.popleft()
            start = time.monotonic()
            outcome: dict[str, Any] = {}
            try:
                if job.cancel.is_set():
                    raise Cancelled(f"request {job.id!r} was cancelled")
                outcome["result"] = job.work(job.cancel)
            except BaseException as exc:  # every outcome goes back to the request, none is lost
                outcome["error"] = exc
            duration = time.monotonic() - start
            with self._condition:
                self._running = None
                self._mean_duration += _DURATION_WEIGHT * (duration - self._mean_duration)
            # delivered once the job is no longer running: a client answered at once may ask again
            job.deliver(**outcome)
