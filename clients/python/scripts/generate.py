"""Regenerates the committed gRPC stubs in src/switchyard/v1 from the repository's proto/ directory.

    python scripts/generate.py          # rewrite the stubs in place
    python scripts/generate.py --check  # exit 1, with a diff, if the committed stubs are stale

Run it with the grpcio-tools version pinned in pyproject.toml's `test` extra (`ci.sh` does): the
generated files record that version, so another one shows up as a diff.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import tempfile
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = PACKAGE_ROOT.parent.parent / "proto"
STUBS_DIR = PACKAGE_ROOT / "src" / "switchyard" / "v1"
# What protoc writes; anything else in STUBS_DIR (the hand-written __init__.py) is left alone.
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generate(out_dir: Path) -> dict[str, str]:
    """Runs protoc on every proto under proto/switchyard/v1 into `out_dir`; returns name -> text."""
    from grpc_tools import protoc  # imported here so --help works without grpcio-tools

    protos = sorted(PROTO_ROOT.glob("switchyard/v1/*.proto"))
    if not protos:
        raise SystemExit(f"no .proto files under {PROTO_ROOT}/switchyard/v1")
    include = str(Path(protoc.__file__).parent / "_proto")  # google/protobuf/*.proto
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(p) for p in protos),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    produced = out_dir / "switchyard" / "v1"
    return {p.name: p.read_text() for p in sorted(produced.iterdir()) if p.name.endswith(GENERATED_SUFFIXES)}


def committed() -> dict[str, str]:
    """The generated files currently in the package, name -> text."""
    return {p.name: p.read_text() for p in sorted(STUBS_DIR.iterdir()) if p.name.endswith(GENERATED_SUFFIXES)}


def stale_diff() -> str:
    """A unified diff from the committed stubs to freshly generated ones; empty when they agree."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
    current = committed()
    diff: list[str] = []
    for name in sorted(fresh.keys() | current.keys()):
        diff.extend(
            difflib.unified_diff(
                current.get(name, "").splitlines(keepends=True),
                fresh.get(name, "").splitlines(keepends=True),
                fromfile=f"committed/{name}",
                tofile=f"generated/{name}",
            )
        )
    return "".join(diff)


def write() -> None:
    """Replaces the committed stubs with freshly generated ones."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
    for name in committed().keys() - fresh.keys():
        (STUBS_DIR / name).unlink()
    for name, text in fresh.items():
        (STUBS_DIR / name).write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail with a diff instead of writing")
    if parser.parse_args().check:
        diff = stale_diff()
        if diff:
            sys.stdout.write(diff)
            print(
                "\nthe stubs in clients/python/src/switchyard/v1 do not match proto/: "
                "run `clients/python/.venv/bin/python clients/python/scripts/generate.py` and commit",
                file=sys.stderr,
            )
            return 1
        print("stubs match proto/")
        return 0
    write()
    print(f"wrote stubs to {STUBS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
