"""Arena plots: cumulative winnings, bb/100 ± 95% CI bars, action mix, and base-vs-fine-tuned.

Every function returns a matplotlib Figure (displayed by a notebook when it is a cell's last value)
and saves it as PNG when ``path`` is given. Only the object-oriented API is used, so it runs under the
headless Agg backend and keeps no global pyplot state.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .arena import MatchResult
from .metrics import ACTION_KINDS, Estimate, deal_units, t_quantile

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def _finish(fig: Figure, path: str | Path | None) -> Figure:
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig


def cumulative(match: MatchResult, player: str, level: float = 0.95, path: str | Path | None = None) -> Figure:
    """Cumulative bb won by ``player`` over the match, per deal, with the band a break-even player
    would stay inside (± t · s · sqrt(k) after k deals, s = the per-deal standard deviation)."""
    units = deal_units(match, player) * len(match.positions)  # bb won per deal (all rotations)
    hands = np.arange(1, len(units) + 1) * len(match.positions)
    total = np.cumsum(units)
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    if len(units) > 1:
        band = t_quantile(level, len(units) - 1) * units.std(ddof=1) * np.sqrt(np.arange(1, len(units) + 1))
        ax.fill_between(hands, -band, band, color="grey", alpha=0.25, label=f"{level:.0%} range if break-even")
        ax.plot(hands, hands * units.mean() / len(match.positions), "--", color=COLORS[0], lw=1,
                label=f"average: {100 * units.mean() / len(match.positions):+.1f} bb/100")
    ax.plot(hands, total, color=COLORS[0], lw=2, label=f"{player}: {total[-1]:+.1f} bb")
    ax.axhline(0, color="black", lw=0.8)
    ax.set(xlabel="hands played", ylabel="cumulative winnings (bb)",
           title=f"{player} vs {' + '.join(p for p in match.players if p != player)} (duplicate, {len(hands) and hands[-1]} hands)")
    ax.legend(loc="best", fontsize=9)
    ax.grid(alpha=0.3)
    return _finish(fig, path)


def _bars(ax, labels: list[str], series: dict[str, dict[str, Estimate]]) -> None:
    """Grouped bb/100 bars with CI whiskers: one group per label, one bar per series."""
    x = np.arange(len(labels))
    width = 0.8 / len(series)
    for k, (name, estimates) in enumerate(series.items()):
        values = [estimates[l].value if l in estimates else np.nan for l in labels]
        errors = [(estimates[l].half_width or 0.0) if l in estimates else 0.0 for l in labels]
        bars = ax.bar(x + (k - (len(series) - 1) / 2) * width, values, width, yerr=errors, capsize=4,
                      color=COLORS[k % len(COLORS)], label=name)
        ax.bar_label(bars, labels=[f"{v:+.0f}" if not np.isnan(v) else "" for v in values], padding=2, fontsize=8)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, labels)
    ax.set_ylabel("win rate (bb/100)")
    ax.grid(axis="y", alpha=0.3)


def bb100_bars(estimates: dict[str, Estimate], title: str = "Win rate by opponent", path: str | Path | None = None) -> Figure:
    """bb/100 ± CI per opponent (e.g. ``metrics.by_opponent(matches, "llm")``) or per seat."""
    fig = Figure(figsize=(max(5, 1.2 * len(estimates) + 2), 4))
    ax = fig.add_subplot()
    _bars(ax, list(estimates), {"": estimates})
    ax.set_title(f"{title} (bars: 95% CI)")
    return _finish(fig, path)


def action_mix(summary: dict, path: str | Path | None = None) -> Figure:
    """Stacked share of fold/check/call/raise/illegal decisions per player, from ``metrics.summarize``."""
    players = list(summary["players"])
    fig = Figure(figsize=(max(5, 1.1 * len(players) + 2), 4))
    ax = fig.add_subplot()
    bottom = np.zeros(len(players))
    for k, kind in enumerate(ACTION_KINDS):
        share = np.array([summary["players"][p]["action_share"][kind] for p in players])
        ax.bar(players, share, bottom=bottom, color=COLORS[k], label=kind)
        bottom += share
    ax.set(ylabel="share of decisions", ylim=(0, 1), title=f"Action mix ({summary['hands']} hands)")
    ax.legend(loc="upper left", bbox_to_anchor=(1, 1), fontsize=9)
    return _finish(fig, path)


def compare(before: dict[str, Estimate], after: dict[str, Estimate], labels: tuple[str, str] = ("base", "fine-tuned"),
            title: str = "Win rate by opponent", path: str | Path | None = None) -> Figure:
    """Two players' bb/100 ± CI side by side per opponent, e.g. base vs fine-tuned model."""
    opponents = list(dict.fromkeys([*before, *after]))
    fig = Figure(figsize=(max(6, 1.6 * len(opponents) + 2), 4))
    ax = fig.add_subplot()
    _bars(ax, opponents, {labels[0]: before, labels[1]: after})
    ax.set_title(f"{title}: {labels[0]} vs {labels[1]} (bars: 95% CI)")
    ax.legend(fontsize=9)
    return _finish(fig, path)
