"""Claim 2 of the LoRA paper: LoRA needs far less memory to train than full fine-tuning.

    python -m toolkit.memory --model runs/tiny-base --batch_size 2 --seq_len 128   # both, side by side
    python -m toolkit.memory --model DIR --method lora --out lora.json             # one worker

Each method is measured in a FRESH Python process, because a process never gives its peak back:
after a full fine-tuning run in this process, the LoRA run could not be measured. Per process we record

* CPU: resident memory (RSS) after imports, after loading the model, and the peak while training.
  Linux lets us reset the peak after loading (``echo 5 > /proc/self/clear_refs``), so the peak is the
  training peak; elsewhere ``getrusage().ru_maxrss`` is the lifetime peak (flagged ``peak_includes_load``).
* GPU (when CUDA is present): ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``.

The breakdown is an estimate from counts: weights = Σ param bytes, gradients = Σ trainable param bytes,
optimizer = 2 fp32 AdamW states per trainable param (exp_avg, exp_avg_sq), activations = the remainder
of (peak - memory before loading). Full fine-tuning of N fp32 params needs 4N + 4N + 8N bytes before
activations; LoRA needs ~4N for the frozen weights plus a little for B and A.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from toolkit.settings import build, problem

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class MemorySettings:
    model: str = ""  # local HF checkpoint folder (config.json + model.safetensors), loaded with AutoModelForCausalLM
    batch_size: int = 2  # rows per step; same for both methods
    seq_len: int = 128  # tokens per row; same for both methods
    steps: int = 3  # optimizer steps; >= 2 so AdamW's states exist during a backward pass
    r: int = 8  # LoRA rank
    alpha: float = 16.0  # LoRA alpha (scaling = alpha / r); does not change memory
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])  # the paper's GPT-3 choice
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"  # weights dtype; fp32 on CPU
    lr: float = 1e-4  # AdamW learning rate (memory does not depend on it)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # "auto" = CUDA when present
    threads: int = 0  # torch CPU threads per process; 0 = torch's default (1 each when running both at once)
    seed: int = 0  # random token batches

    def problems(self, p: str = "memory") -> list[str]:
        out = []
        if not (Path(self.model) / "config.json").is_file():
            out.append(problem(f"{p}.model", self.model, "give a local HF checkpoint folder with config.json (model.save_pretrained(dir))"))
        for name in ("batch_size", "seq_len", "r"):
            if getattr(self, name) <= 0:
                out.append(problem(f"{p}.{name}", getattr(self, name), "must be a positive integer"))
        if self.threads < 0:
            out.append(problem(f"{p}.threads", self.threads, "must be >= 0 (0 = torch's default)"))
        if self.steps < 2:
            out.append(problem(f"{p}.steps", self.steps, "must be >= 2 so the peak includes AdamW's states"))
        if not self.target_modules:
            out.append(problem(f"{p}.target_modules", self.target_modules, 'list modules to adapt, e.g. ["q_proj", "v_proj"]'))
        return out


# --------------------------------------------------------------------------- measuring inside one process
def rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def reset_peak_rss() -> bool:
    """Make the kernel's peak-RSS counter start again from now (Linux >= 4.0). False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """Peak RSS since the last reset: VmHWM on Linux, else getrusage (KiB on Linux, bytes on macOS)."""
    status = Path("/proc/self/status")
    if status.is_file():
        match = re.search(r"VmHWM:\s+(\d+) kB", status.read_text())
        if match:
            return int(match.group(1)) * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def measure(method: Literal["lora", "full"], s: MemorySettings) -> dict:
    """Load the model, make it LoRA or fully trainable, run ``s.steps`` AdamW steps; return memory numbers.

    Call this in a fresh process (``measure_in_subprocess``); the numbers are per-process peaks.
    """
    import torch
    from transformers import AutoModelForCausalLM

    if method == "lora":
        from peft import LoraConfig, get_peft_model
    if s.threads:
        torch.set_num_threads(s.threads)
    device = "cuda" if s.device == "cuda" or (s.device == "auto" and torch.cuda.is_available()) else "cpu"
    gc.collect()
    before_load = rss_bytes()
    cuda_before_load = torch.cuda.memory_allocated() if device == "cuda" else 0
    model = AutoModelForCausalLM.from_pretrained(s.model, dtype=getattr(torch, s.dtype)).to(device)
    if method == "lora":
        model = get_peft_model(model, LoraConfig(r=s.r, lora_alpha=s.alpha, target_modules=s.target_modules, lora_dropout=0.0))
    else:
        model.requires_grad_(True)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    # A plain loop, not SFTTrainer: the SAME loop runs both ways, so the difference between the two
    # numbers is the memory the method itself needs (no trainer caches, logging or data pipeline).
    opt = torch.optim.AdamW(trainable, lr=s.lr)
    gc.collect()
    after_load = rss_bytes()
    peak_is_training = reset_peak_rss()
    if device == "cuda":
        cuda_after_load = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    g = torch.Generator().manual_seed(s.seed)
    vocab = model.config.vocab_size
    losses, t0 = [], time.perf_counter()
    for _ in range(s.steps):
        ids = torch.randint(0, vocab, (s.batch_size, s.seq_len), generator=g).to(device)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    seconds = time.perf_counter() - t0
    out = {
        "method": method,
        "pid": os.getpid(),  # proves the numbers come from a process of their own
        "device": device,
        "n_params": sum(p.numel() for p in model.parameters()),
        "n_trainable": sum(p.numel() for p in trainable),
        "weight_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
        "trainable_bytes": sum(p.numel() * p.element_size() for p in trainable),
        "optimizer_bytes_measured": sum(t.numel() * t.element_size() for st in opt.state.values() for t in st.values() if torch.is_tensor(t) and t.dim() > 0),
        "rss_before_load": before_load,
        "rss_after_load": after_load,
        "rss_peak": peak_rss_bytes(),
        "peak_includes_load": not peak_is_training,
        "seconds": seconds,
        "losses": losses,
    }
    if device == "cuda":
        out.update(cuda_before_load=cuda_before_load, cuda_after_load=cuda_after_load, cuda_peak=torch.cuda.max_memory_allocated())
    out["memory_kind"] = "GPU allocated" if device == "cuda" else "CPU RSS"
    out["breakdown"] = breakdown(out)
    return out


