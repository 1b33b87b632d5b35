"""The experiment runner: recipes x variants x seeds from a grid file, one table (``vireid grid``).

:mod:`~vireid.engine.grid.spec` reads grid files and expands them into cells,
:mod:`~vireid.engine.grid.runner` runs the cells as ``vireid`` subprocesses (skipping finished
ones), :mod:`~vireid.engine.grid.table` turns their results into the Markdown + JSON table.
"""

from vireid.engine.grid.experiment import run_grid, write_table
from vireid.engine.grid.runner import CellOutcome, run_cells, run_steps
from vireid.engine.grid.spec import Cell, GridSpec, expand, load_grid
from vireid.engine.grid.table import format_markdown, mean_std, summarize

__all__ = ["Cell", "CellOutcome", "GridSpec", "expand", "format_markdown", "load_grid", "mean_std", "run_cells",
           "run_grid", "run_steps", "summarize", "write_table"]
