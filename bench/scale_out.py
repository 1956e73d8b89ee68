"""Scale-out path: the same `train` command under torchrun (DDP, gloo on CPU), and arena matches spread
over worker processes. Prints side-by-side figures measured in this run.

    .venv/bin/python bench/scale_out.py            # tiny model (about 2 minutes)
    .venv/bin/python bench/scale_out.py --model default --steps 6
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def machine() -> str:
    from bench._common import cpu_name

    return f"{cpu_name()}, {os.cpu_count()} cores"


def train_json(cmd: list[str], env: dict) -> tuple[dict, float]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=1800)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr[-3000:]}")
    # each rank prints the TrainResult JSON; the first one is enough (ranks hold the same model)
    block = re.search(r"^\{\n.*?^\}$", done.stdout, re.S | re.M)
    return json.loads(block.group(0)), seconds


def ddp(model: str, steps: int, runs: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")  # one thread per rank: 2 ranks use the 2 cores
    common = ["-m", "toolkit", "train", "--config", "configs/smoke.yaml", "--set", f"model.name={model}",
              "--set", f"train.max_steps={steps}", "--set", f"runs_dir={runs}", "--set", "train.eval_steps=0"]
    one, t1 = train_json([sys.executable, *common, "--set", "name=one"], dict(os.environ))
    two, t2 = train_json([str(Path(sys.executable).parent / "torchrun"), "--nproc_per_node", "2", *common,
                          "--set", "name=two"], env)
    return {"single_process": {"tokens_per_s": one["tokens_per_s"], "trained_tokens": one["trained_tokens"], "wall_s": t1},
            "torchrun_2_ranks": {"tokens_per_s": two["tokens_per_s"], "trained_tokens": two["trained_tokens"], "wall_s": t2},
            "tokens_ratio": two["trained_tokens"] / one["trained_tokens"],
            "adapter_written_once": (runs / "two" / "adapter" / "adapter_model.safetensors").is_file()}


def arena(hands: int) -> dict:
    from examples.players.fish_player import FishPlayer

    from toolkit.poker.arena import ArenaSettings, play_match
    from toolkit.poker.teacher import TeacherPlayer

    out = {}
    for workers in (1, 2):
        start = time.perf_counter()
        play_match({"teacher": TeacherPlayer, "fish": FishPlayer},
                   ArenaSettings(hands=hands, seed=0, workers=workers, progress=False))
        out[f"workers_{workers}"] = hands / (time.perf_counter() - start)
    out["speedup"] = out["workers_2"] / out["workers_1"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="model.name for the DDP run (tiny or default)")
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per training run")
    parser.add_argument("--hands", type=int, default=400, help="hands per arena match")
    args = parser.parse_args()
    runs = Path(tempfile.mkdtemp(prefix="scale-out-"))
    try:
        result = {"machine": machine(), "ddp": ddp(args.model, args.steps, runs), "arena_hands_per_s": arena(args.hands)}
    finally:
        shutil.rmtree(runs, ignore_errors=True)
    d, a = result["ddp"], result["arena_hands_per_s"]
    print(f"machine: {result['machine']}")
    print(f"DDP ({args.model}, {args.steps} steps, batch per rank as in the preset):")
    print(f"  1 process : {d['single_process']['trained_tokens']:>7} tokens, {d['single_process']['tokens_per_s']:.0f} tokens/s")
    print(f"  torchrun 2: {d['torchrun_2_ranks']['trained_tokens']:>7} tokens, {d['torchrun_2_ranks']['tokens_per_s']:.0f} tokens/s"
          f"  (x{d['tokens_ratio']:.2f} tokens per step: each rank takes its own batch)")
    print(f"  adapter written once by rank 0: {d['adapter_written_once']}")
    print(f"arena teacher vs fish, {args.hands} hands: 1 worker {a['workers_1']:.0f} hands/s, "
          f"2 workers {a['workers_2']:.0f} hands/s, speed-up x{a['speedup']:.2f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
