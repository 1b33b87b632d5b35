"""Run the cells of a grid as ``python -m vireid.cli`` subprocesses, skipping finished ones.

Each cell is one run folder. A ``train`` cell runs ``vireid train --run-dir D`` and then
``vireid test --run D --json --out D/test.json`` (the validation-selected checkpoint, the
recipe's protocol, no test-time options); an ``adapt`` cell runs ``vireid adapt --run-dir D
--json``, which writes ``D/target_result.json``. Running the command line rather than library
functions keeps the runner independent of where methods live, and each cell gets a clean
process (its own seed state, its own single compute thread).

Before anything runs, every cell's configuration is resolved with ``--print-config`` (a bad
recipe or override fails the grid at once, exit 2). A cell whose result file exists and whose
saved configuration equals the resolved one is skipped; a folder holding another configuration
is an error (never overwritten); an interrupted one is resumed (``--resume``). The runner writes
``D/grid_cell.json`` (the commands and the resolved configuration) before starting a cell, and
the cell's output to ``D/grid.log``. A failed cell is reported with its exit code and log.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vireid
from vireid.engine.grid.spec import Cell, GridSpec, Step, substitute
from vireid.errors import ConfigError
from vireid.utils.io import atomic_write_json

logger = logging.getLogger(__name__)

RESULT_FILES = {"train": "test.json", "adapt": "target_result.json"}
SAVED_CONFIGS = {"train": "config.yaml", "adapt": "adapt.yaml"}
CELL_FILE = "grid_cell.json"
LOG_FILE = "grid.log"
# One compute thread per process: parallel cells share the cores instead of fighting over them.
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


@dataclass
class CellOutcome:
    """What happened to a cell: ``skipped`` (finished before), ``done``, or ``failed`` (with exit code)."""

    cell: Cell
    status: str
    result: dict[str, Any] | None = None
    returncode: int = 0
    seconds: float = 0.0
    log: str = ""


def vireid_command(*args: str) -> list[str]:
    """``python -m vireid.cli ARGS`` with this interpreter."""
    return [sys.executable, "-m", "vireid.cli", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(SINGLE_THREAD_ENV)
    # The child imports the same vireid as this process, wherever it was imported from.
    src = str(Path(vireid.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    return env


def recipe_arguments(kind: str, cell: Cell) -> list[str]:
    """The sub-command and recipe arguments of a cell, without the run folder."""
    args = [kind, "--config", cell.recipe.config]
    if cell.variant.adapt_variant:
        args += ["--variant", cell.variant.adapt_variant]
    for item in cell.overrides:
        args += ["--set", item]
    return args


def cell_commands(kind: str, cell: Cell, resume: bool = False) -> list[list[str]]:
    """The commands that run a cell, in order (``vireid`` arguments, without the interpreter)."""
    d = str(cell.run_dir)
    if kind == "train":
        return [[*recipe_arguments(kind, cell), "--run-dir", d, *(["--resume"] if resume else [])],
                ["test", "--run", d, "--json", "--out", str(cell.run_dir / RESULT_FILES[kind])]]
    return [[*recipe_arguments(kind, cell), "--run-dir", d, "--json", *(["--resume"] if resume else [])]]


def resolve_config(kind: str, cell: Cell) -> str:
    """The cell's resolved configuration (YAML text), from ``vireid train|adapt --print-config``."""
    proc = subprocess.run(vireid_command(*recipe_arguments(kind, cell), "--print-config"), capture_output=True,
                          text=True, env=_env(), check=False)
    if proc.returncode != 0:
        lines = (proc.stderr.strip() or proc.stdout.strip() or f"exit code {proc.returncode}").splitlines()
        raise ConfigError(f"cell {cell.key}: {lines[-1]}")
    return proc.stdout


def saved_config(kind: str, run_dir: Path) -> str | None:
    """The configuration a run folder was made with: the runner's record, else the run's own file."""
    record = run_dir / CELL_FILE
    if record.is_file():
        return str(json.loads(record.read_text())["config"])
    path = run_dir / SAVED_CONFIGS[kind]
    return path.read_text() if path.is_file() else None


def cell_state(kind: str, cell: Cell, config: str) -> str:
    """``finished``, ``partial`` (an interrupted run to resume), or ``new``; another configuration raises."""
    d = cell.run_dir
    if not d.exists() or not any(d.iterdir()):
        return "new"
    saved = saved_config(kind, d)
    if saved is None or saved != config:
        raise ConfigError(f"{d} holds a run of another configuration than cell {cell.key} of this grid; "
                          "choose another --out or remove that folder")
    if (d / RESULT_FILES[kind]).is_file():
        return "finished"
    return "partial" if (d / "last.pt").is_file() else "new"


