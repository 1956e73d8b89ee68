"""Decisions per second of LLMPlayer on this machine: constrained candidate scoring vs free-text
generate-and-parse, on the same spots, in the same run.

The spots are the ones the model really faces at a table: first a heads-up duplicate match is played
(LLMPlayer vs the teacher) and every spot the LLM decided is recorded in order. Then the same spot
sequence is decided again by each method, timed:

  score (toolkit default)   one packed forward pass per decision (prompt rest + all legal candidates,
                            custom attention mask), reusing the KV cache of the recent prompt that
                            shares the most tokens (``PrefixCache``)
  score (two passes)        prompt pass, then the candidate batch; no cache (the first version)
  generate-and-parse        model.generate(max_new_tokens=8) then parse, as most public projects do

    .venv/bin/python bench/decision_speed.py              # SmolLM2-135M (default), 60 hands, best of 3 rounds
    .venv/bin/python bench/decision_speed.py --quick      # 8 hands, 1 round
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="model.name (default, tiny, HF name or path)")
    parser.add_argument("--hands", type=int, default=60, help="heads-up hands to record spots from (even)")
    parser.add_argument("--quick", action="store_true", help="8 hands")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds; the best round of each method counts")
    parser.add_argument("--max-new-tokens", type=int, default=8, help="generate mode's budget (an answer is 2-4 tokens)")
    args = parser.parse_args()
    hands = 8 if args.quick else args.hands
    if args.quick:
        args.repeats = 1

    import torch

    from toolkit.load import load_model
    from toolkit.poker.arena import ArenaSettings, play_match
    from toolkit.poker.player import LLMPlayer, chat_prefix_ids
    from toolkit.poker.render import render_prompt
    from toolkit.poker.teacher import TeacherPlayer
    from toolkit.settings import ModelSettings

    model, tokenizer = load_model(ModelSettings(name=args.model))
    system = "You are a poker player. Answer with one action."

    class Recorder(LLMPlayer):
        spots: list = []

        def decide(self, spot):
            Recorder.spots.append(spot)
            return super().decide(spot)

    table = Recorder(model, tokenizer, system_prompt=system)
    start = time.perf_counter()
    play_match({"llm": lambda: table, "teacher": TeacherPlayer}, ArenaSettings(hands=hands, seed=3, progress=False))
    at_table = time.perf_counter() - start
    spots = Recorder.spots
    if not spots:
        sys.exit("the LLM made no decision in these hands; play more with --hands")

    methods = {"score (toolkit default)": dict(mode="score"),
               "score (two passes)": dict(mode="score", method="batched", prefix_cache=False),
               "generate-and-parse": dict(mode="generate", max_new_tokens=args.max_new_tokens)}
    rows, best = {}, {label: float("inf") for label in methods}
    players = {label: LLMPlayer(model, tokenizer, system_prompt=system, **kwargs) for label, kwargs in methods.items()}
    for player in players.values():
        player.decide(spots[-1])  # warm-up (and the packed-mask self-check), not timed
    for _ in range(args.repeats):  # rounds interleave the methods, so a noisy neighbour hits all of them
        for label, player in players.items():
            player.decisions.clear()
            if player.cache is not None:
                player.cache.clear()
            start = time.perf_counter()
            for spot in spots:
                _, decision = player.decide(spot)
                player.decisions.append(decision)
            best[label] = min(best[label], time.perf_counter() - start)
    # One more untimed pass of the default method, counting the tokens each decision's forward pass runs.
    runs, forward = [], model.forward
    model.forward = lambda *a, **k: runs.append(k["input_ids"].shape[1]) or forward(*a, **k)
    counter = LLMPlayer(model, tokenizer, system_prompt=system)
    counter._checked = True  # no self-check passes in the count
    try:
        for spot in spots:
            counter.decide(spot)
    finally:
        model.forward = forward
    lengths = [len(chat_prefix_ids(tokenizer, render_prompt(spot), system)) for spot in spots]
    for label, player in players.items():
        stats = player.stats()
        rows[label] = {"decisions_per_s": len(spots) / best[label], "legal": 1 - stats["unparseable_or_illegal_rate"],
                       "unparseable": stats["unparseable"], "illegal": stats["illegal"],
                       "choices": [d.choice for d in player.decisions]}
    from bench._common import cpu_name

    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}; model {args.model} "
          f"({next(model.parameters()).dtype})")
    print(f"{len(spots)} spots recorded from {hands} heads-up duplicate hands vs the teacher "
          f"(played at {len(spots) / at_table:.2f} decisions/s including the engine)")
    print(f"prompt tokens per decision: median {statistics.median(lengths):.0f} ({min(lengths)}-{max(lengths)}); "
          f"tokens run by the default's one pass (uncached prompt + candidates): median {statistics.median(runs):.0f} "
          f"({min(runs)}-{max(runs)}, the first decision runs everything)")
    print(f"best of {args.repeats} interleaved rounds per method")
    print(f"{'method':26} {'decisions/s':>12} {'legal':>8} {'unparseable':>12} {'illegal':>8}")
    for label, r in rows.items():
        print(f"{label:26} {r['decisions_per_s']:12.2f} {100 * r['legal']:7.1f}% {r['unparseable']:12d} {r['illegal']:8d}")
    default, two, gen = (rows[k] for k in methods)
    same = sum(a == b for a, b in zip(default["choices"], two["choices"])) / len(spots)
    print(f"same choice, default vs two passes: {100 * same:.0f}% (bf16 rounding differs between the two)")
    print(f"constrained (default) / generate speed ratio: x{default['decisions_per_s'] / gen['decisions_per_s']:.2f}")
    print(f"two passes / generate speed ratio: x{two['decisions_per_s'] / gen['decisions_per_s']:.2f}")


if __name__ == "__main__":
    main()
