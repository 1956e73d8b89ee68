"""Spots generated and labelled per second (6-max and heads-up), with the machine it ran on.

    python bench/spots_speed.py --quick   # ~1 min on 2 cores
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

from toolkit.poker.spots import SpotSettings, generate_spots  # noqa: E402
from toolkit.settings import build  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer spots (~1 min)")
    args = parser.parse_args()
    n = 300 if args.quick else 2000
    print(f"machine: {cpu_name()}, {os.cpu_count()} logical cores, Python {platform.python_version()}")
    for players in (6, 2):
        settings = build(SpotSettings, {"n_spots": n, "players": players, "seed": 0})
        t = time.perf_counter()
        kept = generate_spots(settings, progress=False)
        dt = time.perf_counter() - t
        print(f"{players}-handed: {len(kept)} spots in {dt:.1f} s = {len(kept) / dt:.1f} spots/s "
              f"(default opponent mix, teacher_trials={settings.teacher_trials})")


if __name__ == "__main__":
    main()
