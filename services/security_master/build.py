"""Build the shipped listings snapshot from a directory of recorded source copies.

    python -m services.security_master.build --from ../shared/fixtures/listings [--out PATH]

Writes ``providers/listings/data/us_listings.jsonl.gz`` by default (phase 2 wires this as
``universe-mcp listings build-snapshot --from DIR``). The output is deterministic: rebuilding from the same inputs
(and the same pytickersymbols version) gives the same bytes.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

from providers.listings.base import ListingSourceError
from services.security_master.snapshot import build_snapshot, decode_snapshot, shipped_snapshot_path

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.security_master.build", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--from", dest="source", required=True, type=Path, help="directory of recorded copies")
    parser.add_argument("--out", type=Path, default=None, help="output file (default: the package's snapshot)")
    args = parser.parse_args(argv)
    out: Path = args.out or shipped_snapshot_path()
    try:
        data = build_snapshot(args.source)
    except ListingSourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    snapshot = decode_snapshot(data)  # never write a file we could not read back
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_suffix(out.suffix + ".tmp")
    temporary.write_bytes(data)
    temporary.replace(out)
    counts = collections.Counter(f"{s.region}/{s.listing_status}" for s in snapshot.securities)
    summary = ", ".join(f"{key} {value}" for key, value in sorted(counts.items()))
    print(
        f"wrote {out} ({len(data):,} bytes, as_of {snapshot.as_of}): {len(snapshot.securities):,} securities ({summary})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
