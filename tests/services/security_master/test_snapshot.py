"""The shipped snapshot: deterministic, up to date with the recorded files, and refused with one clear line when
damaged."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from providers.listings.recorded import RecordedListings
from services.security_master.model import Security
from services.security_master.snapshot import (
    SCHEMA_VERSION,
    Snapshot,
    SnapshotError,
    decode_snapshot,
    encode_snapshot,
    load_snapshot,
    shipped_snapshot_path,
    snapshot_header,
)
from tests.services.security_master.conftest import inputs_of


def test_building_from_the_recorded_files_reproduces_the_shipped_file_byte_for_byte(
    recorded_listings: RecordedListings, securities: list[Security]
) -> None:
    """Determinism across processes and time (the committed file was built in another process, earlier), and a
    committed snapshot that matches its inputs. ``securities`` is this session's build from the recorded files."""
    built = encode_snapshot(securities, snapshot_header(recorded_listings, inputs_of(recorded_listings)))
    assert built == shipped_snapshot_path().read_bytes(), (
        "rebuild: python -m services.security_master.build --from tests/providers/listings/recorded"
    )
    assert len(built) < 4 * 1024 * 1024


def test_encoding_does_not_depend_on_input_order(shipped: Snapshot) -> None:
    securities = list(shipped.securities)
    header = {k: v for k, v in shipped.header.items() if k not in ("format", "schema_version", "securities", "sha256")}
    shuffled = securities[:]
    random.Random(7).shuffle(shuffled)
    assert (
        encode_snapshot(shuffled, header) == encode_snapshot(securities, header) == shipped_snapshot_path().read_bytes()
    )


def test_round_trip(shipped: Snapshot, securities: list[Security]) -> None:
    assert shipped.header["schema_version"] == SCHEMA_VERSION
    assert shipped.as_of.isoformat() == "2026-08-22"
    assert {s["source"] for s in shipped.header["sources"]} >= {"nasdaq_trader", "nasdaq_screener", "sec"}
    assert list(shipped.securities) == sorted(securities, key=lambda s: s.key)


def _rewrite(data: bytes, edit) -> bytes:
    lines = gzip.decompress(data).split(b"\n")
    return gzip.compress(b"\n".join(edit(lines)), mtime=0)


def _header_edit(**changes: object):
    def edit(lines: list[bytes]) -> list[bytes]:
        header = json.loads(lines[0])
        header.update(changes)
        return [json.dumps(header).encode(), *lines[1:]]

    return edit


CORRUPTIONS = {
    "truncated gzip": lambda data: data[: len(data) // 2],
    "not gzip": lambda data: b"PK\x03\x04 a zip file",
    "empty": lambda data: b"",
    "flipped byte": lambda data: data[:5000] + bytes([data[5000] ^ 0xFF]) + data[5001:],
    "edited record": lambda data: _rewrite(
        data, lambda lines: [lines[0], lines[1].replace(b'"listed"', b'"delisted"', 1), *lines[2:]]
    ),
    "dropped record": lambda data: _rewrite(data, lambda lines: [lines[0], *lines[2:]]),
    "other format": lambda data: _rewrite(data, _header_edit(format="something/else")),
    "newer schema": lambda data: _rewrite(data, _header_edit(schema_version=SCHEMA_VERSION + 1)),
    "cut last line": lambda data: _rewrite(data, lambda lines: [*lines[:-2], lines[-2][:10]]),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_damaged_file_fails_with_one_clear_line(tmp_path: Path, corruption: str) -> None:
    damaged = CORRUPTIONS[corruption](shipped_snapshot_path().read_bytes())
    path = tmp_path / "us_listings.jsonl.gz"
    path.write_bytes(damaged)
    with pytest.raises(SnapshotError) as caught:
        load_snapshot(path)
    message = str(caught.value)
    assert message.startswith(f"listings snapshot {path}: ")
    assert "\n" not in message and "Traceback" not in message


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="cannot be read"):
        load_snapshot(tmp_path / "absent.jsonl.gz")


def test_records_are_checked_field_by_field() -> None:
    data = shipped_snapshot_path().read_bytes()

    def bad_type(lines: list[bytes]) -> list[bytes]:
        record = json.loads(lines[1])
        record["symbols"] = "AAPL"
        body = [json.dumps(record, sort_keys=True, separators=(",", ":")).encode(), *lines[2:-1]]
        import hashlib

        header = json.loads(lines[0])
        header["sha256"] = hashlib.sha256(b"".join(line + b"\n" for line in body)).hexdigest()
        return [json.dumps(header).encode(), *body, b""]

    with pytest.raises(SnapshotError, match="symbols must be a non-empty list"):
        decode_snapshot(_rewrite(data, bad_type))
