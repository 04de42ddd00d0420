"""The vendored JavaScript is what its README says: the versions' SHA-256."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "controller" / "station" / "web" / "static"


def test_vendored_files_match_their_recorded_hashes() -> None:
    table = re.findall(r"\| `([^`]+)` \| `([^`]+)` \| ([\d.]+) \| `([0-9a-f]{64})` \|",
                       (STATIC / "README.md").read_text())  # fmt: skip
    assert {row[0] for row in table} == {"htmx.min.js", "sse.min.js"}
    for name, package, version, digest in table:
        data = (STATIC / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name
        assert version.startswith("2."), (package, version)  # htmx 2, not 4
