"""Equity evaluations per second: the teacher's eval7 path vs PyPokerEngine's estimate_hole_card_win_rate.

Both estimate the same number (hero's chance to win against random hands) with the same number of
Monte Carlo deals, on the same spots, in the same run. Prints the machine, both rates and the ratio.

    python bench/equity_speed.py --quick   # ~1 min on 2 cores
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import cpu_name  # noqa: E402

from pypokerengine.utils.card_utils import estimate_hole_card_win_rate, gen_cards  # noqa: E402

from toolkit.poker.cards import DECK, to_engine  # noqa: E402
from toolkit.poker.teacher import WIDE, equity, hand_range  # noqa: E402


def make_spots(n: int, seed: int) -> list[tuple[tuple[str, ...], tuple[str, ...], int]]:
    """(hole, board, players) deals: boards of 0/3/4/5 cards, 2-3 players."""
    rng = random.Random(seed)
    spots = []
    for i in range(n):
        cards = rng.sample(DECK, 7)
        spots.append((tuple(cards[:2]), tuple(cards[2:2 + (0, 3, 4, 5)[i % 4]]), 2 + i % 2))
    return spots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer spots (~1 min)")
    parser.add_argument("--sims", type=int, default=1000, help="Monte Carlo deals per evaluation (HonestPlayer uses 1000)")
    args = parser.parse_args()
    n_ppe = 40 if args.quick else 200
    n_e7 = 2000 if args.quick else 10000
    print(f"machine: {cpu_name()}, {os.cpu_count()} logical cores, Python {platform.python_version()}")
    hand_range(WIDE)  # parse the range once, outside the timing (the teacher caches it too)

    spots = make_spots(n_e7, seed=0)
    t = time.perf_counter()
    e7 = [equity(h, b, [WIDE] * (p - 1), trials=args.sims, seed=i + 1) for i, (h, b, p) in enumerate(spots)]
    e7_rate = len(spots) / (time.perf_counter() - t)

    saved = random.getstate()
    random.seed(0)
    t = time.perf_counter()
    ppe = [estimate_hole_card_win_rate(args.sims, p, gen_cards([to_engine(c) for c in h]), gen_cards([to_engine(c) for c in b]))
           for h, b, p in spots[:n_ppe]]
    ppe_rate = n_ppe / (time.perf_counter() - t)
    random.setstate(saved)

    gap = sum(abs(a - b) for a, b in zip(e7, ppe)) / n_ppe
    print(f"{args.sims} deals per evaluation; spots: {n_e7} (eval7), {n_ppe} (PyPokerEngine), boards 0/3/4/5 cards, 2-3 players")
    print(f"{'eval7 (teacher)':<22}{e7_rate:>12.1f} evaluations/s")
    print(f"{'PyPokerEngine':<22}{ppe_rate:>12.1f} evaluations/s")
    print(f"ratio eval7 / PyPokerEngine: {e7_rate / ppe_rate:.0f}x  (target >= 100x)")
    print(f"mean |difference| of the estimates on the shared spots: {gap:.3f} "
          "(PyPokerEngine counts ties as wins and multiway as one joint deal; eval7 path counts ties half)")


if __name__ == "__main__":
    main()