def run_steps(steps: Sequence[Step], out: str | Path, recipes: Sequence[str] | None = None) -> list[str]:
    """Run the data steps whose ``creates`` file is missing (and that a selected recipe needs); return them."""
    done: list[str] = []
    for step in steps:
        creates = Path(substitute(step.creates, out=out))
        if creates.exists() or (recipes is not None and step.recipes and not set(step.recipes) & set(recipes)):
            continue
        args = [substitute(a, out=out) for a in step.run]
        logger.info("prepare: vireid %s", " ".join(args))
        proc = subprocess.run(vireid_command(*args), capture_output=True, text=True, env=_env(), check=False)
        if proc.returncode != 0 or not creates.exists():
            last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
            raise ConfigError(f"data step `vireid {' '.join(args)}` failed (exit {proc.returncode}; "
                              f"{creates} {'missing' if not creates.exists() else 'written'}): {last}")
        done.append(" ".join(args))
    return done


def _run_cell(kind: str, cell: Cell, config: str, state: str) -> CellOutcome:
    d = cell.run_dir
    d.mkdir(parents=True, exist_ok=True)
    commands = cell_commands(kind, cell, resume=state == "partial")
    atomic_write_json(d / CELL_FILE, {"key": cell.key, "commands": [["vireid", *c] for c in commands],
                                      "config": config})
    start = time.perf_counter()
    with open(d / LOG_FILE, "a", encoding="utf-8") as log:
        for command in commands:
            log.write(f"$ vireid {' '.join(command)}\n")
            log.flush()
            rc = subprocess.run(vireid_command(*command), stdout=log, stderr=subprocess.STDOUT, env=_env(),
                                check=False).returncode
            if rc != 0:
                return CellOutcome(cell, "failed", returncode=rc, seconds=time.perf_counter() - start,
                                   log=str(d / LOG_FILE))
    result_file = d / RESULT_FILES[kind]
    if not result_file.is_file():
        return CellOutcome(cell, "failed", returncode=-1, seconds=time.perf_counter() - start, log=str(d / LOG_FILE))
    return CellOutcome(cell, "done", json.loads(result_file.read_text()), seconds=time.perf_counter() - start,
                       log=str(d / LOG_FILE))


def collect_cells(spec: GridSpec, cells: Sequence[Cell]) -> list[CellOutcome]:
    """Outcomes of the cells already finished with their resolved configuration; the others are ``missing``."""
    outcomes = []
    for cell in cells:
        config = resolve_config(spec.kind, cell)
        d, result_file = cell.run_dir, cell.run_dir / RESULT_FILES[spec.kind]
        if result_file.is_file() and saved_config(spec.kind, d) == config:
            outcomes.append(CellOutcome(cell, "skipped", json.loads(result_file.read_text())))
        else:
            outcomes.append(CellOutcome(cell, "missing", returncode=-1, log=str(d / LOG_FILE)))
    return outcomes


def resolve_configs(spec: GridSpec, cells: Sequence[Cell], jobs: int = 1) -> list[str]:
    """Every cell's resolved configuration (``jobs`` at a time); the first bad one raises :class:`ConfigError`."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(lambda c: resolve_config(spec.kind, c), cells))


def run_cells(spec: GridSpec, cells: Sequence[Cell], *, jobs: int = 1, configs: Sequence[str] | None = None,
              on_done: Callable[[CellOutcome, int, int], Any] | None = None) -> list[CellOutcome]:
    """Run ``cells`` (``jobs`` processes at a time), skipping finished ones; outcomes in the cells' order.

    Every configuration is resolved (unless ``configs`` gives them) and every folder checked before
    the first cell starts. ``on_done(outcome, finished_count, total)`` is called as each cell ends.
    """
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    configs = list(configs) if configs is not None else resolve_configs(spec, cells, jobs)
    states = [cell_state(spec.kind, c, cfg) for c, cfg in zip(cells, configs)]
    outcomes: list[CellOutcome | None] = [None] * len(cells)
    counter = {"done": 0}

    def finish(i: int, outcome: CellOutcome) -> None:
        outcomes[i] = outcome
        counter["done"] += 1
        if outcome.status == "failed":
            logger.error("cell %s failed (exit %d); see %s", outcome.cell.key, outcome.returncode, outcome.log)
        if on_done is not None:
            on_done(outcome, counter["done"], len(cells))

    pending = []
    for i, (cell, state) in enumerate(zip(cells, states)):
        if state == "finished":
            result = json.loads((cell.run_dir / RESULT_FILES[spec.kind]).read_text())
            finish(i, CellOutcome(cell, "skipped", result))
        else:
            pending.append((i, cell, configs[i], state))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_run_cell, spec.kind, cell, cfg, state): i for i, cell, cfg, state in pending}
        for future in as_completed(futures):
            finish(futures[future], future.result())
    return [o for o in outcomes if o is not None]


__all__ = ["CellOutcome", "cell_commands", "collect_cells", "cell_state", "recipe_arguments", "resolve_config", "resolve_configs", "run_cells",
           "run_steps", "saved_config", "vireid_command"]
