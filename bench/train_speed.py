"""LoRA training speed: the toolkit (Unsloth's path) vs plain transformers + PEFT + TRL, same run, same machine.

Both train SmolLM2-135M-Instruct with the same LoRA (r=16 on all 7 projections), data, batch, sequence
length, steps, learning-rate schedule and seed, each in a fresh process:

  (a) toolkit: ``load_model`` -> ``attach_lora`` -> ``train`` with its defaults (Unsloth's FastLanguageModel;
      on CPU its backend adds chunked cross entropy that skips the LM head on unlabeled tokens, fused AdamW,
      bf16 policy; ``train.cpu_compile`` torch.compiles the decoder layers for the training steps)
  (b) plain:   ``AutoModelForCausalLM.from_pretrained(path, dtype=...)`` + ``LoraConfig`` + TRL ``SFTTrainer``
      / ``SFTConfig``, as in the TRL docs; unsloth is never imported (checked).

It also measures this machine's matmul ceiling (bench/matmul_peak.py) and reports model FLOPs
utilisation, and with ``--sweep`` trains variants of (a), one knob at a time, to pick fast defaults.

    python bench/train_speed.py --quick          # ~1 min sanity run
    python bench/train_speed.py --eager          # also (a') the toolkit with eager layers (~7 min on 2 cores)
    python bench/train_speed.py --sweep          # comparison + defaults table (~10 min on 2 cores)
    python bench/train_speed.py --device cuda    # Unsloth's GPU path vs plain HF+PEFT (peak VRAM)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (  # noqa: E402
    FLOP_FORMULA, ROOT, current_rss_mb, describe_machine, emit, lora_flop_counts, peak_memory_mb, reset_peak_memory,
    run_worker, steady_rate, step_rates, table, train_flops,
)

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DEFAULT_DATA = ROOT / "data" / "poker" / "train.jsonl"


# =========================================================================== worker side (fresh process)
class Meter:
    """Counts what each training forward really sees and when each optimizer step ends.

    A forward pre-hook on the model reads ``attention_mask`` (real tokens), ``input_ids`` (tokens
    including padding) and ``labels`` (tokens with a loss), so both paths are counted the same way,
    independently of TRL's own ``num_tokens`` metric.
    """

    def __init__(self, model):
        self.tokens = self.padded = self.loss_tokens = 0
        self.step_times: list[float] = []  # seconds since train start, at the end of each optimizer step
        self.step_tokens: list[int] = []  # real tokens seen by then
        self.t0 = None
        model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        import torch

        if not (module.training and torch.is_grad_enabled()):
            return
        ids, mask, labels = kwargs.get("input_ids"), kwargs.get("attention_mask"), kwargs.get("labels")
        if ids is None:
            return
        self.padded += ids.numel()
        self.tokens += int(mask.sum()) if mask is not None else ids.numel()
        if labels is not None:
            self.loss_tokens += int((labels[:, 1:] != -100).sum())

    def callback(self):
        from transformers import TrainerCallback

        meter = self

        class StepTimer(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                meter.t0 = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                meter.step_times.append(time.perf_counter() - meter.t0)
                meter.step_tokens.append(meter.tokens)

        return StepTimer()


def _result(spec, meter, counts, runtime, peak, log_history, model_dtype, extra=None) -> dict:
    losses = [float(e["loss"]) for e in log_history if "loss" in e]
    out = {
        "path": spec["path"], "tokens": meter.tokens, "padded": meter.padded, "loss_tokens": meter.loss_tokens,
        "runtime_s": runtime, "tokens_per_s": meter.tokens / runtime, "peak_mb": peak, "losses": losses,
        "step_times": meter.step_times, "counts": counts, "dtype": str(model_dtype),
        "flops": train_flops(counts, meter.tokens, meter.loss_tokens),
    }
    out["steady_tokens_per_s"] = steady_rate(meter.step_times, meter.step_tokens, spec["skip"])
    out["best_tokens_per_s"] = max(step_rates(meter.step_times, meter.step_tokens, spec["skip"]) or [float("nan")])
    out.update(extra or {})
    return out


def worker_toolkit(spec: dict) -> dict:
    """(a) the toolkit's own calls, exactly as a notebook makes them."""
    import torch

    from toolkit.data import prepare
    from toolkit.load import load_model
    from toolkit.lora import attach_lora
    from toolkit.settings import LoraSettings, ModelSettings, TrainSettings
    from toolkit.train import train

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    model, tokenizer = load_model(ModelSettings(name=spec["model"], max_seq_length=spec["max_seq_length"],
                                                dtype=spec["dtype"]))
    model = attach_lora(model, LoraSettings(r=spec["rank"], alpha=spec["alpha"], target_modules=TARGETS,
                                            gradient_checkpointing="true" if spec["gradient_checkpointing"] else "false"))
    data, _ = prepare(spec["data"], tokenizer, spec["max_seq_length"])
    meter = Meter(model)
    settings = TrainSettings(batch_size=spec["batch_size"], max_steps=spec["steps"], lr=spec["lr"],
                             warmup_steps=spec["warmup"], seed=spec["seed"], logging_steps=1,
                             completion_only_loss=spec["completion_only_loss"], group_by_length=spec["group_by_length"],
                             cpu_compile=spec.get("cpu_compile", True), output_dir=tempfile.mkdtemp(prefix="bench-toolkit-"))
    rss_start = current_rss_mb() if spec["device"] == "cpu" else 0.0
    result = train(model, tokenizer, data, settings, max_seq_length=spec["max_seq_length"], callbacks=[meter.callback()])
    compiled = result.compiled
    return _result(spec, meter, lora_flop_counts(model), result.runtime_s, result.peak_memory_mb,
                   result.log_history, model.dtype, {"toolkit_trained_tokens": result.trained_tokens,
                                                     "compiled": compiled, "threads": torch.get_num_threads(),
                                                     "rss_start_mb": rss_start})


