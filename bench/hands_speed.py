"""Arena speed with bots only (engine overhead): hands/s with 1 vs 2 worker processes, and their ratio.

    .venv/bin/python bench/hands_speed.py --quick   # ~1 minute
    .venv/bin/python bench/hands_speed.py           # 4x the hands, steadier numbers

Bots are PyPokerEngine's FishPlayer and RandomPlayer, so nearly all the time is the engine itself
(plus the shim's patches and the arena's logging). Worker start-up is included in the timing.
1 and 2 workers are timed alternately, 3 times each, and the best of each is kept, so that other
jobs sharing the machine disturb the ratio as little as possible.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import cpu_name  # noqa: E402

from examples.players.fish_player import FishPlayer  # noqa: E402
from examples.players.random_player import RandomPlayer  # noqa: E402

from toolkit.poker.arena import ArenaSettings, play_match  # noqa: E402


def machine() -> str:
    model = cpu_name()
    load = " / load average %.1f %.1f %.1f" % os.getloadavg() if hasattr(os, "getloadavg") else ""
    return f"{model}, {os.cpu_count()} logical cores, Python {platform.python_version()}{load}"


def _spin(_: int) -> int:
    return sum(range(2_000_000))


def available_parallelism() -> float:
    """Speed-up of a pure-Python loop with 2 processes right now: ~2 on an idle 2-core machine, less
    when other jobs share the cores. Read the arena ratios against this number."""
    start = time.perf_counter()
    list(map(_spin, range(6)))
    one = time.perf_counter() - start
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(_spin, range(6))
    return one / (time.perf_counter() - start)


def tables(seats: int) -> dict:
    players = {"fish": FishPlayer}
    players.update({f"random{i}": RandomPlayer for i in range(1, seats)})
    return players


def hands_per_second(seats: int, hands: int, workers: int) -> float:
    start = time.perf_counter()
    play_match(tables(seats), ArenaSettings(hands=hands, players=seats, workers=workers, seed=1, progress=False))
    return hands / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about one minute in total")
    args = parser.parse_args()
    scale = 1 if args.quick else 4
    print(f"machine: {machine()}")
    print(f"reference: a pure-Python loop runs {available_parallelism():.2f}x faster on 2 processes than on 1 right now")
    hands_per_second(2, 20, 1)  # warm-up: imports and first-call costs stay out of the timings
    print(f"{'table':<10}{'hands':>7}{'1 worker':>12}{'2 workers':>12}{'ratio':>8}")
    for seats, hands in ((2, 2500 * scale), (6, 1200 * scale)):
        one = two = 0.0
        for _ in range(3):
            one = max(one, hands_per_second(seats, hands, 1))
            two = max(two, hands_per_second(seats, hands, 2))
        label = "heads-up" if seats == 2 else f"{seats}-max"
        print(f"{label:<10}{hands:>7}{one:>10.0f}/s{two:>10.0f}/s{two / one:>7.2f}x")


if __name__ == "__main__":
    main()
