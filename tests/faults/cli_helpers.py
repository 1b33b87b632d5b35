"""Run the CLI in-process and check the bad-input contract: exit 2, one error line, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from vireid.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


def assert_clear_error(rc: int, err: str, command: str, *words: str) -> str:
    """Exit 2, no traceback, exactly one ``vireid COMMAND: error: ...`` line holding every word (any case)."""
    assert rc == 2, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith(f"vireid {command}: error:")]
    assert len(lines) == 1, err
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])
    return lines[0]


def assert_nothing_half_written(*folders: Path) -> None:
    """No temporary file of an atomic write and no lock file under ``folders`` (absent folders are fine)."""
    for folder in folders:
        if folder.exists():
            left = [p.name for p in folder.rglob("*") if ".tmp" in p.name or p.name == ".vireid.lock"]
            assert left == [], left
