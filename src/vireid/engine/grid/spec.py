"""Grid files: recipes x variants x seeds, read from YAML and expanded into cells.

A grid file (``configs/grids/*.yaml``) names the experiment once, so that its table can be
regenerated with one command (``vireid grid FILE``)::

    title: MRDA ablation on the synthetic dataset
    kind: train                   # train: `vireid train` + `vireid test --json`; adapt: `vireid adapt --json`
    seeds: [0, 1, 2]
    out: runs/mrda_ablation       # default output folder ({out} below)
    set: [data.root=demo/data]    # --set overrides of every cell
    prepare:                      # data steps (vireid sub-commands), each skipped once `creates` exists
      - {creates: demo/data/meta.json, run: [synth, --out, demo/data, --ids, 200, --seed, 0]}
                                  # (`recipes: [a, b]`: only when one of these recipes is selected)
    recipes:
      - name: mrda                # run folders: {out}/<recipe>/<variant>/seed<S> ({out}/<recipe>/seed<S>)
        config: configs/mrda_synthetic.yaml
        label: MRDA
        set: []
        variants:
          - {name: baseline, label: ..., set: [model.params.use_mrm=false, ...],
             paper: {rank1: 63.21, mAP: 59.87, source: seeds/003, table: Table 2}}
    table: {columns: [label, seeds, rank1, mAP, mINP, paper], headers: {rank1: rank-1}}
    description: ...              # Markdown before the table
    notes: ...                    # Markdown after it
    paper_note: ...               # footnote of the paper column (papers' numbers are not comparable)

Overrides and ``prepare`` arguments may use ``{out}``, and overrides also ``{seed}``,
``{recipe}``, ``{variant}``. Adapt grids name a row of ``vireid adapt --variant`` with
``adapt_variant``. Unknown keys are errors naming the file and the dotted key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vireid.errors import ConfigError

KINDS = ("train", "adapt")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
METRIC_COLUMNS = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")
OTHER_COLUMNS = ("label", "recipe", "variant", "seeds", "pad", "paper")
DEFAULT_COLUMNS = ("label", "seeds", "rank1", "rank5", "rank10", "mAP", "mINP")


@dataclass(frozen=True)
class Variant:
    """One row of a recipe: overrides (or an adapt ``--variant``), its label, the paper's numbers if any."""

    name: str
    label: str
    overrides: tuple[str, ...] = ()
    adapt_variant: str | None = None
    paper: dict[str, Any] | None = None


@dataclass(frozen=True)
class Recipe:
    """A YAML recipe (``configs/*.yaml``) with overrides and its variants (one unnamed variant when none)."""

    name: str
    config: str
    label: str
    overrides: tuple[str, ...]
    variants: tuple[Variant, ...]
    has_variants: bool


@dataclass(frozen=True)
class Step:
    """A data preparation step: ``vireid <run...>``, skipped when the file ``creates`` exists or when
    none of the recipes that need it (``recipes``; empty: every recipe) is selected."""

    run: tuple[str, ...]
    creates: str
    recipes: tuple[str, ...] = ()


@dataclass(frozen=True)
class GridSpec:
    path: str
    title: str
    kind: str
    seeds: tuple[int, ...]
    out: str
    overrides: tuple[str, ...]
    prepare: tuple[Step, ...]
    recipes: tuple[Recipe, ...]
    columns: tuple[str, ...] = DEFAULT_COLUMNS
    headers: dict[str, str] = field(default_factory=dict)
    description: str = ""
    notes: str = ""
    paper_note: str = ""


@dataclass(frozen=True)
class Cell:
    """One run of the grid: a recipe's variant at one seed, with its fully substituted overrides."""

    recipe: Recipe
    variant: Variant
    seed: int
    run_dir: Path
    overrides: tuple[str, ...]

    @property
    def key(self) -> str:
        """``recipe/variant/seedS`` (``recipe/seedS`` without variants): the run folder under the grid's output."""
        parts = [self.recipe.name] + ([self.variant.name] if self.recipe.has_variants else [])
        return "/".join([*parts, f"seed{self.seed}"])

    @property
    def row(self) -> tuple[str, str]:
        return (self.recipe.name, self.variant.name)


