"""`universe-mcp call --wait`: find the job a call started and draw its progress on stderr.

A bar redrawn in place on a terminal; on a pipe or a log file, one line whenever the status changes or another
tenth of the symbols is done (never a line per poll).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["JobView", "Progress", "job_of", "job_view"]

FINISHED = ("completed", "failed", "cancelled")
WIDTH = 30


def job_of(envelope: dict[str, Any]) -> str | None:
    """The id of an unfinished job the call started: from its data or metadata, else from a next action that
    follows a job (get_job_status), whatever the tool's result shape."""
    for part in (envelope.get("data"), envelope.get("metadata")):
        if isinstance(part, dict) and isinstance(part.get("job_id"), str):
            state = part.get("job_status") or part.get("status")
            if state in FINISHED:
                return None
            return part["job_id"]
    for action in envelope.get("next_actions") or []:
        if isinstance(action, dict) and action.get("tool") == "get_job_status":
            job_id = (action.get("arguments") or {}).get("job_id")
            if isinstance(job_id, str):
                return job_id
    return None


@dataclass(frozen=True)
class JobView:
    status: str
    processed: int
    total: int
    detail: str

    @property
    def done(self) -> bool:
        return self.status in FINISHED


def _mapping(value: object) -> dict[str, Any]:
    """``value`` if the envelope holds an object there, else an empty one (a missing or malformed part)."""
    return value if isinstance(value, dict) else {}


def job_view(envelope: dict[str, Any]) -> JobView:
    """What the bar shows, from a get_job_status envelope."""
    data = _mapping(envelope.get("data"))
    metadata = _mapping(envelope.get("metadata"))
    counts = _mapping(data.get("counts"))
    status = str(data.get("status") or metadata.get("job_status") or "unknown")
    total = int(counts.get("total") or 0)
    processed = int(counts.get("processed") or 0) + int(counts.get("cancelled") or 0)
    parts = [f"{counts[k]} {k}" for k in ("valid", "invalid", "pending", "error", "retrying") if counts.get(k)]
    return JobView(status, processed, total, ", ".join(parts))


class Progress:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last: tuple[str, int] | None = None
        self._drawn = False

    async def notified(self, progress: float, total: float | None, message: str | None) -> None:
        """The MCP progress callback (a tool that streams its own progress while the call is open)."""
        self.show(JobView("running", int(progress), int(total or 0), message or ""))

    def show(self, view: JobView) -> None:
        share = view.processed / view.total if view.total else (1.0 if view.done else 0.0)
        if self.tty:
            filled = int(share * WIDTH)
            line = (
                f"\r[{'#' * filled}{'.' * (WIDTH - filled)}] {share:4.0%} {view.processed}/{view.total} "
                f"{view.status}" + (f" ({view.detail})" if view.detail else "")
            )
            self.stream.write(line[:200] + "\x1b[K")
            self.stream.flush()
            self._drawn = True
            return
        key = (view.status, int(share * 10))
        if key != self._last:
            self._last = key
            detail = f" ({view.detail})" if view.detail else ""
            self.stream.write(f"job {view.status}: {view.processed} of {view.total} symbols{detail}\n")
            self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
