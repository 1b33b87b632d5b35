"""The experiment runner (``vireid.engine.grid``): grid files, cells, the table's numbers and text.

The table is checked against hand-worked means and sample standard deviations and against the
formulas of the three runners it replaced (``vireid ablate``: ``statistics.fmean``/``stdev``;
``scripts/summarize_grid.py``: ``statistics.mean``/``stdev``; ``scripts/dan_synthetic.py``:
``np.mean``/``np.std(ddof=1)``), on the same fixed fake results. The shipped grid files resolve
to the configurations the old runners trained (same overrides, same run names).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import pytest
import yaml

from vireid.config import dump_config, load_config
from vireid.engine.grid import expand, format_markdown, load_grid, mean_std, summarize
from vireid.engine.grid.runner import CellOutcome, cell_commands, cell_state, saved_config
from vireid.engine.grid.spec import parse_grid
from vireid.engine.grid.table import protocol_line
from vireid.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
GRIDS = REPO / "configs" / "grids"
SETTINGS = {"protocol": "SYSU-MM01 (Wu et al., ICCV'17)", "mode": "all-search", "shots": 1, "sampling": "official",
            "num_trials": 10, "cmc": "identity", "flip": False, "rerank": {"method": "none"},
            "checkpoint": {"which": "best", "epoch": 6}, "gallery_table": "/x/rand_perm_cam.mat"}


def _grid(**changes: object) -> dict:
    grid = {"title": "t", "kind": "train", "seeds": [0, 1], "set": ["optim.epochs=1"],
            "recipes": [{"name": "agw", "config": "a.yaml", "label": "AGW"},
                        {"name": "mrda", "config": "m.yaml", "set": ["name=m_{variant}_seed{seed}"],
                         "variants": [{"name": "mrm", "label": "+MRM", "set": ["model.params.use_mrm=true"],
                                       "paper": {"rank1": 68.39, "mAP": 61.82, "table": "Table 2"}},
                                      {"name": "dam", "set": ["x={out}/y"]}]}]}
    grid.update(changes)
    return grid


def _result(rank1: float, mAP: float, mINP: float = 1.0, **extra: object) -> dict:
    mean = {"rank1": rank1, "rank5": rank1 + 10, "rank10": rank1 + 20, "rank20": rank1 + 30, "mAP": mAP, "mINP": mINP}
    return {"dataset": "sysu-mm01", "settings": dict(SETTINGS), "mean": mean, **extra}


def test_cells_are_recipes_by_variants_by_seeds_with_ordered_overrides(tmp_path: Path) -> None:
    spec = parse_grid(_grid(), "g.yaml")
    cells = expand(spec, tmp_path, overrides=["optim.lr=0.1"])
    assert [c.key for c in cells] == ["agw/seed0", "agw/seed1", "mrda/mrm/seed0", "mrda/mrm/seed1",
                                      "mrda/dam/seed0", "mrda/dam/seed1"]
    assert cells[0].run_dir == tmp_path / "agw" / "seed0"
    assert cells[3].overrides == ("optim.epochs=1", "name=m_mrm_seed1", "model.params.use_mrm=true",
                                  "optim.lr=0.1", "runtime.seed=1")
    assert cells[4].overrides[2] == f"x={tmp_path}/y"
    only = expand(spec, "o", seeds=[5], recipes=["mrda"], variants=["dam"])
    assert [c.key for c in only] == ["mrda/dam/seed5"]
    # a train cell trains into its folder, then tests the validation-selected checkpoint into test.json
    assert cell_commands("train", cells[0]) == [
        ["train", "--config", "a.yaml", "--set", "optim.epochs=1", "--set", "optim.lr=0.1", "--set",
         "runtime.seed=0", "--run-dir", str(cells[0].run_dir)],
        ["test", "--run", str(cells[0].run_dir), "--json", "--out", str(cells[0].run_dir / "test.json")]]
    assert cell_commands("train", cells[0], resume=True)[0][-1] == "--resume"


def test_adapt_cells_name_the_adapt_variant(tmp_path: Path) -> None:
    grid = _grid(kind="adapt", recipes=[{"name": "noise", "config": "d.yaml",
                                         "variants": [{"name": "dan", "adapt_variant": "dan"}]}])
    cell = expand(parse_grid(grid, "g.yaml"), tmp_path, seeds=[2])[0]
    assert cell_commands("adapt", cell) == [["adapt", "--config", "d.yaml", "--variant", "dan", "--set",
                                             "optim.epochs=1", "--set", "runtime.seed=2", "--run-dir",
                                             str(cell.run_dir), "--json"]]


@pytest.mark.parametrize(("change", "message"), [
    ({"kind": "tune"}, "kind must be one of train, adapt, got 'tune'"),
    ({"seeds": []}, "seeds must be a non-empty list of integers"),
    ({"recipe": []}, "unknown key recipe; valid: description, kind"),
    ({"recipes": [{"name": "a b", "config": "x.yaml"}]}, "recipes.0.name must be a name"),
    ({"recipes": [{"name": "a", "config": "x.yaml", "variants": [{"name": "v", "sett": []}]}]},
     "unknown key recipes.0.variants.0.sett"),
    ({"recipes": [{"name": "a", "config": "x.yaml", "variants": [{"name": "v", "adapt_variant": "dan"}]}]},
     "adapt_variant needs kind: adapt"),
    ({"recipes": [{"name": "a", "config": "x.yaml"}, {"name": "a", "config": "y.yaml"}]}, "duplicate name 'a'"),
    ({"table": {"columns": ["rank1", "rank3"]}}, "unknown column 'rank3'"),
    ({"prepare": [{"run": ["synth"]}]}, "prepare.0 needs run"),
])
def test_bad_grid_files_name_the_key(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match="^g.yaml: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_grid(_grid(**change), "g.yaml")


def test_unknown_selection_and_missing_file(tmp_path: Path) -> None:
    spec = parse_grid(_grid(), "g.yaml")
    with pytest.raises(ConfigError, match="no recipe 'caj'; valid: agw, mrda"):
        expand(spec, "o", recipes=["caj"])
    with pytest.raises(ConfigError, match="no variant 'bam'; valid: dam, mrm"):
        expand(spec, "o", variants=["bam"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_grid(tmp_path / "none.yaml")


def test_mean_and_sample_std_hand_worked_and_as_the_old_runners() -> None:
    # 5, 6, 8: mean 19/3; squared deviations 16/9, 1/9, 25/9 -> sample variance (42/9) / 2 = 7/3
    m = mean_std([5.0, 6.0, 8.0])
    assert m["mean"] == pytest.approx(19 / 3, abs=1e-12) and m["std"] == pytest.approx(math.sqrt(7 / 3), abs=1e-12)
    assert mean_std([4.25])["std"] == 0.0
    values = [6.42, 5.31, 7.55]
    ours = mean_std(values)
    assert f"{ours['mean']:.2f} ± {ours['std']:.2f}" == \
        f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}" == \
        f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}"


def test_table_rows_protocol_paper_and_failures(tmp_path: Path) -> None:
    spec = parse_grid(_grid(table={"columns": ["label", "seeds", "rank1", "mAP", "paper"],
                                   "headers": {"rank1": "rank-1"}}, paper_note="NOT comparable."), "g.yaml")
    cells = expand(spec, tmp_path)
    results = {"agw/seed0": _result(10.0, 20.0), "agw/seed1": _result(14.0, 26.0),
               "mrda/mrm/seed0": _result(5.0, 7.0), "mrda/mrm/seed1": _result(6.0, 8.0),
               "mrda/dam/seed0": _result(8.0, 9.0)}
    outcomes = [CellOutcome(c, "done", results[c.key]) if c.key in results
                else CellOutcome(c, "failed", returncode=2, log="x/grid.log") for c in cells]
    report = summarize(spec, outcomes, "vireid grid g.yaml")
    agw, mrm, dam = report["rows"]
    assert agw["rank1"] == {"mean": 12.0, "std": pytest.approx(math.sqrt(8.0)), "values": [10.0, 14.0]}
    assert agw["mAP"]["mean"] == 23.0 and agw["mAP"]["std"] == pytest.approx(math.sqrt(18.0))
    assert mrm["paper"] == {"rank1": 68.39, "mAP": 61.82, "source": "", "table": "Table 2", "dataset": "",
                            "comparable": False}
    assert dam["seeds"] == [0] and dam["failed"] == [{"seed": 1, "returncode": 2, "log": "x/grid.log"}]
    assert report["failed"] == ["mrda/dam/seed1"]
    text = format_markdown(report)
    assert "| method | seeds | rank-1 | mAP | paper R1 / mAP* |" in text
    assert "| AGW | 2 | 12.00 ± 2.83 | 23.00 ± 4.24 | - |" in text
    assert "| +MRM | 2 | 5.50 ± 0.71 | 7.50 ± 0.71 | 68.39 / 61.82 (Table 2) |" in text
    assert "| dam | 1 (1 failed) | 8.00 ± 0.00 | 9.00 ± 0.00 | - |" in text
    assert "\\* NOT comparable." in text and "mrda/dam/seed1" in text and "Command: `vireid grid g.yaml`" in text
    assert ("Protocol (from the evaluator's settings): sysu-mm01; SYSU-MM01 (Wu et al., ICCV'17); mode all-search; "
            "shots 1; sampling official; num_trials 10; cmc identity; flip False; rerank method none; "
            "checkpoint best.") in text
    assert "over seeds 0, 1; percent" in text


def test_pad_column_is_the_mean_over_seeds_per_modality(tmp_path: Path) -> None:
    grid = _grid(kind="adapt", recipes=[{"name": "noise", "config": "d.yaml", "label": "noise",
                                         "variants": [{"name": "baseline", "adapt_variant": "baseline",
                                                       "label": "source only"}]}],
                 table={"columns": ["recipe", "label", "rank1", "pad"], "headers": {"recipe": "target"}})
    spec = parse_grid(grid, "g.yaml")
    gaps = [{"pad_visible": 1.5, "pad_infrared": 1.9}, {"pad_visible": 1.2, "pad_infrared": 2.0}]
    outcomes = [CellOutcome(c, "done", _result(r, 1.0, domain_gap=g))
                for c, r, g in zip(expand(spec, tmp_path), (10.0, 12.0), gaps)]
    report = summarize(spec, outcomes, "c")
    assert report["rows"][0]["pad"] == {"pad_visible": pytest.approx(1.35), "pad_infrared": pytest.approx(1.95)}
    assert "| target | method | rank1 | PAD vis / IR |" in format_markdown(report)
    assert "| noise | source only | 11.00 ± 1.41 | 1.35 / 1.95 |" in format_markdown(report)


def test_two_protocols_are_both_named() -> None:
    other = dict(SETTINGS, mode="indoor-search")
    assert protocol_line("sysu-mm01", other) != protocol_line("sysu-mm01", SETTINGS)
    spec = parse_grid(_grid(seeds=[0]), "g.yaml")
    cells = expand(spec, "o")
    outcomes = [CellOutcome(cells[0], "done", _result(1.0, 2.0)),
                CellOutcome(cells[1], "done", {**_result(1.0, 2.0), "settings": other}),
                CellOutcome(cells[2], "done", _result(1.0, 2.0))]
    text = format_markdown(summarize(spec, outcomes, "c"))
    assert "Protocol of agw, mrda/dam: sysu-mm01" in text and "Protocol of mrda/mrm: sysu-mm01" in text
    assert "indoor-search" in text


def test_folder_states_finished_partial_new_and_foreign(tmp_path: Path) -> None:
    spec = parse_grid(_grid(seeds=[0]), "g.yaml")
    cell = expand(spec, tmp_path)[0]
    assert cell_state("train", cell, "cfg") == "new"
    cell.run_dir.mkdir(parents=True)
    (cell.run_dir / "config.yaml").write_text("cfg")
    assert saved_config("train", cell.run_dir) == "cfg" and cell_state("train", cell, "cfg") == "new"
    (cell.run_dir / "last.pt").write_bytes(b"")
    assert cell_state("train", cell, "cfg") == "partial"
    (cell.run_dir / "test.json").write_text("{}")
    assert cell_state("train", cell, "cfg") == "finished"
    with pytest.raises(ConfigError, match="holds a run of another configuration than cell agw/seed0"):
        cell_state("train", cell, "other")


# --------------------------------------------------------------- the shipped grid files


def _mrda_old(overrides: list[str], variant: str, seed: int, recipe: str = "mrda_synthetic") -> str:
    """What ``vireid ablate`` trained: the variant's switches, the seed, its run name, MRM losses dropped."""
    use_mrm, attention = {"baseline": (False, "none"), "mrm": (True, "none"), "dam": (False, "dam"),
                          "mrm+dam": (True, "dam"), "mrm+bam": (True, "bam"), "mrm+cbam": (True, "cbam"),
                          "mrm+iwpam": (True, "iwpam")}[variant]
    cfg = load_config(REPO / f"configs/{recipe}.yaml",
                      [*overrides, f"model.params.use_mrm={str(use_mrm).lower()}", f"model.params.attention={attention}",
                       f"runtime.seed={seed}", f"name={recipe}_{variant}_seed{seed}"])
    if not use_mrm:
        cfg.losses = [loss for loss in cfg.losses if loss.name != "region_centre"]
    return dump_config(cfg)


