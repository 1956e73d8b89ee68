"""Step 5 — export: adapters only, or merged 16-bit weights; reload; verify; size report.

Every export is written into a temp folder beside the target and renamed into place at the end, so a
crash or a full disk never leaves a folder that looks like a valid adapter or model. A
``toolkit_export.json`` manifest (written last) records the base model, vocabulary size and the
shapes of the adapter, which ``load_adapters`` checks before attaching anything.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

MANIFEST = "toolkit_export.json"
ADAPTER_FILE = "adapter_model.safetensors"


class ExportError(ValueError):
    """An export that cannot be written or a folder that is not a valid export."""


def _atomic_write(target: str | Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp)`` then rename tmp -> target; on any error nothing is left at target."""
    target = Path(target)
    parent = target.parent
    if not parent.exists():
        parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK):
        raise ExportError(f"cannot write to {parent}: the folder is read-only; choose another output folder")
    tmp = parent / f".partial-{target.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        write(tmp)
        if target.exists():  # replace an older export only once the new one is complete
            old = parent / f".old-{target.name}-{uuid.uuid4().hex[:8]}"
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _manifest(model, tokenizer, kind: str, settings: Any = None) -> dict:
    from toolkit.lora import lora_layers

    shapes = {}
    for name, layer in lora_layers(model):
        for adapter in layer.lora_A:
            shapes[name.replace("base_model.model.", "", 1)] = [
                list(layer.lora_B[adapter].weight.shape), list(layer.lora_A[adapter].weight.shape)]
    config = model.get_base_model().config if hasattr(model, "get_base_model") else model.config
    return {
        "kind": kind,
        "base_model": getattr(model, "toolkit_model_name", None) or config.name_or_path,
        "base_model_path": config.name_or_path,
        "model_type": config.model_type,
        "hidden_size": getattr(config, "hidden_size", None),
        "num_hidden_layers": getattr(config, "num_hidden_layers", None),
        "vocab_size": len(tokenizer),
        "lora_shapes": shapes,
        "settings": asdict(settings) if settings is not None and hasattr(settings, "__dataclass_fields__") else settings,
    }


def save_adapters(model, tokenizer, out_dir: str | Path, settings: Any = None) -> Path:
    """Adapters only: ``adapter_model.safetensors`` + ``adapter_config.json`` + tokenizer + settings JSON."""

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if settings is not None:
            (tmp / "settings.json").write_text(json.dumps(asdict(settings), indent=2, sort_keys=True) + "\n")
        (tmp / MANIFEST).write_text(json.dumps(_manifest(model, tokenizer, "adapters", settings), indent=2) + "\n")

    return _atomic_write(out_dir, write)


def save_merged(model, tokenizer, out_dir: str | Path, settings: Any = None) -> Path:
    """Merge ``W0 + (alpha/r)·B·A`` into every adapted weight and save 16-bit safetensors (Unsloth's merged_16bit)."""
    manifest = _manifest(model, tokenizer, "merged_16bit", settings)

    def write(tmp: Path) -> None:
        model.save_pretrained_merged(str(tmp), tokenizer, save_method="merged_16bit")
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")

    return _atomic_write(out_dir, write)


def check_export(path: str | Path) -> dict:
    """The export's manifest, or an error if the folder is missing, partial or not ours."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist; export adapters first (python -m toolkit export)")
    manifest = path / MANIFEST
    if not manifest.is_file():
        raise ExportError(f"{path} has no {MANIFEST}: it is not a complete toolkit export (interrupted, or written by hand)")
    return json.loads(manifest.read_text())


def load_adapters(path: str | Path, max_seq_length: int = 512):
    """Reload an adapter export as ``(model, tokenizer)``: Unsloth loads the recorded base, then the adapter."""
    from unsloth import FastLanguageModel

    check_export(path)
    model, tokenizer = FastLanguageModel.from_pretrained(model_name=str(path), max_seq_length=max_seq_length,
                                                         load_in_4bit=False)
    return model, tokenizer


def load_merged(path: str | Path, max_seq_length: int = 512):
    """Reload a merged 16-bit export as a plain model (no PEFT)."""
    from unsloth import FastLanguageModel

    check_export(path)
    return FastLanguageModel.from_pretrained(model_name=str(path), max_seq_length=max_seq_length, load_in_4bit=False)


def logits(model, tokenizer, prompts: list[str]):
    """Next-token logits for each prompt, shape (n_prompts, seq_len, vocab), float32, eval mode."""
    import torch

    model.eval()
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits.float()


@dataclass
class VerifyResult:
    max_abs_diff: float  # largest |logit_a - logit_b| over all prompts/positions/tokens
    tolerance: float  # what was allowed (0 = bit-exact)
    argmax_agreement: float  # share of positions whose top token is the same
    passed: bool


VERIFY_PROMPTS = ["The capital of France is", "Your optimal action is:", "def fibonacci(n):"]
MERGED_TOLERANCE = 0.25  # bf16 rounding of merged weights moves logits by up to ~0.1-0.2 on this model


def verify(model_a, model_b, tokenizer, prompts: list[str] | None = None, tolerance: float = 0.0) -> VerifyResult:
    """Compare two models' logits on the same prompts (exact for adapters; ``MERGED_TOLERANCE`` for merged)."""
    prompts = prompts or VERIFY_PROMPTS
    a, b = logits(model_a, tokenizer, prompts), logits(model_b, tokenizer, prompts)
    diff = float((a - b).abs().max())
    agree = float((a.argmax(-1) == b.argmax(-1)).float().mean())
    return VerifyResult(diff, tolerance, agree, diff <= tolerance)


def _bytes(folder: Path, pattern: str) -> int:
    return sum(f.stat().st_size for f in folder.glob(pattern))


@dataclass
class SizeReport:
    adapter_bytes: int  # adapter_model.safetensors
    full_model_bytes: int  # the base checkpoint's *.safetensors
    ratio: float  # full / adapter


def size_report(adapter_dir: str | Path, base_dir: str | Path) -> SizeReport:
    """Bytes on disk: adapter file vs the full base checkpoint it adapts."""
    adapter = (Path(adapter_dir) / ADAPTER_FILE).stat().st_size
    full = _bytes(Path(base_dir), "*.safetensors")
    return SizeReport(adapter, full, full / adapter)
