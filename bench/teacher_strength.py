"""How strongly the teacher beats PyPokerEngine's bots heads-up: bb/100 ± 95% CI and p, with the machine.

Each line is one duplicate heads-up match (every deal replayed with the seats swapped) of the teacher
against RandomPlayer (folds 1/3, raises a random amount up to all-in 2/3), FishPlayer (always calls)
and QuickHonestPlayer(100) (calls when its Monte Carlo win rate beats 1/2, else folds).

    python bench/teacher_strength.py             # 400 hands per match, ~2-4 min on 2 cores
    python bench/teacher_strength.py --hands 1000 --seed 1
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import cpu_name  # noqa: E402

from examples.players.fish_player import FishPlayer  # noqa: E402
from examples.players.random_player import RandomPlayer  # noqa: E402

from toolkit.poker import metrics  # noqa: E402
from toolkit.poker.arena import ArenaSettings, QuickHonestPlayer, play_match  # noqa: E402
from toolkit.poker.teacher import TeacherPlayer, TeacherPolicy  # noqa: E402

OPPONENTS = {"random": RandomPlayer, "fish": FishPlayer, "honest": lambda: QuickHonestPlayer(100)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hands", type=int, default=400, help="hands per match (even: each deal is played twice)")
    parser.add_argument("--seed", type=int, default=0, help="deck seed of every match")
    parser.add_argument("--trials", type=int, default=2000, help="teacher Monte Carlo deals per opponent range")
    parser.add_argument("--workers", type=int, default=2, help="processes per match")
    parser.add_argument("--only", nargs="*", default=list(OPPONENTS), choices=list(OPPONENTS), help="opponents to play")
    args = parser.parse_args()
    print(f"machine: {cpu_name()}, {os.cpu_count()} logical cores, Python {platform.python_version()}")
    print(f"teacher (trials={args.trials}) heads-up duplicate, {args.hands} hands per match, seed {args.seed}")
    print(f"{'opponent':<8} {'bb/100':>8} {'95% CI':>20} {'p':>9} {'VPIP':>5} {'PFR':>5} {'fold%':>6} {'s':>6}")
    for name in args.only:
        teacher = lambda: TeacherPlayer(TeacherPolicy(trials=args.trials))  # noqa: E731
        settings = ArenaSettings(hands=args.hands, seed=args.seed, players=2, workers=args.workers, progress=False)
        start = time.perf_counter()
        match = play_match({"teacher": teacher, name: OPPONENTS[name]}, settings)
        seconds = time.perf_counter() - start
        win, style = metrics.bb_per_100(match, "teacher"), metrics.style(match, "teacher")
        print(f"{name:<8} {win.value:>+8.1f} {f'[{win.low:+.1f}, {win.high:+.1f}]':>20} {win.p_value:>9.2g} "
              f"{style['vpip']:>5.0%} {style['pfr']:>5.0%} {style['action_share']['fold']:>6.0%} {seconds:>6.0f}")


if __name__ == "__main__":
    main()