def _resolved(cell) -> str:  # noqa: ANN001 - what `vireid train --print-config` prints, in-process
    return dump_config(load_config(REPO / cell.recipe.config, list(cell.overrides)))


@pytest.mark.parametrize(("grid", "recipe", "comparable"), [("mrda_ablation", "mrda_synthetic", False),
                                                             ("mrda_ablation_sysu", "mrda_sysu", True)])
def test_mrda_ablation_grids_are_the_old_ablate_grids(grid: str, recipe: str, comparable: bool) -> None:
    spec = load_grid(GRIDS / f"{grid}.yaml")
    cells = expand(spec, "runs/x")
    assert [c.variant.name for c in cells[::3]] == ["baseline", "mrm", "dam", "mrm+dam", "mrm+bam", "mrm+cbam",
                                                    "mrm+iwpam"]
    for cell in cells:
        assert _resolved(cell) == _mrda_old([], cell.variant.name, cell.seed, recipe), cell.key
    paper = {c.variant.name: (c.variant.paper["rank1"], c.variant.paper["mAP"]) for c in cells}
    assert paper == {"baseline": (63.21, 59.87), "mrm": (68.39, 61.82), "dam": (68.47, 63.09),
                     "mrm+dam": (70.55, 63.89), "mrm+bam": (66.63, 62.17), "mrm+cbam": (66.74, 60.95),
                     "mrm+iwpam": (67.79, 61.29)}
    assert all(c.variant.paper["comparable"] is comparable for c in cells)
    assert ("NOT comparable" in spec.paper_note) is not comparable


