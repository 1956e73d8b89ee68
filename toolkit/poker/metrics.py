"""Match statistics: bb/100 with a 95% confidence interval and p-value, plus playing-style numbers.

Win rate
    bb/100 = 100 · mean over hands of the player's result in big blinds.

    The hands of one deal are NOT independent: in duplicate format they replay the same cards with the
    seats rotated, which is the point (the luck of the cards cancels). So the unit of variance is the
    deal: u_d = the player's mean result per hand over the rotations of deal d. The u_d are i.i.d.
    (independent decks), and bb/100 = 100 · mean(u). With D deals and sample standard deviation s,

        95% CI = 100 · (mean(u) ± t_{0.975, D-1} · s / sqrt(D))

    and the p-value of "this player neither wins nor loses" is the two-sided one-sample t test on u.
    Student's t is computed here (no scipy) from the regularised incomplete beta function.

Style (from the arena's per-decision log; "check" = calling zero more chips)
    VPIP  share of hands with a voluntary preflop call or raise (a big blind's check does not count)
    PFR   share of hands with a preflop raise
    AF    aggression factor: postflop raises (bets included) / postflop calls; None with no calls
    action_share  fold / check / call / raise / illegal share of all decisions
    illegal  decisions that were not one of the offered valid_actions (the engine folded them)
    forced   decisions the player itself reports it forced (its ``forced_decisions`` counter)
    decisions_per_second  decisions / time spent inside the player's declare_action

Everything returned is plain floats, ints, dicts and lists: ``json.dumps(summarize(match))`` works.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from .arena import STREETS, MatchResult

ACTION_KINDS = ["fold", "check", "call", "raise", "illegal"]


# --------------------------------------------------------------------------- Student's t, no scipy
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz, as in Numerical Recipes 6.4)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for aa in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                   -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_p_value(t: float, df: int) -> float:
    """Two-sided p-value P(|T| >= |t|) for Student's t with ``df`` degrees of freedom."""
    return _betainc(df / 2.0, 0.5, df / (df + t * t))


@lru_cache(maxsize=None)
def t_quantile(level: float, df: int) -> float:
    """t such that P(|T| <= t) = level (two-sided), e.g. t_quantile(0.95, 10) = 2.228; by bisection."""
    low, high = 0.0, 1e7
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if t_p_value(mid, df) > 1 - level else (low, mid)
    return (low + high) / 2


# --------------------------------------------------------------------------- estimates
@dataclass
class Estimate:
    value: float  # the mean (bb/100 for win rates)
    low: float | None  # lower end of the confidence interval; None with fewer than 2 units
    high: float | None  # upper end
    half_width: float | None  # t · s / sqrt(n)
    p_value: float | None  # two-sided t test of "the true mean is 0"
    n: int  # number of i.i.d. units the interval is built from
    unit: str  # what one unit is, e.g. "deal (2 hands, duplicate)"


def mean_ci(samples, level: float = 0.95, scale: float = 1.0, unit: str = "sample") -> Estimate:
    """Mean of i.i.d. ``samples`` with a Student-t confidence interval, all multiplied by ``scale``."""
    x = np.asarray(samples, dtype=float) * scale
    n = len(x)
    if n == 0:
        raise ValueError("samples is empty: play at least one hand before computing statistics")
    mean = float(x.mean())
    if n < 2:
        return Estimate(mean, None, None, None, None, n, unit)
    se = float(x.std(ddof=1)) / math.sqrt(n)
    half = t_quantile(level, n - 1) * se
    p = (1.0 if mean == 0 else 0.0) if se == 0 else t_p_value(mean / se, n - 1)
    return Estimate(mean, mean - half, mean + half, half, p, n, unit)


def deal_units(match: MatchResult, player: str) -> np.ndarray:
    """Per deal, the player's mean result per hand in bb over that deal's rotations (the i.i.d. unit)."""
    totals: dict[int, list[float]] = {}
    for hand in match.hands:
        if player in hand.delta_bb:
            totals.setdefault(hand.deal, []).append(hand.delta_bb[player])
    if not totals:
        raise ValueError(f"player {player!r} is not in this match; players are {match.players}")
    # Results are chips / big blind as floats; rounding the deal total to 1e-9 bb keeps an exact chip
    # cancellation (e.g. a bot against copies of itself) exactly 0 instead of 2e-15.
    return np.array([round(math.fsum(v), 9) / len(v) for _, v in sorted(totals.items())])


def bb_per_100(match: MatchResult, player: str, level: float = 0.95) -> Estimate:
    rotations = len(match.positions)
    return mean_ci(deal_units(match, player), level, 100.0, f"deal ({rotations} hands, duplicate)")


def bb_per_100_by_seat(match: MatchResult, player: str, level: float = 0.95) -> dict[str, Estimate]:
    """bb/100 from each seat. A player sits in a seat once per deal, so here single hands are the units
    (no duplicate variance reduction: expect much wider intervals than ``bb_per_100``)."""
    by_seat: dict[str, list[float]] = {pos: [] for pos in match.positions}
    for hand in match.hands:
        by_seat[match.positions[hand.seats.index(player)]].append(hand.delta_bb[player])
    return {pos: mean_ci(v, level, 100.0, "hand") for pos, v in by_seat.items() if v}


def by_opponent(matches: list[MatchResult], hero: str, level: float = 0.95) -> dict[str, Estimate]:
    """The hero's bb/100 ± CI in each match, keyed by the other player(s) at the table."""
    return {" + ".join(p for p in m.players if p != hero): bb_per_100(m, hero, level) for m in matches if hero in m.players}


# --------------------------------------------------------------------------- style
def _kind(text: str) -> str:
    return text.split(" ", 1)[0]


def style(match: MatchResult, player: str) -> dict:
    """VPIP, PFR, AF, action shares, illegal/forced counts and decision speed (see module docstring)."""
    counts = dict.fromkeys(ACTION_KINDS, 0)
    vpip = pfr = post_raises = post_calls = forced = 0
    seconds = 0.0
    hands = [h for h in match.hands if player in h.actions]
    for hand in hands:
        streets = hand.actions[player]
        preflop = [_kind(a) for a in streets["preflop"]]
        vpip += any(k in ("call", "raise") for k in preflop)
        pfr += "raise" in preflop
        for street in STREETS:
            for text in streets[street]:
                counts[_kind(text)] += 1
                if street != "preflop":
                    post_raises += _kind(text) == "raise"
                    post_calls += _kind(text) == "call"
        seconds += hand.seconds[player]
        forced += hand.forced[player]
    decisions = sum(counts.values())
    n = max(len(hands), 1)
    return {
        "hands": len(hands),
        "vpip": vpip / n,
        "pfr": pfr / n,
        "af": post_raises / post_calls if post_calls else None,
        "action_share": {k: v / max(decisions, 1) for k, v in counts.items()},
        "decisions": decisions,
        "illegal": counts["illegal"],
        "forced": forced,
        "decisions_per_second": decisions / seconds if seconds > 0 else None,
    }


def summarize(match: MatchResult, level: float = 0.95) -> dict:
    """Everything above for every player of a match, JSON-serialisable."""
    return {
        "hands": len(match.hands),
        "deals": len({h.deal for h in match.hands}),
        "level": level,
        "players": {p: {"bb100": asdict(bb_per_100(match, p, level)),
                        "by_seat": {pos: asdict(e) for pos, e in bb_per_100_by_seat(match, p, level).items()},
                        **style(match, p)} for p in match.players},
    }