def breakdown(m: dict) -> dict:
    """Split (peak - before load) into weights, gradients, AdamW states (2 fp32 per trainable param) and the rest."""
    prefix = "cuda" if m["device"] == "cuda" else "rss"
    measured = m[f"{prefix}_peak"] - m[f"{prefix}_before_load"]
    parts = {"weights": m["weight_bytes"], "gradients": m["trainable_bytes"], "optimizer": 2 * 4 * m["n_trainable"]}
    return {**parts, "activations": measured - sum(parts.values()), "measured": measured}


# --------------------------------------------------------------------------- fresh processes
def measure_in_subprocess(method: Literal["lora", "full"], s: MemorySettings, timeout: float = 1800) -> dict:
    """Run ``measure`` in a new ``python -m toolkit.memory`` process and return its JSON result."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{method}.json"
        cmd = [sys.executable, "-m", "toolkit.memory", "--method", method, "--out", str(out), *_to_argv(s)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        if proc.returncode != 0 or not out.is_file():
            raise RuntimeError(f"memory worker for method = {method!r} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text())


def compare_memory(s: MemorySettings | dict, parallel: bool = False) -> dict:
    """LoRA vs full fine-tuning on the same model, batch and sequence length, each in a fresh process.

    ``parallel=True`` runs the two processes at once (peaks are per process, so they do not mix; on a GPU
    both share one card, so keep it False there).

    Returns:
        {"settings", "machine", "lora", "full", "ratio_training", "ratio_peak"} where ratio_training =
        full / lora of (peak - memory before loading) and ratio_peak = full / lora of the whole process peak.
    """
    s = build(MemorySettings, s) if isinstance(s, dict) else build(MemorySettings, dataclasses.asdict(s))
    if parallel:
        if not s.threads:  # two processes on the same cores: one thread each avoids oversubscription
            s = dataclasses.replace(s, threads=1)
        with ThreadPoolExecutor(2) as pool:
            lora, full = pool.map(lambda m: measure_in_subprocess(m, s), ["lora", "full"])
    else:
        lora, full = measure_in_subprocess("lora", s), measure_in_subprocess("full", s)
    kind = "cuda" if lora["device"] == "cuda" else "rss"
    return {
        "settings": dataclasses.asdict(s),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "device": lora["device"], "parallel": parallel},
        "lora": lora,
        "full": full,
        "ratio_training": full["breakdown"]["measured"] / lora["breakdown"]["measured"],
        "ratio_peak": full[f"{kind}_peak"] / lora[f"{kind}_peak"],
    }


def format_table(result: dict) -> str:
    """Markdown table of the comparison, in MiB."""
    mib = 1024**2
    rows = ["| | LoRA | full | full / LoRA |", "|---|---:|---:|---:|"]
    lo, fu = result["lora"], result["full"]
    kind = "cuda" if lo["device"] == "cuda" else "rss"
    for label, get in [("trainable params", lambda m: m["n_trainable"]),
                       (f"{kind} after load (MiB)", lambda m: m[f"{kind}_after_load"] / mib),
                       (f"{kind} peak (MiB)", lambda m: m[f"{kind}_peak"] / mib),
                       ("peak − before load (MiB)", lambda m: m["breakdown"]["measured"] / mib),
                       ("  est. weights", lambda m: m["breakdown"]["weights"] / mib),
                       ("  est. gradients", lambda m: m["breakdown"]["gradients"] / mib),
                       ("  est. AdamW states", lambda m: m["breakdown"]["optimizer"] / mib),
                       ("  activations (remainder)", lambda m: m["breakdown"]["activations"] / mib)]:
        a, b = get(lo), get(fu)
        ratio = f"{b / a:.2f}" if a > 0 else "–"
        fmt = ",.0f" if isinstance(a, int) else ",.1f"
        rows.append(f"| {label} | {a:{fmt}} | {b:{fmt}} | {ratio} |")
    return "\n".join(rows)


# --------------------------------------------------------------------------- CLI
def _to_argv(s: MemorySettings) -> list[str]:
    argv = []
    for f in dataclasses.fields(s):
        value = getattr(s, f.name)
        argv += [f"--{f.name}", *map(str, value)] if isinstance(value, list) else [f"--{f.name}", str(value)]
    return argv


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m toolkit.memory", description="Peak training memory: LoRA vs full fine-tuning.")
    for f in dataclasses.fields(MemorySettings):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if isinstance(default, list):
            parser.add_argument(f"--{f.name}", nargs="+", default=default)
        else:
            parser.add_argument(f"--{f.name}", type=type(default), default=default)
    parser.add_argument("--method", choices=["lora", "full", "both"], default="both", help="one worker, or both in fresh processes")
    parser.add_argument("--out", help="write the JSON result here")
    parser.add_argument("--plot", help="with --method both: save the memory bars as this PNG")
    parser.add_argument("--parallel", action="store_true", help="with --method both: run the two processes at once")
    args = vars(parser.parse_args(argv))
    method, out, plot, parallel = (args.pop(k) for k in ("method", "out", "plot", "parallel"))
    s = build(MemorySettings, args)
    result = measure(method, s) if method != "both" else compare_memory(s, parallel=parallel)
    if out:
        Path(out).write_text(json.dumps(result, indent=2))
    if method == "both":
        print(format_table(result))
        print(f"\nfull / LoRA, peak - before load: {result['ratio_training']:.2f}x   whole-process peak: {result['ratio_peak']:.2f}x")
        if plot:
            from toolkit.analysis.plots import plot_memory

            plot_memory(result, plot)


if __name__ == "__main__":
    main()
