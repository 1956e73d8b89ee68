"""This machine's matmul ceiling: GFLOP/s of torch.matmul in fp32 and bf16, all threads.

Two shapes per dtype: large squares (the hardware ceiling that MFU is quoted against) and the
shape a SmolLM2-135M training step really multiplies (batch·seq rows × 576 × 1536, the MLP).

    python bench/matmul_peak.py                 # ~20 s on 2 cores
    python bench/matmul_peak.py --device cuda   # GPU (TF32 off for fp32)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import describe_machine, table  # noqa: E402


def gflops(m: int, k: int, n: int, dtype: str, device: str = "cpu", seconds: float = 2.0) -> float:
    """Best-of-repeats GFLOP/s of (m×k) @ (k×n): 2·m·k·n FLOPs per product."""
    import torch

    torch.manual_seed(0)
    dt = getattr(torch, dtype)
    a = torch.randn(m, k, device=device).to(dt)
    b = torch.randn(k, n, device=device).to(dt)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    a @ b  # warm-up: oneDNN/cuBLAS pick their kernel on the first call
    sync()
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(3):
            a @ b
        sync()
        best = min(best, (time.perf_counter() - start) / 3)
    return 2 * m * k * n / best / 1e9


def measure(device: str = "cpu", quick: bool = False) -> dict[str, float]:
    """{"fp32": ..., "bf16": ..., "fp32_model": ..., "bf16_model": ...} in GFLOP/s."""
    import torch

    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    size = 8192 if device == "cuda" else (2048 if quick else 4096)
    seconds = 1.0 if quick else 3.0
    out = {}
    for dtype in ("float32", "bfloat16"):
        short = "fp32" if dtype == "float32" else "bf16"
        out[short] = gflops(size, size, size, dtype, device, seconds)
        out[f"{short}_model"] = gflops(8 * 200, 576, 1536, dtype, device, seconds)
    out["square_size"] = size
    out["threads"] = torch.get_num_threads()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="smaller matrices, 1 s per shape")
    args = parser.parse_args()
    print(describe_machine(args.device))
    peak = measure(args.device, args.quick)
    n = peak["square_size"]
    print(f"torch.matmul, {peak['threads']} threads, best of repeats:")
    print(table([[f"square {n}x{n} @ {n}x{n}", f"{peak['fp32']:.0f}", f"{peak['bf16']:.0f}", f"{peak['bf16'] / peak['fp32']:.2f}x"],
                 ["model-shaped 1600x576 @ 576x1536", f"{peak['fp32_model']:.0f}", f"{peak['bf16_model']:.0f}",
                  f"{peak['bf16_model'] / peak['fp32_model']:.2f}x"]],
                ["shape", "fp32 GFLOP/s", "bf16 GFLOP/s", "bf16/fp32"]))


if __name__ == "__main__":
    main()
