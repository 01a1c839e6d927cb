"""The checked-in stubs match what `make proto` generates from proto/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ["service/optserve/v1", "clients/python/src/optserve_client/_proto"]


def test_generated_stubs_are_fresh(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--out-root", str(tmp_path)],
        check=True,
    )
    stale = []
    for target in TARGETS:
        for fresh in sorted((tmp_path / target).rglob("*.py*")):
            committed = ROOT / fresh.relative_to(tmp_path)
            if not committed.exists() or committed.read_bytes() != fresh.read_bytes():
                stale.append(str(committed.relative_to(ROOT)))
        for committed in (ROOT / target).rglob("*.py*"):
            if (
                "__pycache__" not in committed.parts
                and not (tmp_path / committed.relative_to(ROOT)).exists()
            ):
                stale.append(str(committed.relative_to(ROOT)))
    assert not stale, f"stubs are stale; run `make proto`: {stale}"
