"""The shipped snapshot: the whole security master in one compact, versioned, deterministic file.

Format (``SCHEMA_VERSION`` 1): gzip (mtime 0, no file name, level 9) of UTF-8 JSON lines.
- Line 1, the header: ``format``, ``schema_version``, ``as_of`` (the newest source date), ``sources`` (each
  source's as_of and row count), ``inputs`` (path, sha256 and size of every recorded file used), the
  ``pytickersymbols`` version, ``securities`` (the record count) and ``sha256`` (of the record lines, so a file cut
  or edited anywhere is caught even where gzip's own check would not be reached).
- One line per security, sorted by key, keys sorted, ``None`` fields left out; a symbol history is a list of
  ``[symbol, valid_from, valid_to, source, exact, changed_after]``.

The same inputs give the same bytes (no clocks, no set or dict iteration order leaks into the output), so a rebuild
that changes nothing is a no-op in git, and a changed byte means changed data.

``load_snapshot`` checks everything and raises ``SnapshotError`` with one clear line; it never returns part of a
file.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any

from providers.listings import data_file
from providers.listings.corporate_actions import load_corporate_actions
from providers.listings.indices import index_membership_batch
from providers.listings.recorded import RecordedListings, read_recorded
from providers.listings.sectors import issuer_overrides
from services.security_master.history import MasterInputs, build_securities
from services.security_master.model import Security, SymbolSpan

__all__ = [
    "FORMAT",
    "SCHEMA_VERSION",
    "SNAPSHOT_FILE",
    "Snapshot",
    "SnapshotError",
    "build_snapshot",
    "decode_snapshot",
    "encode_snapshot",
    "load_shipped_snapshot",
    "load_snapshot",
    "shipped_snapshot_path",
    "snapshot_header",
]

FORMAT = "universe-mcp/us-listings"
SCHEMA_VERSION = 1
SNAPSHOT_FILE = "us_listings.jsonl.gz"
_DATE_FIELDS = {"listed_on", "delisted_on", "delisted_after", "last_seen", "market_cap_as_of"}
_TUPLE_FIELDS = {"indices", "sources"}
_SECURITY_FIELDS = {f.name: f for f in fields(Security)}
_REQUIRED = ("key", "symbol", "name", "asset_type", "listing_status", "symbols")


class SnapshotError(Exception):
    """The snapshot file is missing, corrupt, or of a format this version cannot read."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    header: Mapping[str, Any]
    securities: tuple[Security, ...]

    @property
    def as_of(self) -> date:
        return date.fromisoformat(str(self.header["as_of"]))


# --- encoding ------------------------------------------------------------------------------------------------------
def _span(span: SymbolSpan) -> list[Any]:
    return [
        span.symbol,
        span.valid_from.isoformat() if span.valid_from else None,
        span.valid_to.isoformat() if span.valid_to else None,
        span.source,
        span.exact,
        span.changed_after.isoformat() if span.changed_after else None,
    ]


def _record(security: Security) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name in _SECURITY_FIELDS:
        value = getattr(security, name)
        if value is None or (name in _TUPLE_FIELDS and not value):
            continue
        if name == "symbols":
            record[name] = [_span(span) for span in value]
        elif name in _DATE_FIELDS:
            record[name] = value.isoformat()
        elif name in _TUPLE_FIELDS:
            record[name] = list(value)
        else:
            record[name] = value
    return record


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode_snapshot(securities: Sequence[Security], header: Mapping[str, Any]) -> bytes:
    """The file's bytes for ``securities`` (sorted by key here) and the header fields given."""
    ordered = sorted(securities, key=lambda s: s.key)
    keys = [s.key for s in ordered]
    if len(set(keys)) != len(keys):
        raise ValueError("security keys must be unique")
    body = "".join(_dumps(_record(s)) + "\n" for s in ordered).encode("utf-8")
    full_header = {
        **header,
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "securities": len(ordered),
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    return gzip.compress((_dumps(full_header) + "\n").encode("utf-8") + body, compresslevel=9, mtime=0)


def _pytickersymbols_version() -> str:
    try:
        return metadata.version("pytickersymbols")
    except metadata.PackageNotFoundError:
        return "unknown"


def _inputs(recorded: RecordedListings) -> MasterInputs:
    return MasterInputs(
        directories=recorded.directories,
        screeners=recorded.screeners,
        sec=recorded.sec,
        alpha_vantage=recorded.alpha_vantage,
        indices=index_membership_batch(),
        actions=load_corporate_actions(),
        sector_overrides=issuer_overrides(),
    )


def _source_summary(inputs: MasterInputs) -> list[dict[str, Any]]:
    batches = [*inputs.directories, *inputs.screeners, *inputs.sec, *inputs.alpha_vantage]
    if inputs.indices is not None:
        batches.append(inputs.indices)
    return [{"source": b.source, "as_of": b.as_of.isoformat(), "rows": len(b.rows)} for b in batches]


def snapshot_header(recorded: RecordedListings, inputs: MasterInputs) -> dict[str, Any]:
    """The header fields that describe where a snapshot's data came from."""
    dated = [*inputs.directories, *inputs.screeners, *inputs.sec, *inputs.alpha_vantage]
    return {
        "as_of": max(b.as_of for b in dated).isoformat(),
        "sources": _source_summary(inputs),
        "inputs": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in recorded.files],
        "corporate_actions": len(inputs.actions),
        "sector_overrides": len(inputs.sector_overrides),
        "pytickersymbols": _pytickersymbols_version(),
    }


