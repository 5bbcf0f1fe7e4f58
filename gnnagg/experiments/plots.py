"""The runners' figures, each a PNG from the runner's summary.

Every figure is drawn on its own ``matplotlib.figure.Figure`` without
pyplot, so that plotting changes no global state (no backend switch, no
figure registry) and needs no display. Matplotlib is imported only here
and only when a figure is asked for (``pip install gnnagg[plot]``).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

__all__ = ["relation_attention", "oversmoothing", "generalization"]


def _figure(**kwargs: Any):
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _save(fig, path: str, dpi: int) -> str:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def relation_attention(attention: Dict[str, Dict[str, Dict[str, Dict[str, float]]]], path: str,
                       title: str) -> str:
    """LATTE (``gnnagg run hetero``): one panel per data set, the target
    nodes' mean relation attention per layer and relation (bars: mean over
    seeds; whiskers: std)."""
    fig = _figure(figsize=(4.5 * len(attention), 3.5), layout="constrained")
    for ax, (name, layers) in zip(fig.subplots(1, len(attention), squeeze=False)[0],
                                  attention.items()):
        bars = [(f"{layer}: {rel}", ms["mean"], ms["std"], f"C{t}")
                for t, (layer, rels) in enumerate(layers.items()) for rel, ms in rels.items()]
        ax.barh(range(len(bars)), [b[1] for b in bars], xerr=[b[2] for b in bars],
                color=[b[3] for b in bars])
        ax.set_yticks(range(len(bars)), [b[0] for b in bars])
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("mean relation attention")
        ax.set_title(name)
    fig.suptitle(title)
    return _save(fig, path, dpi=120)


def oversmoothing(curves: Dict[str, List[Dict[str, Any]]], path: str, title: str) -> str:
    """The over-smoothing analysis (``gnnagg run citation --depths``):
    accuracy and SMV against depth (log scale), one line per model."""
    fig = _figure(figsize=(9, 3.4))
    axes = fig.subplots(1, 2)
    for name, cs in curves.items():
        depths = [max(c["depth"], 0.5) for c in cs]
        axes[0].errorbar(depths, [c["test_acc"]["mean"] * 100 for c in cs],
                         yerr=[c["test_acc"]["std"] * 100 for c in cs],
                         marker="o", capsize=3, label=name.upper())
        axes[1].plot(depths, [c["smv"]["mean"] for c in cs], marker="o", label=name.upper())
    for ax, label in zip(axes, ["test accuracy (%)", "smoothness metric (SMV)"]):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("depth (layers / hops K)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path, dpi=90)


def generalization(result: Mapping[str, Any], cfg, path: str) -> Optional[str]:
    """``gnnagg run generalization``: accuracy against set size (log x), one
    line per aggregator, one panel per task; the training sizes shaded, the
    most-frequent-label level dotted. Returns the path, or ``None`` without
    matplotlib."""
    try:
        fig = _figure()
    except ImportError:
        print("matplotlib is not installed (pip install gnnagg[plot]): no plot written")
        return None
    summary, base = result["summary"], result["baseline"]
    lo, hi = cfg.train_sizes
    sizes = list(cfg.test_sizes)
    ticks = sorted({2 ** k for k in range(int(math.log2(hi)) + 1) if lo <= 2 ** k <= hi}
                   | {lo, hi, *sizes})
    names = list(dict.fromkeys(n for by_aggr in summary.values() for n in by_aggr))
    fig.set_size_inches(2.0 + 5.0 * len(summary), 4.2)
    axes = fig.subplots(1, len(summary), squeeze=False)
    legend = {}
    for ax, (task, by_aggr) in zip(axes[0], summary.items()):
        ax.axvspan(lo, hi, color="tab:green", alpha=0.12, label=f"training sizes ({lo}-{hi})")
        ax.plot(sizes, [100 * base[task][str(d)] for d in sizes], ls=":", lw=2, color="black",
                zorder=5, label="chance (most frequent label)")
        for name, s in by_aggr.items():
            i = names.index(name)  # the same colour for an aggregator in every panel
            ax.errorbar(sizes, [100 * s["test"][str(d)]["mean"] for d in sizes],
                        yerr=[100 * s["test"][str(d)]["std"] for d in sizes], marker="o", ms=3,
                        capsize=2, color=f"C{i % 10}", ls="-" if i < 10 else "--",
                        label=s["label"])
        legend.update(zip(*reversed(ax.get_legend_handles_labels())))
        ax.set_xscale("log", base=2)
        ax.minorticks_off()
        ax.set_xticks(ticks, [str(t) for t in ticks], fontsize=8)
        ax.set_xlim(lo / 1.3, sizes[-1] * 1.3)
        ax.set_ylim(-2, 102)
        ax.set_title(f"{task}: trained on sizes {lo}-{hi}, tested on {sizes[0]}-{sizes[-1]}",
                     fontsize=9)
        ax.set_xlabel("set size (log scale)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][-1].legend(legend.values(), legend.keys(), fontsize=7, loc="center left",
                       bbox_to_anchor=(1.02, 0.5))
    fig.suptitle("Generalisation to larger sets than trained on", fontsize=10)
    fig.tight_layout()
    return _save(fig, path, dpi=100)