def test_method_comparison_grid_is_the_old_method_grid_budget() -> None:
    budget = ["data.root=demo/data", "optim.epochs=6", "optim.warmup_epochs=1", "optim.milestones=[5]",
              "data.batches_per_epoch=30", "eval.every=6"]
    cells = expand(load_grid(GRIDS / "method_comparison.yaml"), "runs/method_grid")
    assert len(cells) == 27 and cells[0].run_dir == Path("runs/method_grid/demo_cpu/seed0")
    for cell in cells:
        if cell.recipe.name == "mrda":
            old = _mrda_old(budget, cell.variant.name, cell.seed)
        else:
            old = dump_config(load_config(REPO / cell.recipe.config, [*budget, f"runtime.seed={cell.seed}"]))
        assert _resolved(cell) == old, cell.key


def test_dan_grid_is_the_old_cpu_profile() -> None:
    from vireid.methods.dan.config import load_adapt_config, variant_overrides

    profile = ["data.height=64", "data.width=32", "data.pad=4", "data.batches_per_epoch=20", "data.channel_augment=ca",
               "data.channel_exchange_p=0.5", "optim.name=adamw", "optim.lr=0.001", "optim.epochs=14",
               "optim.warmup_epochs=1", "optim.milestones=[10]", "optim.clip_grad_norm=5.0", "runtime.precision=bf16",
               "runtime.channels_last=true", "runtime.num_threads=1", "dan.soft_start_epoch=3",
               "dan.dbscan_start_epoch=3", "dan.refresh_every=2"]
    spec = load_grid(GRIDS / "dan_synthetic.yaml")
    cells = expand(spec, "runs/dan_synthetic")
    assert len(cells) == 5 * 4 * 3
    for cell in cells:
        old = load_adapt_config(REPO / "configs/dan_synthetic_cpu.yaml", [
            *profile, *variant_overrides(cell.variant.name), "data.root=runs/dan_synthetic/data/source",
            f"target.root=runs/dan_synthetic/data/{cell.recipe.name}", f"runtime.seed={cell.seed}"])
        new = load_adapt_config(REPO / cell.recipe.config,
                                [*variant_overrides(cell.variant.adapt_variant), *cell.overrides])
        assert dump_config(new) == dump_config(old), cell.key
    steps = [" ".join(s.run) for s in spec.prepare]
    assert steps[0] == ("synth --out {out}/data/source --ids 200 --seed 100 --images-per-camera 3 --height 64 "
                        "--width 32 --quiet")
    assert "domains --source {out}/data/source --kind occlusion --out {out}/data/occlusion --seed 101" in steps[4]
    assert "--seed 1100" in steps[5]


