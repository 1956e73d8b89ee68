"""Will it fit? A memory estimate from the model's config (no weights loaded), checked before loading.

For LoRA fine-tuning with batch b, sequence length s, hidden size h, MLP width I, vocabulary V, L layers::

    weights      = P_base · bytes(dtype)          4-bit (GPU): ~0.56 B per Linear weight, 16-bit embeddings
    LoRA         = P_lora · (4 + 4 + 8)           fp32 weights + grads + AdamW's two moments (m, v)
                   P_lora = L · Σ_modules r·(d + k)
    activations  = L · b·s·(17·h + 8·I) · bytes/2 what autograd keeps per layer (Korthikanti et al. 2022,
                                                  adapted to a SwiGLU MLP; fused attention, so no s² term)
                   with gradient checkpointing: L · b·s·h · bytes + one layer's full activations
    logits       = b·s·V · 4                      one fp32 copy of the logits for the loss
    runtime      = libraries + allocator slack    (1 GiB on CPU, 0.5 GiB for the CUDA context)

These are estimates (real use moves with kernels, allocator caching and Unsloth's chunked loss), so
``check_fits`` refuses only what clearly won't fit: ``total > factor · available`` (factor 1.5 by
default), and names the settings to turn down, the biggest consumer first.

Where the numbers come from: local ``*.safetensors`` headers when the model is on disk (exact
parameter count, any architecture), else ``config.json`` with Llama-style layer names (q/k/v/o,
gate/up/down), which covers Llama, Mistral, Qwen2/3 and SmolLM.
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

GIB = 2**30
RUNTIME_BYTES = {"cpu": 1 * GIB, "cuda": GIB // 2}
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
FOUR_BIT = 0.5 + 4 / 64  # nf4: 4 bits + one fp32 absmax per 64-weight block

# HuggingFaceTB/SmolLM2-135M-Instruct (the "default" model), so an estimate needs no materialized copy.
SMOLLM2_CONFIG = dict(model_type="llama", vocab_size=49152, hidden_size=576, intermediate_size=1536,
                      num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, head_dim=64,
                      tie_word_embeddings=True)


class ResourceError(ValueError):
    """The run clearly does not fit in memory; the message names the settings to turn down."""


# --------------------------------------------------------------------------- reading the model's shape
def model_config(name: str) -> tuple[dict | None, Path | None]:
    """``(config dict, local folder or None)`` for a ``ModelSettings.name``, without loading any weights."""
    from toolkit.load import DEFAULT_DIR, TINY_CONFIG, TINY_DIR, cache_dir

    presets = {"tiny": (TINY_CONFIG | {"model_type": "llama"}, TINY_DIR),
               "default": (SMOLLM2_CONFIG, DEFAULT_DIR)}
    if name in presets:
        config, folder = presets[name]
        folder = cache_dir() / folder
        return config, folder if folder.is_dir() else None
    folder = Path(name).expanduser()
    if (folder / "config.json").is_file():
        return json.loads((folder / "config.json").read_text()), folder
    try:  # an HF hub name: fetch config.json only (a few KB), never the weights
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(name, "config.json")).read_text()), None
    except Exception:  # offline, private, or not a model: the caller skips the check
        return None, None


def linear_shapes(config: dict) -> dict[str, tuple[int, int]]:
    """(d_out, k_in) of each Linear layer in one block of a Llama-style model."""
    h, inter = config["hidden_size"], config["intermediate_size"]
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or h // heads
    kv = config.get("num_key_value_heads") or heads
    return {"q_proj": (heads * head_dim, h), "k_proj": (kv * head_dim, h), "v_proj": (kv * head_dim, h),
            "o_proj": (h, heads * head_dim), "gate_proj": (inter, h), "up_proj": (inter, h), "down_proj": (h, inter)}


def count_params(config: dict, folder: Path | None, targets: list[str], r: int) -> dict:
    """Parameters of the base (``total``, ``linear``: those in Linear layers) and of LoRA at rank r."""
    files = sorted(folder.glob("*.safetensors")) if folder else []
    if files:  # exact: tensor shapes from the file headers (a few KB read per file)
        from toolkit.guard import shapes

        found = {k: v for f in files for k, v in shapes(f).items()}
        lora = sum(r * (s[0] + s[1]) for k, s in found.items()
                   if len(s) == 2 and k.endswith(".weight") and k.rsplit(".", 2)[-2] in targets)
        linear = sum(math.prod(s) for k, s in found.items() if len(s) == 2 and "embed" not in k and "lm_head" not in k)
        return {"total": sum(math.prod(s) for s in found.values()), "linear": linear, "lora": lora,
                "source": f"safetensors headers in {folder}"}
    h, vocab, layers = config["hidden_size"], config["vocab_size"], config["num_hidden_layers"]
    blocks = linear_shapes(config)
    linear = layers * sum(d * k for d, k in blocks.values())
    embeddings = vocab * h * (1 if config.get("tie_word_embeddings", True) else 2)
    norms = layers * 2 * h + h
    lora = layers * sum(r * (d + k) for name, (d, k) in blocks.items() if name in targets)
    return {"total": linear + embeddings + norms, "linear": linear, "lora": lora, "source": "config.json"}


# --------------------------------------------------------------------------- the estimate
def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def estimate_memory(model="default", lora_r: int = 16, batch_size: int = 8, seq_len: int = 512,
                    target_modules: list[str] | None = None, dtype: str = "auto", load_in_4bit: bool = False,
                    gradient_checkpointing: bool = False, device: str | None = None) -> dict | None:
    """Bytes a LoRA training run needs, by part; None when the model's config cannot be read.

    Args:
        model: a ``ModelSettings``, a model name/path as in ``ModelSettings.name``, or a config dict.
    Returns:
        ``{"bytes": {weights, lora_params, lora_grads, adamw_states, activations, logits, runtime},
        "total_bytes", "weights_bytes_by_dtype", "params", "device", "dtype", ...}``.
    """
    from toolkit.settings import DEFAULT_TARGETS, ModelSettings

    if isinstance(model, ModelSettings):
        dtype, load_in_4bit, seq_len, model = model.dtype, model.load_in_4bit, seq_len or model.max_seq_length, model.name
    config, folder = (model, None) if isinstance(model, dict) else model_config(model)
    if config is None:
        return None
    config = {**config.get("text_config", {}), **config}  # multimodal configs nest the language model
    device = device or _device()
    if dtype == "auto":
        dtype = "bfloat16"  # what Unsloth picks on CPUs and GPUs with bf16 (fp16 otherwise: same size)
    targets = list(target_modules or DEFAULT_TARGETS)
    params = count_params(config, folder, targets, lora_r)
    width = BYTES[dtype]
    other = params["total"] - params["linear"]
    by_dtype = {name: params["total"] * size for name, size in BYTES.items()}
    by_dtype["4bit"] = int(params["linear"] * FOUR_BIT + other * 2)
    four_bit = load_in_4bit and device == "cuda"  # bitsandbytes 4-bit is GPU-only; on CPU the model loads in 16-bit
    h, inter, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    tokens = batch_size * seq_len
    per_layer = tokens * (17 * h + 8 * inter) * width // 2
    activations = layers * tokens * h * width + per_layer if gradient_checkpointing else layers * per_layer
    parts = {
        "weights": by_dtype["4bit"] if four_bit else by_dtype[dtype],
        "lora_params": params["lora"] * 4,
        "lora_grads": params["lora"] * 4,
        "adamw_states": params["lora"] * 8,
        "activations": activations,
        "logits": tokens * config["vocab_size"] * 4,
        "runtime": RUNTIME_BYTES[device],
    }
    return {"model": model if isinstance(model, str) else config.get("_name_or_path", "config"),
            "params": params, "device": device, "dtype": "4bit" if four_bit else dtype,
            "batch_size": batch_size, "seq_len": seq_len, "lora_r": lora_r,
            "gradient_checkpointing": gradient_checkpointing, "weights_bytes_by_dtype": by_dtype,
            "bytes": parts, "total_bytes": sum(parts.values())}


def available_memory(device: str | None = None) -> int:
    """Free bytes now: ``torch.cuda.mem_get_info`` on a GPU, psutil's ``available`` RAM on CPU."""
    device = device or _device()
    if device == "cuda":
        import torch

        return torch.cuda.mem_get_info()[0]
    import psutil

    return psutil.virtual_memory().available