def build_snapshot(from_dir: Path) -> bytes:
    """Build the snapshot from a directory of recorded source copies (see ``providers.listings.recorded``)."""
    recorded = read_recorded(Path(from_dir))
    inputs = _inputs(recorded)
    return encode_snapshot(build_securities(inputs), snapshot_header(recorded, inputs))


# --- decoding --------------------------------------------------------------------------------------------------------
def _date(value: Any, where: str) -> date | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SnapshotError(f"{where}: expected a date string, found {type(value).__name__}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise SnapshotError(f"{where}: {value!r} is not a date") from None


def _decode_span(raw: Any, where: str) -> SymbolSpan:
    if not isinstance(raw, list) or len(raw) != 6 or not isinstance(raw[0], str) or not isinstance(raw[4], bool):
        raise SnapshotError(f"{where}: a symbol history entry is not [symbol, from, to, source, exact, after]")
    symbol, valid_from, valid_to, source, exact, after = raw
    if source not in ("corporate_actions", "alpha_vantage", "snapshots", "pytickersymbols"):
        raise SnapshotError(f"{where}: unknown date source {source!r}")
    return SymbolSpan(symbol, _date(valid_from, where), _date(valid_to, where), source, exact, _date(after, where))


def _decode_security(record: Any, where: str) -> Security:
    if not isinstance(record, dict):
        raise SnapshotError(f"{where} is not an object")
    unknown = set(record) - set(_SECURITY_FIELDS)
    if unknown:
        raise SnapshotError(f"{where} has unknown fields {sorted(unknown)}")
    missing = [name for name in _REQUIRED if name not in record]
    if missing:
        raise SnapshotError(f"{where} lacks {missing}")
    values: dict[str, Any] = {}
    for name, value in record.items():
        if name == "symbols":
            if not isinstance(value, list) or not value:
                raise SnapshotError(f"{where}: symbols must be a non-empty list")
            values[name] = tuple(_decode_span(span, where) for span in value)
        elif name in _DATE_FIELDS:
            values[name] = _date(value, f"{where} {name}")
        elif name in _TUPLE_FIELDS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SnapshotError(f"{where}: {name} must be a list of strings")
            values[name] = tuple(value)
        elif name in ("market_cap",):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise SnapshotError(f"{where}: market_cap must be a number")
            values[name] = float(value)
        elif name in ("cik", "ipo_year"):
            if not isinstance(value, int) or isinstance(value, bool):
                raise SnapshotError(f"{where}: {name} must be an integer")
            values[name] = value
        else:
            if not isinstance(value, (str, bool)):
                raise SnapshotError(f"{where}: {name} has an unexpected type")
            values[name] = value
    if values["listing_status"] not in ("listed", "delisted"):
        raise SnapshotError(f"{where}: listing_status {values['listing_status']!r}")
    return Security(**values)


def _lines(data: bytes) -> list[bytes]:
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise SnapshotError(f"not a complete gzip file ({type(exc).__name__})") from None
    if not raw.endswith(b"\n"):
        raise SnapshotError("the last line is incomplete")
    return raw.split(b"\n")[:-1]


def decode_snapshot(data: bytes) -> Snapshot:
    """Parse and check snapshot bytes; raises ``SnapshotError``."""
    lines = _lines(data)
    if not lines:
        raise SnapshotError("empty")
    try:
        header = json.loads(lines[0])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SnapshotError("the header line is not JSON") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SnapshotError(f"not a {FORMAT} file")
    if header.get("schema_version") != SCHEMA_VERSION:
        raise SnapshotError(
            f"schema version {header.get('schema_version')!r}; this version of universe-mcp reads {SCHEMA_VERSION}"
        )
    body = lines[1:]
    if header.get("securities") != len(body):
        raise SnapshotError(f"the header announces {header.get('securities')} securities, the file holds {len(body)}")
    digest = hashlib.sha256(b"".join(line + b"\n" for line in body)).hexdigest()
    if header.get("sha256") != digest:
        raise SnapshotError("content checksum mismatch (the file was altered or damaged)")
    _date(header.get("as_of"), "header as_of")
    try:  # one parse of the whole body is several times faster than a parse per line
        records = json.loads(b"[" + b",".join(body) + b"]") if body else []
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = exc.lineno if isinstance(exc, json.JSONDecodeError) else "?"
        raise SnapshotError(f"the records are not JSON (near record {line})") from None
    securities = tuple(_decode_security(record, f"line {index}") for index, record in enumerate(records, start=2))
    return Snapshot(header=header, securities=securities)


def load_snapshot(path: Path | str) -> Snapshot:
    """Read and check a snapshot file. Raises ``SnapshotError("listings snapshot PATH: reason")``."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SnapshotError(
            f"listings snapshot {path}: cannot be read ({exc.strerror or type(exc).__name__})"
        ) from None
    try:
        return decode_snapshot(data)
    except SnapshotError as exc:
        raise SnapshotError(f"listings snapshot {path}: {exc}") from None


def shipped_snapshot_path() -> Path:
    """Where the snapshot shipped with the package lives (inside ``providers/listings/data``)."""
    return Path(str(data_file(SNAPSHOT_FILE)))


def load_shipped_snapshot() -> Snapshot:
    return load_snapshot(shipped_snapshot_path())
