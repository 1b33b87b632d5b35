"""Scaling curves for the benchmarks: time and peak memory against N on log-log axes, one PNG per
operation, every implementation measured in the same run, the floor as a dashed line."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path


def plot_scaling(path: str | Path, title: str, rows: list[dict], *, xlabel: str = "N (queries + gallery)",
                 note: str = "", ylabels: tuple[str, str] = ("CPU seconds (one thread)", "peak memory (MiB)")) -> None:
    """Write ``path`` (PNG): left panel seconds, right panel peak MiB, against ``n``.

    Each row: ``{"series": name, "n": int, "seconds": float, "peak_mb": float | None,
    "estimated": bool}``; a series named ``"floor: ..."`` is drawn dashed (time panel only).
    Estimated points (extrapolated baselines) are drawn hollow.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        series[row["series"]].append(row)
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    floors = 0
    for i, (name, pts) in enumerate(series.items()):
        pts = sorted(pts, key=lambda r: r["n"])
        floor = name.startswith("floor")
        style = dict(color="0.4", linestyle=("--", ":", "-.")[floors % 3], marker="") if floor else \
            dict(color=f"C{i}", marker="o")
        floors += floor
        ns = [p["n"] for p in pts]
        ax_t.plot(ns, [p["seconds"] for p in pts], label=name, **style)
        for p in pts:
            if p.get("estimated") and not floor:
                ax_t.plot([p["n"]], [p["seconds"]], marker="o", mfc="white", color=style["color"])
        mem = [(p["n"], p["peak_mb"]) for p in pts if p.get("peak_mb") is not None]
        if mem and not floor:
            ax_m.plot([m[0] for m in mem], [m[1] for m in mem], label=name, **style)
            for p in pts:
                if p.get("estimated") and p.get("peak_mb") is not None:
                    ax_m.plot([p["n"]], [p["peak_mb"]], marker="o", mfc="white", color=style["color"])
    for ax, ylabel in zip((ax_t, ax_m), ylabels):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title + ("\n" + note if note else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