KNOBS = {  # part of the estimate -> what to turn down, in settings names
    "activations": "train.batch_size (raise train.grad_accum to keep the effective batch), model.max_seq_length, "
                   "or lora.gradient_checkpointing: unsloth",
    "logits": "train.batch_size or model.max_seq_length",
    "weights": "a smaller model.name, or model.load_in_4bit: true on a GPU",
    "lora_params": "lora.r or fewer lora.target_modules",
    "lora_grads": "lora.r or fewer lora.target_modules",
    "adamw_states": "lora.r or fewer lora.target_modules",
    "runtime": "closing other programs",
}


def check_fits(model, lora=None, train=None, available: int | None = None, factor: float = 1.5) -> dict | None:
    """Estimate a run from its settings and raise ``ResourceError`` if it clearly won't fit; else return the estimate.

    Call it before loading anything: ``check_fits(settings.model, settings.lora, settings.train)``.
    Args:
        model / lora / train: ``ModelSettings`` / ``LoraSettings`` / ``TrainSettings`` (lora, train optional).
        available: free bytes (default: measured now on the device that will train).
        factor: refuse only when the estimate exceeds ``factor × available``.
    """
    from toolkit.settings import LoraSettings, TrainSettings

    lora, train = lora or LoraSettings(), train or TrainSettings()
    estimate = estimate_memory(model, lora.r, train.batch_size, model.max_seq_length, lora.target_modules,
                               gradient_checkpointing=lora.gradient_checkpointing != "false")
    if estimate is None:
        warnings.warn(f"model.name = {model.name!r}: could not read its config.json, so memory was not checked", stacklevel=2)
        return None
    available = available_memory(estimate["device"]) if available is None else available
    estimate["available_bytes"] = available
    if estimate["total_bytes"] > factor * available:
        parts = sorted(estimate["bytes"].items(), key=lambda kv: -kv[1])
        breakdown = ", ".join(f"{k} {v / GIB:.1f}" for k, v in parts)
        knobs = list(dict.fromkeys(KNOBS[k] for k, _ in parts[:2]))
        raise ResourceError(
            f"model.name = {model.name!r} with train.batch_size = {train.batch_size}, model.max_seq_length = "
            f"{model.max_seq_length}, lora.r = {lora.r} needs about {estimate['total_bytes'] / GIB:.1f} GiB "
            f"({breakdown} GiB) but only {available / GIB:.1f} GiB is free on {estimate['device']}. "
            f"Turn down {'; or '.join(knobs)}.")
    return estimate
