"""Summarise scripts/method_grid.sh: mean ± sample std over seeds of each method's test metrics (Markdown)."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

LABELS = {
    "demo_cpu": "AGW (configs/demo_cpu.yaml)",
    "caj_synthetic": "CAJ (configs/caj_synthetic.yaml)",
    "mrda/baseline": "MRDA baseline (two-stream stages 0-1, GeM; no MRM, no DAM)",
    "mrda/mrm": "MRDA +MRM",
    "mrda/dam": "MRDA +DAM",
    "mrda/mrm+dam": "MRDA (MRM + DAM)",
    "mrda/mrm+bam": "MRM + BAM (instead of DAM)",
    "mrda/mrm+cbam": "MRM + CBAM (instead of DAM)",
    "mrda/mrm+iwpam": "MRM + IWPAM (instead of DAM)",
}
KEYS = ("rank1", "rank5", "rank10", "mAP", "mINP")


def main(out: Path) -> None:
    print("| method | seeds | " + " | ".join(KEYS) + " |")
    print("|---|---|" + "---|" * len(KEYS))
    for key, label in LABELS.items():
        runs = sorted((out / key).glob("seed*/test.json"))
        if not runs:
            continue
        means = [json.loads(r.read_text())["mean"] for r in runs]
        cells = []
        for k in KEYS:
            values = [m[k] for m in means]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.2f} ± {spread:.2f}")
        print(f"| {label} | {len(runs)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/method_grid"))
