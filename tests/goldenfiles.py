"""Shared helpers for golden-file tests: rewrite a golden folder, read one back.

Imported by test_render_golden and test_kuberhealthy_stages; it holds no tests itself.
"""

from __future__ import annotations

from pathlib import Path


def write_golden(target: Path, files: dict[str, bytes]) -> None:
    """Replace everything under `target` with `files` (relative path -> bytes)."""
    for old in sorted(target.rglob("*"), reverse=True) if target.exists() else []:
        old.unlink() if old.is_file() else old.rmdir()
    for rel, data in files.items():
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_bytes(data)


def read_golden(target: Path) -> dict[str, bytes]:
    """Every file under `target`, by its path relative to `target`."""
    return {str(p.relative_to(target)): p.read_bytes() for p in target.rglob("*") if p.is_file()}
