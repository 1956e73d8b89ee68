"""Decisions per second of LLMPlayer on this machine: constrained candidate scoring vs free-text
generate-and-parse, on the same spots, in the same run.

    .venv/bin/python bench/decision_speed.py              # SmolLM2-135M (default), 40 heads-up spots
    .venv/bin/python bench/decision_speed.py --quick      # 12 spots
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="model.name (default, tiny, HF name or path)")
    parser.add_argument("--spots", type=int, default=40, help="heads-up spots to decide")
    parser.add_argument("--quick", action="store_true", help="12 spots")
    args = parser.parse_args()
    n = 12 if args.quick else args.spots

    from toolkit.load import load_model
    from toolkit.poker.player import LLMPlayer
    from toolkit.poker.spots import SpotSettings, generate_spots
    from toolkit.settings import ModelSettings, build

    spots = [s for s, _ in generate_spots(build(SpotSettings, {"seed": 11, "n_spots": n, "players": 2}), progress=False)]
    model, tokenizer = load_model(ModelSettings(name=args.model))
    system = "You are a poker player. Answer with one action."
    rows = {}
    for mode in ("score", "generate"):
        player = LLMPlayer(model, tokenizer, mode=mode, system_prompt=system)
        player.decide(spots[0])  # warm-up, not timed
        player.decisions.clear()
        start = time.perf_counter()
        for spot in spots:
            _, decision = player.decide(spot)
            player.decisions.append(decision)
        seconds = time.perf_counter() - start
        stats = player.stats()
        rows[mode] = {"decisions_per_s": len(spots) / seconds, "legal": 1 - stats["unparseable_or_illegal_rate"],
                      "unparseable": stats["unparseable"], "illegal": stats["illegal"]}
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    print(f"machine: {cpu}, {os.cpu_count()} cores; model {args.model}; {len(spots)} heads-up spots")
    print(f"{'mode':10} {'decisions/s':>12} {'legal':>8} {'unparseable':>12} {'illegal':>8}")
    for mode, r in rows.items():
        print(f"{mode:10} {r['decisions_per_s']:12.2f} {100 * r['legal']:7.1f}% {r['unparseable']:12d} {r['illegal']:8d}")
    print(f"constrained / generate speed ratio: x{rows['score']['decisions_per_s'] / rows['generate']['decisions_per_s']:.2f}")


if __name__ == "__main__":
    main()
