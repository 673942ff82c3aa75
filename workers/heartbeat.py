"""Worker health: busy threads counted by a middleware, and (with Redis) a heartbeat per worker process.

Each worker process writes one field of the hash ``<namespace>:workers``: ``{host, pid, threads, busy, processed,
started_at, seen_at}``, every ``interval_s``. get_service_health reads the hash: a field seen within the heartbeat
timeout is a live worker, an older one a dead worker (killed, or cut off from Redis), pruned after an hour. A worker
that stops cleanly removes its field.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

import redis
from dramatiq.middleware import Middleware

__all__ = ["WorkerHeartbeat", "read_workers", "workers_key"]

logger = logging.getLogger(__name__)

DEAD_PRUNE_S = 3600.0


def workers_key(namespace: str) -> str:
    return f"{namespace}:workers"


class WorkerHeartbeat(Middleware):
    """Counts the threads running a message; with a Redis client, publishes this worker's heartbeat."""

    def __init__(
        self, client: redis.Redis | None = None, namespace: str = "universe-mcp", interval_s: float = 1.0
    ) -> None:
        self.client = client
        self.key = workers_key(namespace)
        self.interval_s = interval_s
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.threads = 0
        self.processed = 0
        self.started_at: float | None = None
        self._active: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- counting ---------------------------------------------------------------------------------------------
    @property
    def busy(self) -> int:
        with self._lock:
            return len(self._active)

    @property
    def running(self) -> bool:
        return self.started_at is not None

    def before_process_message(self, broker: Any, message: Any) -> None:
        with self._lock:
            self._active.add(threading.get_ident())

    def after_process_message(self, broker: Any, message: Any, *, result: Any = None, exception: Any = None) -> None:
        # A set of thread ids, not a counter: a message skipped before this middleware saw it must not go negative.
        with self._lock:
            if threading.get_ident() in self._active:
                self._active.discard(threading.get_ident())
                self.processed += 1

    after_skip_message = after_process_message

    # --- lifecycle --------------------------------------------------------------------------------------------
    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        self.threads = worker.worker_threads
        self.started_at = time.time()
        if self.client is not None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat_forever, name="umcp-heartbeat", daemon=True)
            self._thread.start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self.client is not None:
            try:
                self.client.hdel(self.key, self.worker_id)
            except redis.RedisError:
                pass
        self.started_at = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "threads": self.threads,
            "busy": self.busy,
            "processed": self.processed,
            "started_at": self.started_at,
            "seen_at": time.time(),
        }

    def beat(self) -> None:
        assert self.client is not None
        self.client.hset(self.key, self.worker_id, json.dumps(self.snapshot()))

    def _beat_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
            except redis.RedisError as exc:  # Redis away: the broker's consumers are failing too; keep trying
                logger.debug("heartbeat not written (%s)", type(exc).__name__)
            self._stop.wait(self.interval_s)


def read_workers(
    entries: dict[str, str], *, dead_after_s: float, now: float | None = None
) -> tuple[list[dict], list[dict], list[str]]:
    """Split heartbeat entries into (alive, dead, prunable field names)."""
    now = time.time() if now is None else now
    alive: list[dict] = []
    dead: list[dict] = []
    prune: list[str] = []
    for worker_id, raw in entries.items():
        try:
            info = json.loads(raw)
            age = now - float(info["seen_at"])
        except (ValueError, KeyError, TypeError):
            prune.append(worker_id)
            continue
        entry = {
            "worker_id": worker_id,
            "host": info.get("host"),
            "pid": info.get("pid"),
            "threads": int(info.get("threads") or 0),
            "busy": int(info.get("busy") or 0),
            "processed": int(info.get("processed") or 0),
            "last_seen_s": round(age, 1),
        }
        if age <= dead_after_s:
            alive.append(entry)
        elif age <= DEAD_PRUNE_S:
            dead.append(entry)
        else:
            prune.append(worker_id)
    return alive, dead, prune
