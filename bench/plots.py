"""The benchmarks' plots: each bench draws its figures at the end of a run,
as matplotlib PNGs in bench/results/, which bench/RESULTS.md shows."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on the machines that run benches
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, NullLocator

OUT = Path(__file__).resolve().parent / "results"
Series = dict[str, tuple[Sequence[float], Sequence[float]]]  # label -> (x values, y values)


@dataclass
class Panel:
    xlabel: str
    ylabel: str
    series: Series
    logx: bool = False
    logy: bool = False
    # Horizontal reference lines: label -> y.
    levels: dict[str, float] = field(default_factory=dict)


def draw(name: str, title: str, panels: list[Panel]) -> Path:
    """Writes bench/results/<name>.png (panels side by side) and returns its path."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.4), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for label, (xs, ys) in panel.series.items():
            ax.plot(xs, ys, marker="o", label=label)
        for i, (label, y) in enumerate(panel.levels.items()):
            ax.axhline(y, linestyle="--", linewidth=1, color=f"C{len(panel.series) + i}", label=label)
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        if panel.logx:
            # Ticks at the measured points, written out (8, 32, 100,000).
            ax.set_xscale("log")
            ax.set_xticks(sorted({x for xs, _ in panel.series.values() for x in xs}))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
            ax.xaxis.set_minor_locator(NullLocator())
        if panel.logy:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(f"{title}\n({datetime.date.today().isoformat()})", fontsize="medium")
    fig.tight_layout()
    OUT.mkdir(exist_ok=True)
    path = OUT / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
