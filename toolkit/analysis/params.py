"""Claims 1 and 3 of the LoRA paper: fewer trainable parameters, hence tiny checkpoints.

For one adapted weight W0 of shape (d, k), full fine-tuning trains all d·k entries; LoRA trains
B (d, r) and A (r, k), i.e. r·(d+k) entries. Everything here works from shapes alone, so it can
size a config before any model is loaded (``toolkit.lora.parameter_report`` counts a live model).

A safetensors file is ``8 bytes (header length N, little-endian u64) + N bytes of JSON header +
the raw tensor bytes``, so the adapter file must weigh exactly ``8 + N + Σ r·(d+k)·bytes_per_param``.
"""
from __future__ import annotations

import json
from pathlib import Path

from .adapter import ADAPTER_FILE, Adapter, BaseWeights, find_adapter_dir, module_kind

# safetensors dtype tag -> bytes per element
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
               "F8_E4M3": 1, "F8_E5M2": 1}


def full_param_count(shapes: dict[str, tuple[int, int]]) -> int:
    """Σ d·k: trainable parameters when every listed W0 (d, k) is fine-tuned."""
    return sum(d * k for d, k in shapes.values())


def _rank(r: int | dict[str, int], module: str) -> int:
    """r is one rank for all modules, or a per-module dict (PEFT's rank_pattern)."""
    rank = r[module] if isinstance(r, dict) else r
    if not isinstance(rank, int) or rank <= 0:
        raise ValueError(f"r[{module!r}] = {rank!r}: the LoRA rank must be a positive integer, e.g. 8")
    return rank


def lora_param_count(shapes: dict[str, tuple[int, int]], r: int | dict[str, int]) -> int:
    """Σ r·(d+k): trainable parameters of B (d, r) and A (r, k) over every listed module."""
    return sum(_rank(r, m) * (d + k) for m, (d, k) in shapes.items())


def param_rows(shapes: dict[str, tuple[int, int]], r: int | dict[str, int]) -> list[dict]:
    """One row per module: (module, d, k, r, full = d·k, lora = r·(d+k), ratio = full / lora)."""
    rows = []
    for module, (d, k) in shapes.items():
        rank = _rank(r, module)
        full, lora = d * k, rank * (d + k)
        rows.append({"module": module, "d": d, "k": k, "r": rank, "full": full, "lora": lora, "ratio": full / lora})
    return rows


def select_targets(shapes: dict[str, tuple[int, int]], targets: list[str]) -> dict[str, tuple[int, int]]:
    """Keep the modules PEFT would adapt for ``target_modules=targets`` (matched on the last name part)."""
    return {m: s for m, s in shapes.items() if module_kind(m) in targets}


# --------------------------------------------------------------------------- checkpoint bytes
def safetensors_header_bytes(path: str | Path) -> int:
    """Exact header size: 8 bytes holding N (u64, little-endian) + the N-byte JSON header."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
    return 8 + n


def safetensors_header(path: str | Path) -> dict:
    """The JSON header: ``{key: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}``."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return header


def predicted_adapter_bytes(shapes: dict[str, tuple[int, int]], r: int | dict[str, int], bytes_per_param: int) -> int:
    """Σ over modules of r·(d+k)·bytes_per_param: the adapter file's tensor bytes by the formula."""
    return lora_param_count(shapes, r) * bytes_per_param


def checkpoint_report(adapter: Adapter, base: BaseWeights | None = None) -> dict:
    """Measured adapter file bytes vs the formula, and vs the full model's file.

    Returns:
        dict with ``file_bytes``, ``header_bytes``, ``tensor_bytes`` (= file - header),
        ``predicted_bytes`` (Σ r·(d+k)·bytes_per_param over LoRA pairs), ``other_bytes`` (non-LoRA
        tensors, e.g. modules_to_save), ``formula_matches`` (tensor bytes == predicted + other),
        and, when ``base`` is given, ``full_model_bytes`` and ``full_over_adapter``.
    """
    if adapter.path is None:
        raise ValueError("adapter.path = None: checkpoint sizes need a saved adapter; call model.save_pretrained(dir) first")
    file = find_adapter_dir(adapter.path) / ADAPTER_FILE
    header = safetensors_header(file)
    header_bytes = safetensors_header_bytes(file)
    file_bytes = file.stat().st_size
    predicted, other, dtypes = 0, 0, set()
    for key, info in header.items():
        size = DTYPE_BYTES[info["dtype"]]
        if ".lora_A." in key or ".lora_B." in key:
            dtypes.add(info["dtype"])
        else:
            other += size * _numel(info["shape"])
    for module, shape in adapter.shapes().items():
        # bytes per param from the file itself: PEFT keeps adapters in fp32 even on a bf16 base by default
        size = DTYPE_BYTES[header[_file_key(header, module, "A")]["dtype"]]
        predicted += predicted_adapter_bytes({module: shape}, adapter.rank(module), size)
    out = {
        "file": str(file),
        "file_bytes": file_bytes,
        "header_bytes": header_bytes,
        "tensor_bytes": file_bytes - header_bytes,
        "predicted_bytes": predicted,
        "other_bytes": other,
        "dtypes": sorted(dtypes),
        "formula_matches": file_bytes - header_bytes == predicted + other,
    }
    if base is not None:
        out["full_model_bytes"] = base.file_bytes()
        out["full_over_adapter"] = out["full_model_bytes"] / file_bytes
    return out


def gpt3_extrapolation(
    r: int = 4,  # the paper's setting for GPT-3 (Section 4.2 / Table 4)
    d_model: int = 12288,  # GPT-3 175B hidden size
    n_layers: int = 96,  # transformer blocks
    targets: tuple[str, ...] = ("q", "v"),  # W_q and W_v, each d_model × d_model
    full_params: float = 175e9,  # GPT-3 parameter count
    bytes_per_param: int = 2,  # fp16 checkpoints: 175e9 · 2 B = 350 GB
) -> dict:
    """The same r·(d+k) formula on GPT-3's shapes; the paper reports ~10,000× (350 GB -> 35 MB)."""
    shapes = {f"layers.{i}.{t}": (d_model, d_model) for i in range(n_layers) for t in targets}
    lora = lora_param_count(shapes, r)
    return {
        "r": r, "d_model": d_model, "n_layers": n_layers, "targets": list(targets),
        "lora_params": lora,
        "full_params": full_params,
        "lora_bytes": lora * bytes_per_param,
        "full_bytes": full_params * bytes_per_param,
        "ratio": full_params / lora,
    }


def _numel(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _file_key(header: dict, module: str, ab: str) -> str:
    for key in (f"base_model.model.{module}.lora_{ab}.weight", f"{module}.lora_{ab}.weight"):
        if key in header:
            return key
    raise KeyError(f"module = {module!r}: lora_{ab} not found in the adapter file header")
