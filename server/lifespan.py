"""The server's process resources: core/wiring.py's ``AppState`` with the job runtime (workers/runtime.py) that
queues bulk validation jobs and runs them in this process (embedded) or hands them to the workers (distributed)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

from core import wiring
from core.settings import Settings
from core.wiring import AppState
from providers.base import MarketDataProvider
from workers.runtime import open_job_runtime

__all__ = ["open_app_state"]


def open_app_state(
    settings: Settings, *, providers: Sequence[MarketDataProvider] | None = None, migrate_store: bool = True
) -> AbstractAsyncContextManager[AppState]:
    return wiring.open_app_state(
        settings, providers=providers, migrate_store=migrate_store, job_runtime=open_job_runtime
    )