def worker_plain(spec: dict) -> dict:
    """(b) transformers + PEFT + TRL as the TRL docs write it; unsloth is never imported."""
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer
    from trl import SFTConfig, SFTTrainer

    from toolkit.data import prepare  # plain data formatting (prompt/completion rows), no unsloth
    from toolkit.load import resolve_model_path

    device = spec["device"]
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    path = resolve_model_path(spec["model"])
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, spec["dtype"]))
    data, _ = prepare(spec["data"], tokenizer, spec["max_seq_length"])

    class CPUSFTTrainer(SFTTrainer):
        """TRL 1.15 computes the SFT loss through a Triton kernel with no CPU driver ("0 active drivers"),
        so stock SFTTrainer cannot train on a CPU. TRL's own advice is to override compute_loss: use the
        model's built-in loss (transformers' Trainer.compute_loss) and keep TRL's token count."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs["use_cache"] = False
            loss = Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)
            if model.training:
                self._total_train_tokens += int(inputs["attention_mask"].sum())
                self._metrics["train"]["num_tokens"] = [self._total_train_tokens]
            return loss

    config = SFTConfig(
        output_dir=tempfile.mkdtemp(prefix="bench-plain-"),
        per_device_train_batch_size=spec["batch_size"],
        learning_rate=spec["lr"],
        max_steps=spec["steps"],
        warmup_steps=spec["warmup"],
        lr_scheduler_type="linear",
        logging_steps=1,
        save_strategy="no",
        seed=spec["seed"],
        data_seed=spec["seed"],
        max_length=spec["max_seq_length"],
        completion_only_loss=spec["completion_only_loss"],
        train_sampling_strategy="group_by_length" if spec["group_by_length"] else "random",
        gradient_checkpointing=spec["gradient_checkpointing"],  # TRL defaults to True; (a) runs without
        report_to="none",
        use_cpu=device == "cpu",  # without it TrainingArguments refuses bf16 on a machine with no GPU
    )
    lora = LoraConfig(r=spec["rank"], lora_alpha=spec["alpha"], lora_dropout=0.0, target_modules=TARGETS,
                      bias="none", task_type="CAUSAL_LM")
    torch.manual_seed(spec["seed"])
    trainer_cls = CPUSFTTrainer if device == "cpu" else SFTTrainer
    trainer = trainer_cls(model=model, args=config, train_dataset=data, processing_class=tokenizer, peft_config=lora)
    meter = Meter(trainer.model)
    trainer.add_callback(meter.callback())
    rss_start = current_rss_mb() if device == "cpu" else 0.0
    reset_peak_memory(device)
    start = time.perf_counter()
    trainer.train()
    runtime = time.perf_counter() - start
    peak = peak_memory_mb(device)
    assert "unsloth" not in sys.modules and "unsloth_zoo" not in sys.modules, "the plain path imported unsloth"
    return _result(spec, meter, lora_flop_counts(trainer.model), runtime, peak, trainer.state.log_history,
                   trainer.model.dtype, {"threads": torch.get_num_threads(), "unsloth_imported": False,
                                                                   "rss_start_mb": rss_start})


def worker(spec: dict) -> None:
    emit(worker_toolkit(spec) if spec["path"] == "toolkit" else worker_plain(spec))


# =========================================================================== parent side
def base_spec(args) -> dict:
    return {
        "model": args.model, "device": args.device, "dtype": "auto", "max_seq_length": args.max_seq_length,
        "batch_size": args.batch_size, "steps": args.steps, "lr": 2e-4, "warmup": min(5, args.steps // 3),
        "seed": 3407, "rank": 16, "alpha": 16.0, "gradient_checkpointing": False, "group_by_length": True,
        "completion_only_loss": True, "data": str(args.data), "skip": args.skip, "threads": None,
    }


def mfu(result: dict, peak_gflops: float) -> float:
    """Model FLOPs per second at the median step rate, as a fraction of the measured matmul peak."""
    return result["flops"] / result["tokens"] * result["steady_tokens_per_s"] / 1e9 / peak_gflops


def remeasure_peak(args, peak: dict) -> None:
    """Measure the matmul ceiling again after the training runs and keep the higher figure: other jobs on
    the machine can only lower a measurement, and MFU must not be flattered by a depressed ceiling."""
    from bench.matmul_peak import measure

    again = measure(args.device, quick=args.quick)
    for key in ("fp32", "bf16", "fp32_model", "bf16_model"):
        peak[key] = max(peak[key], again[key])
    print(f"matmul ceiling, higher of before/after the runs: fp32 {peak['fp32']:.0f}, bf16 {peak['bf16']:.0f} GFLOP/s")


def learned(result: dict) -> tuple[float, float, bool]:
    """Mean of the first and last 3 logged losses, and whether the loss fell."""
    losses = result["losses"]
    k = min(3, max(1, len(losses) // 3))
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    return first, last, last < first


def verdict(ok: bool, args) -> str:
    if args.steps < 12:
        return "too few steps to judge"  # warm-up plus batch-to-batch spread hide the trend
    return "falls" if ok else "DOES NOT FALL"


def run(spec: dict, env: dict | None = None) -> dict:
    result = run_worker(Path(__file__), spec, env)
    if "error" in result:
        print(f"  !! {spec['path']} failed:\n{result['error']}", flush=True)
    return result


def compare(args, peak: dict) -> tuple[dict, dict]:
    """(a) then (b), ``--repeats`` times alternately; the table shows the faster run of each path, and
    every pair's ratio is printed, so a run slowed by other jobs on the machine is visible."""
    spec = base_spec(args)
    pairs, compiled = [], []
    for _ in range(args.repeats):
        a = run({**spec, "path": "toolkit"})
        # (b) gets the dtype (a) resolved to ("auto" is Unsloth's choice: bf16 where the CPU has it natively)
        dtype = a.get("dtype", "torch.bfloat16").replace("torch.", "")
        b = run({**spec, "path": "plain", "dtype": dtype})
        if "error" in a or "error" in b:
            return a, b
        pairs.append((a, b))
        if args.eager:
            compiled.append(run({**spec, "path": "toolkit", "cpu_compile": False}))
    if len(pairs) > 1:
        print("pairs (a)/(b): " + "; ".join(
            f"median step tokens/s {pa['steady_tokens_per_s']:.0f}/{pb['steady_tokens_per_s']:.0f} = "
            f"{pa['steady_tokens_per_s'] / pb['steady_tokens_per_s']:.2f}x, whole run {pa['tokens_per_s']:.0f}/"
            f"{pb['tokens_per_s']:.0f} = {pa['tokens_per_s'] / pb['tokens_per_s']:.2f}x" for pa, pb in pairs))
    remeasure_peak(args, peak)
    a = max((p[0] for p in pairs), key=lambda r: r["steady_tokens_per_s"])
    b = max((p[1] for p in pairs), key=lambda r: r["steady_tokens_per_s"])
    mem_name = "peak VRAM MB (max_allocated)" if args.device == "cuda" else "peak RSS MB (VmHWM)"
    peak_key = "bf16" if "bfloat16" in dtype else "fp32"
    rows = []
    paths = [("(a) toolkit / Unsloth", a), ("(b) plain HF + PEFT + TRL", b)]
    compiled = [r for r in compiled if "error" not in r]
    if compiled:
        ac = max(compiled, key=lambda r: r["steady_tokens_per_s"])
        paths.append(("(a') toolkit, train.cpu_compile=false (eager)", ac))
    for name, r in paths:
        first, last, ok = learned(r)
        rows.append([name, r["dtype"].replace("torch.", ""), f"{r['tokens']:,}", f"{r['runtime_s']:.1f}",
                     f"{r['tokens_per_s']:.0f}", f"{r['steady_tokens_per_s']:.0f}", f"{r['peak_mb']:.0f}",
                     f"{first:.3f} -> {last:.3f} ({verdict(ok, args)})",
                     f"{100 * mfu(r, peak[peak_key]):.1f}%"])
    print(table(rows, ["path", "dtype", "trained tokens", "train s", "tokens/s", f"median step tokens/s (after step {args.skip})",
                       mem_name, "loss first3 -> last3", f"MFU vs {peak_key} peak"]))
    print(f"ratio (a)/(b): tokens/s {a['tokens_per_s'] / b['tokens_per_s']:.2f}x (target >= 1.3x), "
          f"median step tokens/s {a['steady_tokens_per_s'] / b['steady_tokens_per_s']:.2f}x, "
          f"peak memory {a['peak_mb'] / b['peak_mb']:.2f}x")
    if compiled:
        print(f"ratio (a')/(b): tokens/s {ac['tokens_per_s'] / b['tokens_per_s']:.2f}x, "
              f"median step tokens/s {ac['steady_tokens_per_s'] / b['steady_tokens_per_s']:.2f}x, "
              f"peak memory {ac['peak_mb'] / b['peak_mb']:.2f}x")
    c = a["counts"]
    print(f"MFU: {FLOP_FORMULA}. Here N_frozen = {c['body_frozen'] / 1e6:.1f}M, N_lora = {c['lora'] / 1e6:.2f}M, "
          f"N_head = {c['head'] / 1e6:.1f}M; loss tokens = {a['loss_tokens']:,} of {a['tokens']:,} "
          f"({100 * a['loss_tokens'] / a['tokens']:.1f}%); peak = measured {peak_key} square matmul "
          f"{peak[peak_key]:.0f} GFLOP/s (model-shaped {peak[peak_key + '_model']:.0f}). Target for (a): >= 40%.")
    if a["tokens"] != b["tokens"]:
        print(f"note: the two runs saw different token counts ({a['tokens']} vs {b['tokens']}): different batches")
    return a, b


