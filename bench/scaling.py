"""How LoRA training cost grows: tokens/s and peak memory vs sequence length and vs LoRA rank.

The toolkit's own path (bench/train_speed.py worker (a)) on SmolLM2-135M, each point in a fresh process.
Rows are poker prompts packed into one user turn and cut to just under the sequence length, so every
row of a run has (nearly) the same length and no padding; the answer is a short poker action, trained
with the toolkit's default completion-only loss.

    python bench/scaling.py --quick     # 3 points, ~2 min on 2 cores
    python bench/scaling.py             # writes bench/scaling.png (~6 min on 2 cores)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ROOT, cpu_name, describe_machine, run_worker, table  # noqa: E402

WORKER = ROOT / "bench" / "train_speed.py"
POKER = ROOT / "data" / "poker" / "train.jsonl"
ACTIONS = ["fold", "call", "check", "raise 2.5", "bet 4"]


def make_rows(tokenizer, length: int, n: int) -> list[dict]:
    """``n`` prompt/completion rows whose chat-templated length is within 8 tokens under ``length``."""
    from toolkit.data import encode, to_prompt_completion

    text = "\n\n".join(json.loads(line)["instruction"] for line in POKER.read_text().splitlines())
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    rows = []
    for i in range(n):
        completion = ACTIONS[i % len(ACTIONS)]
        body = max(8, length - 40)  # room for the chat template's system turn and tags
        while True:
            start = (i * 97) % max(1, len(ids) - body)
            prompt = tokenizer.decode(ids[start:start + body])
            full = encode(tokenizer, to_prompt_completion({"prompt": prompt, "completion": completion}))["full_length"]
            if full <= length or body <= 8:
                break
            body -= max(1, full - length + 2)
        if full < length - 8:  # template overhead smaller than guessed: lengthen once
            body += length - 4 - full
            prompt = tokenizer.decode(ids[start:start + body])
        rows.append({"prompt": prompt, "completion": completion})
    return rows


def point(args, folder: Path, tokenizer, length: int, rank: int) -> dict:
    data = folder / f"rows-{length}.jsonl"
    if not data.exists():
        data.write_text("".join(json.dumps(r) + "\n" for r in make_rows(tokenizer, length, 64)))
    spec = {
        "path": "toolkit", "model": "default", "device": args.device, "dtype": "auto", "max_seq_length": length,
        "batch_size": args.batch_size, "steps": args.steps, "lr": 2e-4, "warmup": 1, "seed": 3407, "rank": rank,
        "alpha": float(rank), "gradient_checkpointing": False, "group_by_length": True, "completion_only_loss": True,
        "data": str(data), "skip": 1, "threads": None,
    }
    result = run_worker(WORKER, spec)
    if "error" in result:
        print(f"  !! L={length} r={rank} failed:\n{result['error']}")
        return {}
    result.update(length=length, rank=rank, mean_length=result["tokens"] / max(1, args.steps * args.batch_size))
    print(f"  L={length:5} r={rank:4}: {result['best_tokens_per_s']:.0f} tok/s (fastest step), peak {result['peak_mb']:.0f} MB "
          f"(+{result['peak_mb'] - result['rss_start_mb']:.0f} MB over the RSS at train start), "
          f"mean row {result['mean_length']:.0f} tokens", flush=True)
    return result


def plot(seq: list[dict], ranks: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, points, key, label in ((axes[0], seq, "length", "sequence length (tokens), LoRA r=16"),
                                   (axes[1], ranks, "rank", "LoRA rank r (alpha = r), sequence length 256")):
        points = [p for p in points if p]
        if not points:
            continue
        xs = [p[key] for p in points]
        ax.plot(xs, [p["best_tokens_per_s"] for p in points], "o-", color="tab:blue", label="tokens/s")
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_xlabel(label)
        ax.set_ylabel("trained tokens/s (fastest step)", color="tab:blue")
        ax.set_ylim(bottom=0)
        mem = ax.twinx()
        mem.plot(xs, [p["peak_mb"] - p["rss_start_mb"] for p in points], "s--", color="tab:red",
                 label="peak RSS over train start")
        mem.set_ylabel("peak RSS growth during training (MB)", color="tab:red")
        mem.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", help="LoRA ranks at length 256 (default 8 16 128)")
    parser.add_argument("--quick", action="store_true", help="3 points, 3 steps each")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=5, help="optimizer steps per point (the first is left out)")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "scaling.png")
    args = parser.parse_args()
    lengths = [128, 512] if args.quick else [128, 256, 512, 1024]
    ranks = [64] if args.quick else (args.ranks or [8, 16, 128])
    from transformers import AutoTokenizer

    from toolkit.load import resolve_model_path

    print(describe_machine(args.device))
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("default"))
    folder = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    print(f"toolkit path, SmolLM2-135M, batch {args.batch_size}, {args.steps} steps per point (rate = fastest step after the first: robust to other jobs on the machine):")
    seq = [point(args, folder, tokenizer, length, 16) for length in lengths]
    by_rank = [next((p for p in seq if p and p["length"] == 256 and r == 16), None) or point(args, folder, tokenizer, 256, r)
               for r in ranks]
    rows = []
    for p in [p for p in seq + by_rank if p]:
        rows.append([p["length"], p["rank"], f"{p['mean_length']:.0f}", f"{p['best_tokens_per_s']:.0f}",
                     f"{p['peak_mb']:.0f}", f"{p['peak_mb'] - p['rss_start_mb']:.0f}", f"{p['counts']['lora'] / 1e6:.2f}M"])
    print(table(rows, ["max_seq_length", "rank", "tokens/row", "tokens/s", "peak RSS MB", "growth MB", "LoRA params"]))
    ok = [p for p in seq if p]
    if len(ok) >= 2:
        lo, hi = ok[0], ok[-1]
        print(f"sequence {lo['length']} -> {hi['length']} ({hi['length'] / lo['length']:.0f}x): tokens/s x"
              f"{hi['best_tokens_per_s'] / lo['best_tokens_per_s']:.2f}, time per row x"
              f"{(hi['mean_length'] / hi['best_tokens_per_s']) / (lo['mean_length'] / lo['best_tokens_per_s']):.1f}, "
              f"memory growth x{(hi['peak_mb'] - hi['rss_start_mb']) / max(1, lo['peak_mb'] - lo['rss_start_mb']):.1f}")
    ok = [p for p in by_rank if p]
    if len(ok) >= 2:
        lo, hi = ok[0], ok[-1]
        print(f"rank {lo['rank']} -> {hi['rank']}: tokens/s x{hi['best_tokens_per_s'] / lo['best_tokens_per_s']:.2f}, "
              f"LoRA params x{hi['counts']['lora'] / lo['counts']['lora']:.0f}, peak RSS {lo['peak_mb']:.0f} -> {hi['peak_mb']:.0f} MB")
    plot(seq, by_rank, args.out, f"SmolLM2-135M LoRA training (toolkit path, batch {args.batch_size}) on "
                                 f"{cpu_name()}, {os.cpu_count()} cores ({args.device})")


if __name__ == "__main__":
    main()
