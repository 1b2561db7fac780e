"""The README's quickstart works: each Python block runs against the broker and prints what the text
block after it shows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
README_ADDRESS = "127.0.0.1:50051"


def quickstart_examples() -> list[tuple[str, str]]:
    """(program, expected output) for each ```python block of the Quickstart section."""
    text = README.read_text()
    section = text.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    pairs = re.findall(r"```python\n(.*?)```\s*```text\n(.*?)```", section, flags=re.DOTALL)
    assert len(pairs) == 3, "the quickstart has three programs, each followed by its output"
    return pairs


@pytest.mark.parametrize(
    ("program", "expected"), quickstart_examples(), ids=["pubsub", "work-queue", "request"]
)
def test_quickstart_program_prints_what_the_readme_says(
    server_address: str, program: str, expected: str
) -> None:
    run = subprocess.run(
        [sys.executable, "-c", program.replace(README_ADDRESS, server_address)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == expected
