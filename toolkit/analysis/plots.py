"""Figures for the LoRA lab. Each function returns a matplotlib Figure (shown inline in a notebook) and
saves a PNG when ``path`` is given. We build ``Figure`` objects directly instead of going through pyplot,
so nothing depends on (or changes) the active backend: this works headless (Agg) and inside Jupyter.
"""
from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .params import full_param_count, lora_param_count, select_targets

_MB = 1024**2


def _save(fig: Figure, path: str | Path | None) -> Figure:
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig


def _human(n: float, unit: str = "") -> str:
    """1234567 -> '1.23M'; with unit='B': '1.23 MB' (decimal units, as the paper's 350 GB / 35 MB)."""
    sep = " " if unit else ""
    for prefix, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{sep}{prefix}{unit}"
    return f"{n:.3g}{sep}{unit}"


def plot_params(shapes: dict[str, tuple[int, int]], ranks: list[int], target_sets: dict[str, list[str]],
                r: int = 8, path: str | Path | None = None) -> Figure:
    """Left: trainable params vs r for each target set (log-log). Right: each target set at rank ``r`` vs full."""
    fig = Figure(figsize=(11, 4.2))
    ax1, ax2 = fig.subplots(1, 2)
    for i, (label, targets) in enumerate(target_sets.items()):
        sel = select_targets(shapes, targets)
        # q_proj and v_proj often have equal shapes: distinct markers/dashes keep overlapping lines visible
        ax1.plot(ranks, [lora_param_count(sel, q) for q in ranks], marker="os^vDx"[i % 6], ls=["-", "--", ":"][i % 3],
                 ms=7 - i, label=label)
    full = full_param_count(shapes)
    ax1.axhline(full, color="black", ls="--", lw=1, label=f"full fine-tuning of these Linears ({_human(full)})")
    ax1.set(xscale="log", yscale="log", xlabel="LoRA rank r", ylabel="trainable parameters  Σ r·(d+k)",
            title="Trainable parameters vs rank")
    ax1.set_xticks(ranks, [str(q) for q in ranks])
    ax1.legend(fontsize=8)
    labels = list(target_sets)
    lora = [lora_param_count(select_targets(shapes, target_sets[lb]), r) for lb in labels]
    fulls = [full_param_count(select_targets(shapes, target_sets[lb])) for lb in labels]
    x = range(len(labels))
    ax2.bar([i - 0.2 for i in x], fulls, width=0.4, label="full  Σ d·k", color="tab:gray")
    ax2.bar([i + 0.2 for i in x], lora, width=0.4, label=f"LoRA  Σ r·(d+k), r={r}", color="tab:blue")
    for i, (f, lo) in enumerate(zip(fulls, lora)):
        ax2.text(i + 0.2, lo, f"{f / lo:.0f}× fewer", ha="center", va="bottom", fontsize=8)
    ax2.set_xticks(list(x), labels, rotation=15, fontsize=8)
    ax2.set(yscale="log", ylabel="trainable parameters", title=f"Target-module sets at r = {r}")
    ax2.legend(fontsize=8)
    return _save(fig, path)


def plot_spectra(rows: list[dict], path: str | Path | None = None, title: str = "Singular values of ΔW = scaling·B·A") -> Figure:
    """σ_i / σ_1 per module (log y), one line per module, coloured by module kind (q_proj, v_proj …)."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    kinds = sorted({row["kind"] for row in rows})
    colours = {kd: f"C{i}" for i, kd in enumerate(kinds)}
    for row in rows:
        s = torch.tensor(row["singular_values"])
        if s[0] <= 0:
            continue
        ax.plot(range(1, len(s) + 1), (s / s[0]).clamp_min(1e-12), color=colours[row["kind"]], alpha=0.5, lw=1)
    for kd in kinds:
        ax.plot([], [], color=colours[kd], label=kd)
    ax.set(yscale="log", xlabel="index i (singular values sorted)", ylabel=r"$\sigma_i / \sigma_1$", title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8, title="module")
    return _save(fig, path)


def plot_subspace(grid: torch.Tensor, path: str | Path | None = None, title: str = "φ(A1, A2, i, j)",
                  label_a: str = "run A", label_b: str = "run B") -> Figure:
    """Heatmap of the normalized subspace similarity grid (r1, r2), as in the paper's Figures 3 and 4."""
    r1, r2 = grid.shape
    fig = Figure(figsize=(max(5, min(9, 3 + r2 * 0.12)), max(4, min(7, 2.5 + r1 * 0.12))))  # readable at r=4 too
    ax = fig.subplots()
    im = ax.imshow(grid.numpy(), vmin=0, vmax=1, cmap="viridis", origin="upper", aspect="auto",
                   extent=(0.5, r2 + 0.5, r1 + 0.5, 0.5))
    fig.colorbar(im, ax=ax, label="φ  (1 = same subspace, 0 = orthogonal)")
    ax.set(xlabel=f"j (top-j directions of {label_b}, r={r2})", ylabel=f"i (top-i of {label_a}, r={r1})", title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(fig, path)


def plot_checkpoint_sizes(sizes: dict[str, float], path: str | Path | None = None,
                          title: str = "Checkpoint size (log scale)") -> Figure:
    """Bars of bytes per checkpoint on a log axis, each labelled in MB."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    labels = list(sizes)
    bars = ax.bar(labels, [sizes[lb] for lb in labels], color=[f"C{i}" for i in range(len(labels))])
    for bar, lb in zip(bars, labels):
        ax.text(bar.get_x() + bar.get_width() / 2, sizes[lb], _human(sizes[lb], "B"), ha="center", va="bottom", fontsize=9)
    ax.set(yscale="log", ylabel="bytes", title=title)
    ax.tick_params(axis="x", labelsize=8, rotation=10)
    return _save(fig, path)


def plot_memory(result: dict, path: str | Path | None = None) -> Figure:
    """Stacked bars of the estimated peak-memory breakdown for LoRA vs full (from ``toolkit.memory.compare_memory``)."""
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    parts = {"weights": "weights", "gradients": "gradients", "optimizer": "AdamW states (2 × fp32)",
             "activations": "activations + other (remainder)"}
    methods = [m for m in ("lora", "full") if m in result]
    bottom = [0.0] * len(methods)
    names = {"lora": "LoRA", "full": "full fine-tuning"}
    for i, (part, label) in enumerate(parts.items()):
        vals = [max(0.0, result[m]["breakdown"][part]) / _MB for m in methods]
        ax.bar([names[m] for m in methods], vals, bottom=bottom, label=label, color=f"C{i}")
        bottom = [b + v for b, v in zip(bottom, vals)]
    for i, m in enumerate(methods):
        ax.text(i, bottom[i], f"{result[m]['breakdown']['measured'] / _MB:,.0f} MiB measured", ha="center", va="bottom", fontsize=8)
    s = result["settings"]
    ax.set(ylabel="MiB (peak − memory before loading)", ylim=(0, max(bottom) * 1.15),
           title=f"Peak training memory ({result['lora']['memory_kind']}), batch {s['batch_size']}×{s['seq_len']} tokens")
    ax.legend(fontsize=8)
    return _save(fig, path)
