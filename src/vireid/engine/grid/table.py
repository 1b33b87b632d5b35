"""The grid's table: mean ± sample standard deviation over seeds of each row, in Markdown and JSON.

One row per (recipe, variant), in the grid file's order. Every metric is the mean over the
finished seeds of the cell results' ``mean`` (itself the mean over the protocol's trials) and
the sample standard deviation (n - 1 in the denominator; 0 for one seed). ``pad`` is the mean
over seeds of the proxy A-distance per modality (``domain_gap`` of adapt results, seeds/000
Eq. 1). The protocol line is read from the results' ``settings`` (what the evaluator did), not
from the recipe. Papers' numbers are shown beside, marked not comparable.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from vireid.engine.grid.runner import CellOutcome
from vireid.engine.grid.spec import METRIC_COLUMNS, GridSpec

HEADERS = {"label": "method", "recipe": "recipe", "variant": "variant", "seeds": "seeds", "pad": "PAD vis / IR",
           "paper": "paper R1 / mAP*"}
# Settings of the evaluator that define the numbers, in the order the protocol line names them.
PROTOCOL_KEYS = ("protocol", "mode", "shots", "query", "gallery", "sampling", "direction", "num_trials", "cmc",
                 "exclusion", "distance", "normalize", "flip", "rerank", "checkpoint")


def mean_std(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (n - 1; 0.0 for a single value) and the values."""
    values = [float(v) for v in values]
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def protocol_line(dataset: str, settings: dict[str, Any]) -> str:
    """One line naming the evaluator's settings that define the numbers, e.g. ``mode all-search; shots 1; ...``."""
    parts = [dataset]
    for key in PROTOCOL_KEYS:
        value = settings.get(key)
        if value is None:
            continue
        if key == "rerank" and isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif key == "checkpoint" and isinstance(value, dict):
            value = value.get("which", value)
        parts.append(str(value) if key == "protocol" else f"{key} {value}")
    return "; ".join(parts)


def summarize(spec: GridSpec, outcomes: Sequence[CellOutcome], command: str) -> dict[str, Any]:
    """The table as a JSON-able dict: rows with per-metric mean/std/values, protocols, failures, the command."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    protocols: dict[str, list[str]] = {}
    for o in outcomes:
        c = o.cell
        row = rows.setdefault(c.row, {
            "recipe": c.recipe.name, "variant": c.variant.name, "label": c.variant.label,
            "recipe_label": c.recipe.label, "config": c.recipe.config, "seeds": [], "failed": [], "results": []})
        if o.result is None:
            row["failed"].append({"seed": c.seed, "returncode": o.returncode, "log": o.log})
            continue
        row["seeds"].append(c.seed)
        row["results"].append(o.result)
        line = protocol_line(str(o.result.get("dataset", "")), o.result.get("settings", {}))
        protocols.setdefault(line, [])
        if c.key.rsplit("/", 1)[0] not in protocols[line]:
            protocols[line].append(c.key.rsplit("/", 1)[0])
    table = []
    for row in rows.values():
        results = row.pop("results")
        for metric in METRIC_COLUMNS:
            values = [r["mean"][metric] for r in results if metric in r.get("mean", {})]
            if values:
                row[metric] = mean_std(values)
        gaps = [r["domain_gap"] for r in results if r.get("domain_gap")]
        if gaps:
            row["pad"] = {k: statistics.fmean(float(g[k]) for g in gaps if k in g) for k in gaps[0]}
        variant = next(v for r in spec.recipes if r.name == row["recipe"] for v in r.variants
                       if v.name == row["variant"])
        if variant.paper:
            row["paper"] = dict(variant.paper)
        table.append(row)
    return {"title": spec.title, "grid": spec.path, "kind": spec.kind, "command": command,
            "seeds": sorted({s for row in table for s in row["seeds"]}),
            "protocols": [{"line": line, "rows": keys} for line, keys in protocols.items()],
            "columns": list(spec.columns), "headers": {**HEADERS, **spec.headers}, "rows": table,
            "description": spec.description, "notes": spec.notes, "paper_note": spec.paper_note,
            "failed": [f"{row['recipe']}/{row['variant']}/seed{f['seed']}".replace("//", "/") for row in table
                       for f in row["failed"]]}


def format_cell(row: dict[str, Any], column: str) -> str:
    """The text of one table cell (metrics as ``mean ± std`` with two decimals, as every grid before)."""
    if column in METRIC_COLUMNS:
        m = row.get(column)
        return "n/a" if m is None else f"{m['mean']:.2f} ± {m['std']:.2f}"
    if column == "seeds":
        return str(len(row["seeds"])) + (f" ({len(row['failed'])} failed)" if row["failed"] else "")
    if column == "pad":
        pad = row.get("pad")
        if not pad:
            return "-"
        return f"{pad.get('pad_visible', float('nan')):.2f} / {pad.get('pad_infrared', float('nan')):.2f}"
    if column == "paper":
        p = row.get("paper")
        if not p:
            return "-"
        return f"{p['rank1']:.2f} / {p['mAP']:.2f}" + (f" ({p['table']})" if p.get("table") else "")
    if column == "recipe":
        return str(row["recipe_label"])
    return str(row[column])


def format_markdown(report: dict[str, Any]) -> str:
    """The table in Markdown: title, description, protocol, the rows, notes, the paper note, failures, command."""
    headers = {**HEADERS, **report.get("headers", {})}
    columns = report["columns"]
    seeds = report["seeds"]
    lines = [f"# {report['title']}", ""]
    if report.get("description"):
        lines += [report["description"], ""]
    protocols = report["protocols"]
    if len(protocols) == 1:
        lines.append(f"Protocol (from the evaluator's settings): {protocols[0]['line']}.")
    for p in protocols if len(protocols) > 1 else []:
        lines.append(f"Protocol of {', '.join(p['rows'])}: {p['line']}.")
    lines += [f"Mean ± sample standard deviation (n - 1) over seeds {', '.join(map(str, seeds))}; percent.", "",
              "| " + " | ".join(headers.get(c, c) for c in columns) + " |",
              "|" + "---|" * len(columns)]
    for row in report["rows"]:
        lines.append("| " + " | ".join(format_cell(row, c) for c in columns) + " |")
    lines.append("")
    if report.get("notes"):
        lines += [report["notes"], ""]
    if "paper" in columns and report.get("paper_note"):
        lines += [f"\\* {report['paper_note']}", ""]
    if report["failed"]:
        lines += ["**Cells without a result** (failed or not run yet; left out of the means; see their grid.log): "
                  + ", ".join(report["failed"]), ""]
    lines += [f"Command: `{report['command']}`", ""]
    return "\n".join(lines)


__all__ = ["format_cell", "format_markdown", "mean_std", "protocol_line", "summarize"]