def test_every_shipped_grid_file_loads() -> None:
    for path in sorted(GRIDS.glob("*.yaml")):
        spec = load_grid(path)
        assert yaml.safe_load(path.read_text())["title"] == spec.title
        assert expand(spec, "o")


def test_readme_tables_are_the_grids_tables() -> None:
    """README's comparison, DAN and Hi-CMD tables have the header and row labels their grid files write."""
    from vireid.engine.grid.table import HEADERS

    readme = (REPO / "README.md").read_text()
    for name in ("method_comparison", "dan_synthetic", "hicmd_synthetic", "survey_methods"):
        spec = load_grid(GRIDS / f"{name}.yaml")
        assert f"vireid grid configs/grids/{name}.yaml" in readme
        headers = {**HEADERS, **spec.headers}
        assert "| " + " | ".join(headers.get(c, c) for c in spec.columns) + " |" in readme
        for recipe in spec.recipes:
            for variant in recipe.variants:
                start = f"| {variant.label} | 3 | " if name != "dan_synthetic" \
                    else f"| {recipe.label} | {variant.label} | "
                assert start in readme, start


def test_data_steps_run_once_only_when_needed_and_fail_loudly(tmp_path: Path) -> None:
    from vireid.engine.grid.runner import run_steps

    (tmp_path / "have").mkdir()
    (tmp_path / "have" / "meta.json").write_text("{}")
    grid = _grid(prepare=[{"creates": "{out}/have/meta.json", "run": ["synth", "--out", "{out}/have", "--ids", "0"]},
                          {"creates": "{out}/m/meta.json", "recipes": ["mrda"], "run": ["synth", "--ids", "0"]},
                          {"creates": "{out}/bad/meta.json", "run": ["synth", "--out", "{out}/bad", "--ids", "0"]}])
    spec = parse_grid(grid, "g.yaml")
    # the first exists, the second is for a recipe not selected, the third runs and fails with its message
    with pytest.raises(ConfigError, match=r"data step `vireid synth --out .*/bad --ids 0` failed \(exit 2; "
                                          r".*/bad/meta.json missing\): vireid synth: error: .*ids"):
        run_steps(spec.prepare, tmp_path, recipes=["agw"])
    with pytest.raises(ConfigError, match="prepare.0.recipes: no recipe 'caj'"):
        parse_grid(_grid(prepare=[{"creates": "x", "run": ["synth"], "recipes": ["caj"]}]), "g.yaml")
