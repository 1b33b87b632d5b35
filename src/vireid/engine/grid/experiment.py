"""One call from a grid file to its table: prepare the data, run the cells, write ``table.md``/``table.json``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vireid.engine.grid.runner import CellOutcome, resolve_configs, run_cells, run_steps
from vireid.engine.grid.spec import Cell, GridSpec
from vireid.engine.grid.table import format_markdown, summarize
from vireid.utils.io import atomic_write_json, atomic_write_text

logger = logging.getLogger(__name__)


def write_table(spec: GridSpec, outcomes: Sequence[CellOutcome], out: str | Path, command: str) -> dict[str, Any]:
    """Write ``OUT/table.json`` and ``OUT/table.md`` (atomically) from the outcomes; return the report."""
    report = summarize(spec, outcomes, command)
    report["markdown"] = format_markdown(report)
    atomic_write_json(Path(out) / "table.json", report)
    atomic_write_text(Path(out) / "table.md", report["markdown"])
    return report


def run_grid(spec: GridSpec, cells: Sequence[Cell], out: str | Path, command: str, *, jobs: int = 1,
             on_done: Callable[[CellOutcome, int, int], Any] | None = None) -> dict[str, Any]:
    """Prepare the grid's data, run ``cells`` (``jobs`` at a time, finished ones skipped), write the table.

    Returns the report (see :func:`vireid.engine.grid.table.summarize`); its ``failed`` lists the
    cells that did not finish, which the table shows and leaves out of the means.
    """
    configs = resolve_configs(spec, cells, jobs)  # a bad override fails before any data step or cell runs
    for step in run_steps(spec.prepare, out, recipes=sorted({c.recipe.name for c in cells})):
        logger.info("prepared: vireid %s", step)
    outcomes = run_cells(spec, cells, jobs=jobs, configs=configs, on_done=on_done)
    report = write_table(spec, outcomes, out, command)
    logger.info("wrote %s and %s", Path(out) / "table.md", Path(out) / "table.json")
    return report


__all__ = ["run_grid", "write_table"]
