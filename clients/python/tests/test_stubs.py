"""The committed stubs in src/switchyard/v1 are what grpcio-tools makes of proto/ today."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "generate.py"


def test_committed_stubs_match_the_schema() -> None:
    """Regenerates the stubs into a temporary directory and fails on any difference: a schema change
    must come with regenerated stubs (scripts/generate.py), and the client's tests then run on them."""
    spec = importlib.util.spec_from_file_location("generate", SCRIPT)
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    diff = generate.stale_diff()
    assert not diff, f"stubs are stale; run scripts/generate.py:\n{diff[:6000]}"