SWEEP = [
    # (label, spec changes, environment)
    ("toolkit defaults (bf16, no ckpt, group_by_length, completion-only, compiled layers, 2 threads)", {}, {}),
    ("pure fp32 (UNSLOTH_CPU_BF16=0)", {}, {"UNSLOTH_CPU_BF16": "0"}),
    ("gradient checkpointing on", {"gradient_checkpointing": True}, {}),
    ("loss on prompt tokens too (completion_only_loss off)", {"completion_only_loss": False}, {}),
    ("eager layers (train.cpu_compile=false)", {"cpu_compile": False}, {}),
    ("1 thread (OMP_NUM_THREADS=1)", {}, {"OMP_NUM_THREADS": "1"}),
]
EXTRA_SWEEP = [  # --sweep-all: slower to run, less likely to change a default
    ("random order (group_by_length off)", {"group_by_length": False}, {}),
    ("Unsloth chunked CE off (UNSLOTH_CPU_CHUNKED_CE=0)", {}, {"UNSLOTH_CPU_CHUNKED_CE": "0"}),
    ("4 threads on 2 cores (torch.set_num_threads(4))", {"threads": 4}, {}),
    ("fp32 weights, bf16 autocast (model.dtype=float32)", {"dtype": "float32"}, {}),
]


