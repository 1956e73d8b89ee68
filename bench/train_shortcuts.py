"""Training-step speed of the two shortcuts the demo preset uses, side by side in one run.

Trains the embedded SmolLM2-135M-Instruct (LoRA r=16 on all 7 projections, batch 8, the demo's settings)
on the same poker rows, each variant in a fresh process, and prints the median seconds per step after
the first 4 (compile and warm-up) with the ratio to full rows:

  full rows                         every row runs all its tokens (train.shared_prefix=false)
  shared prefix                     the tokens every row of a batch starts with run once per batch
  shared prefix + last 15 blocks    ... and LoRA only on the last 15 of 30 decoder blocks (lora.last_layers=15),
                                    so the backward pass stops half-way down

It also prints each variant's loss after the same steps: the shared prefix must give the full rows' loss
(same maths); last_layers trains fewer weights, so its loss may differ.

    python bench/train_shortcuts.py            # 16 steps per variant, ~9 min on 2 cores
    python bench/train_shortcuts.py --steps 10 # quicker, noisier
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ROOT, cpu_name, table  # noqa: E402

VARIANTS = [  # (label, --set overrides)
    ("full rows, all 30 blocks", ["train.shared_prefix=false", "lora.last_layers=0"]),
    ("shared prefix, all 30 blocks", ["train.shared_prefix=true", "lora.last_layers=0"]),
    ("shared prefix + last 15 blocks (demo preset)", ["train.shared_prefix=true", "lora.last_layers=15"]),
]


def worker(steps: int, overrides: list[str]) -> dict:
    import statistics
    import tempfile
    import time

    from transformers import TrainerCallback

    from toolkit import pipeline
    from toolkit.data import prepare
    from toolkit.load import load_model
    from toolkit.lora import attach_lora
    from toolkit.train import train

    out = tempfile.mkdtemp()
    s = pipeline.load_settings(ROOT / "configs" / "demo.yaml", [f"runs_dir={out}", f"train.max_steps={steps}",
                                                               "train.logging_steps=1", "train.eval_steps=0", *overrides])
    model, tokenizer = load_model(s.model)
    model = attach_lora(model, s.lora)
    rows = [json.loads(line) for line in open(ROOT / "data" / "poker" / "train.jsonl")]
    data, _ = prepare(rows, tokenizer, s.model.max_seq_length, system_prompt=s.data.system_prompt)
    ends: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *args, **kwargs):
            ends.append(time.perf_counter())

    result = train(model, tokenizer, data, s.train, None, s.model.max_seq_length, callbacks=[Clock()])
    gaps = [b - a for a, b in zip(ends, ends[1:])][3:]
    trainer = model.toolkit_trainer
    return {"step_s": statistics.median(gaps), "loss": result.train_loss[-1][1], "tokens": result.trained_tokens,
            "shared_tokens": getattr(trainer, "shared_tokens", 0),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16, help="optimizer steps per variant (the first 4 are not timed)")
    parser.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print("RESULT " + json.dumps(worker(args.steps, args.worker)))
        return
    print(f"machine: {cpu_name()}; SmolLM2-135M-Instruct, LoRA r=16, batch 8, {args.steps} steps on data/poker/train.jsonl")
    rows, base = [], None
    for label, overrides in VARIANTS:
        done = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--worker", *overrides],
                              capture_output=True, text=True, cwd=ROOT)
        line = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
        if done.returncode or not line:
            rows.append([label, "failed: " + done.stderr.strip().splitlines()[-1][:80], "", "", "", ""])
            continue
        r = json.loads(line[0][7:])
        base = base or r["step_s"]
        rows.append([label, f"{r['step_s']:.2f}", f"{base / r['step_s']:.2f}x", f"{r['loss']:.4f}",
                     f"{r['shared_tokens']:,} of {r['tokens']:,}", f"{r['trainable']:,}"])
        print(f"  done: {label}: {r['step_s']:.2f} s/step", flush=True)
    print(table(rows, ["variant", "median s/step", "speed vs full rows", f"loss at step {args.steps}",
                       "prompt tokens not recomputed", "trainable params"]))


if __name__ == "__main__":
    main()
