"""Shared helpers for the training benchmarks: machine description, peak memory, FLOP counting, workers.

Every training measurement runs in a fresh Python process (``run_worker``), so one run's imports
(Unsloth patches transformers/TRL on import), allocator state and compiled kernels never leak into
the next. Workers print one ``RESULT {json}`` line that the parent parses.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT_TAG = "RESULT "
PACKAGES = ("torch", "transformers", "trl", "peft", "unsloth", "unsloth_zoo", "accelerate", "datasets")


# --------------------------------------------------------------------------- machine
def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def ram_gb() -> float:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            out[name] = "-"
    return out


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def describe_machine(device: str = "cpu") -> str:
    """One paragraph: CPU model, ISA features that decide bf16 speed, cores, RAM, versions, current load."""
    flags = cpu_flags()
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_fp16") if f in flags]
    lines = [
        f"machine: {cpu_name()} ({platform.machine()}), {os.cpu_count()} logical cores, {ram_gb():.0f} GiB RAM, "
        f"ISA: {' '.join(isa) or 'unknown'}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
        f"load average (1/5/15 min) before the run: {load_average()}  "
        "(other processes on these cores slow every figure below alike)",
    ]
    if device == "cuda":
        import torch

        if torch.cuda.is_available():
            lines.insert(1, f"gpu: {torch.cuda.get_device_name(0)}, "
                            f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
    return "\n".join(lines)


# --------------------------------------------------------------------------- peak memory (inside a worker)
def reset_peak_memory(device: str) -> None:
    """Start a fresh peak: VmHWM on CPU (Linux: write "5" to /proc/self/clear_refs), CUDA's peak counter on GPU."""
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()
        return
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_memory_mb(device: str) -> float:
    """Peak RSS (VmHWM) since the last reset on CPU; torch.cuda.max_memory_allocated on GPU."""
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def current_rss_mb() -> float:
    """Resident memory now (VmRSS), to separate what training adds from the loaded model and libraries."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --------------------------------------------------------------------------- FLOPs
def lora_flop_counts(model) -> dict[str, int]:
    """Parameters that do matmuls per token, split the way LoRA training uses them.

    Returns ``body_frozen`` (frozen Linear weights in the decoder layers), ``lora`` (A and B),
    ``head`` (the LM head, tied to the embedding in SmolLM2: the embedding lookup itself is no matmul).
    """
    import torch

    body = lora = 0
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        n = module.weight.numel()
        if "lora_A" in name or "lora_B" in name:
            lora += n
        elif "lm_head" not in name:
            body += n
    head = model.get_output_embeddings().weight.numel()
    return {"body_frozen": body, "lora": lora, "head": head}


FLOP_FORMULA = (
    "training FLOPs = (4*N_frozen + 6*N_lora)*tokens + 4*N_head*loss_tokens.  A frozen weight costs a forward "
    "matmul (2N) and the input-gradient matmul (2N) but no weight gradient; a LoRA weight costs all three (6N); "
    "the LM head (tied embedding, frozen) is only needed on tokens that carry a label. Attention score/value "
    "matmuls (~3% here at ~200 tokens) are not counted"
)


def train_flops(counts: dict[str, int], tokens: int, loss_tokens: int) -> float:
    return (4 * counts["body_frozen"] + 6 * counts["lora"]) * tokens + 4 * counts["head"] * loss_tokens


# --------------------------------------------------------------------------- workers
def run_worker(script: Path, spec: dict, env: dict | None = None, timeout: float = 1800) -> dict:
    """Run ``script --worker JSON`` in a fresh Python and return its ``RESULT`` dict.

    On failure the dict has ``error`` (the last lines of its output) instead of numbers.
    """
    full_env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script), "--worker", json.dumps(spec)], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            result = json.loads(line[len(RESULT_TAG):])
            result["process_s"] = time.perf_counter() - start
            return result
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
    return {"error": "\n".join(tail), "returncode": proc.returncode}


def emit(result: dict) -> None:
    print(RESULT_TAG + json.dumps(result), flush=True)


def step_rates(step_times: list[float], step_tokens: list[int], skip: int) -> list[float]:
    """Tokens/s of each optimizer step after the first ``skip`` (allocator warm-up, torch.compile)."""
    rates = []
    for i in range(max(1, skip), len(step_times)):
        dt = step_times[i] - step_times[i - 1]
        if dt > 0:
            rates.append((step_tokens[i] - step_tokens[i - 1]) / dt)
    return rates


def steady_rate(step_times: list[float], step_tokens: list[int], skip: int) -> float:
    """Median step rate after ``skip`` steps: shrugs off a few steps slowed by other processes."""
    rates = step_rates(step_times, step_tokens, skip)
    if not rates:
        return float("nan")
    rates.sort()
    mid = len(rates) // 2
    return rates[mid] if len(rates) % 2 else (rates[mid - 1] + rates[mid]) / 2


def table(rows: list[list], header: list[str]) -> str:
    """A GitHub-markdown table (also readable in a terminal)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    fmt = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([fmt(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [fmt(r) for r in cells[1:]])
