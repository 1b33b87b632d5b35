#!/usr/bin/env bash
# AGW vs CAJ vs MRDA (+ its MRM/DAM ablation) on the synthetic dataset, one budget for all, 3 seeds.
# Usage: scripts/method_grid.sh [DATA_ROOT] [OUT]   (defaults: demo/data written by `make demo`, runs/method_grid)
# Budget: 6 epochs x 30 batches, 64x32, AdamW 1e-3, bf16, 1 compute thread (the recipes' settings otherwise).
# Then: .venv/bin/python scripts/summarize_grid.py OUT
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-demo/data}
OUT=${2:-runs/method_grid}
B=(--set "data.root=$DATA" --set optim.epochs=6 --set optim.warmup_epochs=1 --set "optim.milestones=[5]"
   --set data.batches_per_epoch=30 --set eval.every=6)
for s in 0 1 2; do
  for m in demo_cpu caj_synthetic; do
    d=$OUT/$m/seed$s
    [ -f "$d/test.json" ] && continue
    rm -rf "$d"; mkdir -p "$OUT/$m"
    .venv/bin/vireid train --config "configs/$m.yaml" "${B[@]}" --set "runtime.seed=$s" --run-dir "$d" > "$d.train.log" 2>&1
    .venv/bin/vireid test --run "$d" --json --out "$d/test.json" > /dev/null
  done
done
.venv/bin/vireid ablate --config configs/mrda_synthetic.yaml "${B[@]}" --seeds 0 1 2 \
    --out "$OUT/mrda" > "$OUT/mrda.log" 2>&1