def padding(args) -> None:
    """Padding waste of the two samplers. It depends only on the tokenizer, rows and batch size, not on
    the model, so the tiny model (same SmolLM2 tokenizer) measures it in seconds."""
    rows = []
    for label, grouped in (("group_by_length (toolkit default)", True), ("random order", False)):
        r = run({**base_spec(args), "path": "toolkit", "model": "tiny", "steps": 16, "group_by_length": grouped,
                 "cpu_compile": False})
        if "error" not in r:
            rows.append([label, f"{r['tokens']:,}", f"{r['padded']:,}", f"{100 * (1 - r['tokens'] / r['padded']):.1f}%"])
    print(f"\nPadding waste, batch {args.batch_size}, 16 steps over {args.data.name} (tiny model, same tokenizer): "
          "padded positions cost compute like real ones, so throughput in real tokens falls by about this fraction")
    print(table(rows, ["sampler", "real tokens", "tokens incl. padding", "padding waste"]))


def sweep(args, peak: dict) -> None:
    """One change per row against the toolkit defaults; the defaults run first and again last, so the
    spread between those two rows shows how much other load on the machine moved the figures."""
    spec = {**base_spec(args), "path": "toolkit", "steps": args.sweep_steps, "batch_size": args.sweep_batch_size, "skip": 2}
    plan = SWEEP + (EXTRA_SWEEP if args.sweep_all else []) + [("toolkit defaults again (noise check)", {}, {})]
    results = []
    for label, change, env in plan:
        r = run({**spec, **change}, env)
        results.append((label, r))
        if "error" not in r:
            print(f"  done: {label}: {r['tokens_per_s']:.0f} tok/s (median step {r['steady_tokens_per_s']:.0f}), "
                  f"{r['peak_mb']:.0f} MB, process {r['process_s']:.0f} s", flush=True)
    remeasure_peak(args, peak)
    refs = [r["steady_tokens_per_s"] for label, r in (results[0], results[-1]) if "error" not in r]
    ref = sum(refs) / len(refs) if refs else float("nan")
    rows = []
    for label, r in results:
        if "error" in r:
            rows.append([label, "failed"] + [""] * 7)
            continue
        first, last, _ = learned(r)
        note = " (compiled)" if r.get("compiled") else ""
        rows.append([label + note, f"{r['tokens_per_s']:.0f}", f"{r['steady_tokens_per_s']:.0f}",
                     f"{r['steady_tokens_per_s'] / ref:.2f}x", f"{r['peak_mb']:.0f}",
                     f"{r['peak_mb'] - r['rss_start_mb']:.0f}", f"{100 * (1 - r['tokens'] / r['padded']):.0f}%",
                     f"{first:.2f} -> {last:.2f}", f"{100 * mfu(r, peak['bf16']):.1f}%"])
    print(f"\nDefaults sweep: toolkit path (a), {args.sweep_steps} steps of batch {args.sweep_batch_size} each, one change per "
          f"row, each in a fresh process. 'vs defaults' = median step tokens/s (steps after 2) / the mean of "
          f"the two defaults rows. tokens/s over the whole train() includes warm-up and compile time.")
    print(table(rows, ["variant", "tokens/s", "median step tokens/s", "vs defaults", "peak RSS MB",
                       "RSS growth MB", "padding waste", "loss first3 -> last3", "MFU vs bf16 peak"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="~1 min sanity run: 6 steps of batch 4, no sweep")
    parser.add_argument("--sweep", action="store_true", help="also train one-knob variants of (a) for the defaults table")
    parser.add_argument("--sweep-only", action="store_true", help="only the defaults table (skip the (a)/(b) comparison)")
    parser.add_argument("--sweep-all", action="store_true", help="also random order, chunked CE off, 4 threads, fp32 weights")
    parser.add_argument("--sweep-batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--model", default="default", help='"default" (SmolLM2-135M-Instruct) or "tiny"')
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="prompt/completion or messages JSONL")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--eager", action="store_true", help="also (a') the toolkit with train.cpu_compile=false")
    parser.add_argument("--repeats", type=int, default=1, help="alternate (a),(b) this many times; keep each path's best")
    parser.add_argument("--sweep-steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-seq-length", type=int, default=512)
    parser.add_argument("--skip", type=int, default=3, help="warm-up steps left out of the steady-state rate")
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    if args.quick:
        args.steps, args.batch_size, args.sweep, args.skip = 6, 4, False, 2
    from bench.matmul_peak import measure

    print(describe_machine(args.device))
    peak = measure(args.device, quick=args.quick)
    print(f"matmul ceiling ({peak['threads']} threads): fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s "
          f"(square {peak['square_size']}); model-shaped 1600x576@576x1536: fp32 {peak['fp32_model']:.0f}, "
          f"bf16 {peak['bf16_model']:.0f}")
    if not args.sweep_only:
        print(f"\nSame model ({args.model}), data ({args.data.name}), LoRA r=16 on {len(TARGETS)} projections, batch "
              f"{args.batch_size}, max_seq_length {args.max_seq_length}, {args.steps} steps, lr 2e-4 linear, seed 3407; "
              f"each path in a fresh process on {args.device}:")
        a, b = compare(args, peak)
        if "error" in a:
            return
    if args.sweep or args.sweep_only:
        padding(args)
        print()
        sweep(args, peak)


if __name__ == "__main__":
    main()