def _check_keys(node: Any, allowed: set[str], where: str, path: str) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise ConfigError(f"{path}: {where or 'the top level'} must be a mapping, got {type(node).__name__}")
    unknown = sorted(set(node) - allowed)
    if unknown:
        raise ConfigError(f"{path}: unknown key {where + '.' if where else ''}{unknown[0]}; "
                          f"valid: {', '.join(sorted(allowed))}")
    return node


def _str_list(value: Any, where: str, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                              for v in value):
        raise ConfigError(f"{path}: {where} must be a list of strings, got {value!r}")
    return tuple(str(v) for v in value)


def _name(value: Any, where: str, path: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise ConfigError(f"{path}: {where} must be a name of letters, digits and _.+- (a folder name), "
                          f"got {value!r}")
    return value


def _paper(value: Any, where: str, path: str) -> dict[str, Any] | None:
    if value is None:
        return None
    node = _check_keys(value, {"rank1", "mAP", "source", "table", "dataset", "comparable"}, where, path)
    for key in ("rank1", "mAP"):
        if not isinstance(node.get(key), (int, float)):
            raise ConfigError(f"{path}: {where}.{key} must be a number, got {node.get(key)!r}")
    return {"rank1": float(node["rank1"]), "mAP": float(node["mAP"]), "source": str(node.get("source", "")),
            "table": str(node.get("table", "")), "dataset": str(node.get("dataset", "")),
            "comparable": node.get("comparable") is True}


def _variant(node: Any, where: str, path: str, kind: str) -> Variant:
    node = _check_keys(node, {"name", "label", "set", "adapt_variant", "paper"}, where, path)
    name = _name(node.get("name"), f"{where}.name", path)
    adapt_variant = node.get("adapt_variant")
    if adapt_variant is not None and kind != "adapt":
        raise ConfigError(f"{path}: {where}.adapt_variant needs kind: adapt (this grid is kind: {kind})")
    return Variant(name=name, label=str(node.get("label", name)), overrides=_str_list(node.get("set"), f"{where}.set", path),
                   adapt_variant=None if adapt_variant is None else str(adapt_variant),
                   paper=_paper(node.get("paper"), f"{where}.paper", path))


def _recipe(node: Any, where: str, path: str, kind: str) -> Recipe:
    node = _check_keys(node, {"name", "config", "label", "set", "variants"}, where, path)
    name = _name(node.get("name"), f"{where}.name", path)
    if not isinstance(node.get("config"), str):
        raise ConfigError(f"{path}: {where}.config must be the path of a YAML recipe, got {node.get('config')!r}")
    raw = node.get("variants")
    if raw is not None and (not isinstance(raw, list) or not raw):
        raise ConfigError(f"{path}: {where}.variants must be a non-empty list")
    variants = tuple(_variant(v, f"{where}.variants.{i}", path, kind) for i, v in enumerate(raw or []))
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: {where}.variants: duplicate name {next(n for n in names if names.count(n) > 1)!r}")
    label = str(node.get("label", name))
    return Recipe(name=name, config=node["config"], label=label, overrides=_str_list(node.get("set"), f"{where}.set", path),
                  variants=variants or (Variant(name="", label=label),), has_variants=bool(variants))


def _step(node: Any, where: str, path: str) -> Step:
    node = _check_keys(node, {"run", "creates", "recipes"}, where, path)
    run = _str_list(node.get("run"), f"{where}.run", path)
    if not run or not isinstance(node.get("creates"), str):
        raise ConfigError(f"{path}: {where} needs run (a vireid sub-command and its arguments) and creates (a file)")
    return Step(run=run, creates=node["creates"], recipes=_str_list(node.get("recipes"), f"{where}.recipes", path))


def parse_grid(values: Any, path: str) -> GridSpec:
    """Validate the mapping of a grid file (see the module docstring) into a :class:`GridSpec`."""
    top = _check_keys(values, {"title", "kind", "seeds", "out", "set", "prepare", "recipes", "table",
                               "description", "notes", "paper_note"}, "", path)
    kind = top.get("kind", "train")
    if kind not in KINDS:
        raise ConfigError(f"{path}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    seeds = top.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                             for s in seeds):
        raise ConfigError(f"{path}: seeds must be a non-empty list of integers, got {seeds!r}")
    raw_recipes = top.get("recipes")
    if not isinstance(raw_recipes, list) or not raw_recipes:
        raise ConfigError(f"{path}: recipes must be a non-empty list")
    recipes = tuple(_recipe(r, f"recipes.{i}", path, kind) for i, r in enumerate(raw_recipes))
    names = [r.name for r in recipes]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: recipes: duplicate name {next(n for n in names if names.count(n) > 1)!r}")
    prepare = tuple(_step(s, f"prepare.{i}", path) for i, s in enumerate(top.get("prepare") or []))
    for i, step in enumerate(prepare):
        for name in step.recipes:
            if name not in names:
                raise ConfigError(f"{path}: prepare.{i}.recipes: no recipe {name!r}; valid: {', '.join(names)}")
    table = _check_keys(top.get("table") or {}, {"columns", "headers"}, "table", path)
    columns = _str_list(table.get("columns"), "table.columns", path) or DEFAULT_COLUMNS
    for column in columns:
        if column not in METRIC_COLUMNS + OTHER_COLUMNS:
            raise ConfigError(f"{path}: table.columns: unknown column {column!r}; valid: "
                              f"{', '.join(METRIC_COLUMNS + OTHER_COLUMNS)}")
    headers = table.get("headers") or {}
    if not isinstance(headers, dict) or not set(headers) <= set(columns):
        raise ConfigError(f"{path}: table.headers must map some of the columns {list(columns)} to titles")
    return GridSpec(
        path=path, title=str(top.get("title", Path(path).stem)), kind=kind, seeds=tuple(seeds),
        out=str(top.get("out", f"runs/{Path(path).stem}")), overrides=_str_list(top.get("set"), "set", path),
        prepare=prepare,
        recipes=recipes, columns=columns, headers={str(k): str(v) for k, v in headers.items()},
        description=str(top.get("description", "")).strip(), notes=str(top.get("notes", "")).strip(),
        paper_note=str(top.get("paper_note", "")).strip())


def load_grid(path: str | Path) -> GridSpec:
    """Read and validate a grid file; a missing or malformed file raises :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"grid file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"grid file {path} is not valid YAML: {exc}") from exc
    return parse_grid(values, str(path))


def substitute(text: str, **values: Any) -> str:
    """Replace ``{out}``, ``{seed}``, ``{recipe}``, ``{variant}`` in ``text`` (other braces are kept)."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def expand(spec: GridSpec, out: str | Path, *, seeds: list[int] | None = None, overrides: list[str] | None = None,
           recipes: list[str] | None = None, variants: list[str] | None = None) -> list[Cell]:
    """The grid's cells in order (recipe, variant, seed), optionally restricted to some recipes/variants/seeds.

    Overrides are applied in this order: the grid's ``set``, the recipe's, the variant's, then
    ``overrides`` (the command line's ``--set``), and last ``runtime.seed=S``.
    """
    known_recipes = [r.name for r in spec.recipes]
    known_variants = sorted({v.name for r in spec.recipes for v in r.variants if v.name})
    for name in recipes or []:
        if name not in known_recipes:
            raise ConfigError(f"{spec.path}: no recipe {name!r}; valid: {', '.join(known_recipes)}")
    for name in variants or []:
        if name not in known_variants:
            raise ConfigError(f"{spec.path}: no variant {name!r}; valid: {', '.join(known_variants) or '(none)'}")
    cells: list[Cell] = []
    for recipe in spec.recipes:
        if recipes and recipe.name not in recipes:
            continue
        for variant in recipe.variants:
            if variants and recipe.has_variants and variant.name not in variants:
                continue
            for seed in seeds if seeds is not None else spec.seeds:
                values = {"out": out, "seed": seed, "recipe": recipe.name, "variant": variant.name}
                items = [*spec.overrides, *recipe.overrides, *variant.overrides, *(overrides or [])]
                cell_overrides = tuple(substitute(o, **values) for o in items) + (f"runtime.seed={seed}",)
                parts = [recipe.name] + ([variant.name] if recipe.has_variants else []) + [f"seed{seed}"]
                cells.append(Cell(recipe, variant, seed, Path(out).joinpath(*parts), cell_overrides))
    if not cells:
        raise ConfigError(f"{spec.path}: the selection leaves no cell to run")
    return cells


__all__ = ["Cell", "GridSpec", "Recipe", "Step", "Variant", "expand", "load_grid", "parse_grid", "substitute"]
