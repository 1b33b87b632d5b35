"""Run every benchmark at its documented size, one after the other (``make bench``).

Each script prints a Markdown table with the ratio against its baseline measured in the same
run and the peak memory; this runner only sequences them. Pass ``--quick`` for reduced sizes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

RESULTS = str(HERE / "results")  # the scaling-curve PNGs the README shows
FULL = [
    ["bench_eval.py", "--curve", "1000", "2500", "--plot-dir", RESULTS],
    ["bench_rerank.py", "--methods", "k-reciprocal", "--sizes", "2000", "5000", "10000", "20000", "--floor",
     "--cli", "11659", "82161", "--plot-dir", RESULTS],
    ["bench_rerank.py", "--methods", "sim", "--sizes", "1000", "2000", "5000", "--plot-dir", RESULTS],
    ["bench_train_step.py", "--threads", "1"],
    ["bench_data_loader.py"],
]
QUICK = [
    ["bench_eval.py", "--queries", "1000", "--gallery", "5000", "--loop-queries", "200", "--loop-trials", "1"],
    ["bench_rerank.py", "--sizes", "2000"],
    ["bench_train_step.py", "--arch", "resnet18", "--batch", "8", "--height", "128", "--width", "64"],
    ["bench_data_loader.py", "--images", "600", "--repeats", "2"],
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes (minutes instead of an hour)")
    args = parser.parse_args()
    failed = []
    for cmd in QUICK if args.quick else FULL:
        print(f"\n$ python benchmarks/{' '.join(cmd)}", flush=True)
        if subprocess.run([sys.executable, str(HERE / cmd[0]), *cmd[1:]]).returncode != 0:
            failed.append(cmd[0])
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
