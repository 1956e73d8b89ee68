"""Step 5 — export: adapters only, or merged 16-bit weights; reload; verify; size report.

Every export is written into a temp folder beside the target and renamed into place at the end, so a
crash or a full disk never leaves a folder that looks like a valid adapter or model (an older export
at the same place survives a failed one). A ``toolkit_export.json`` manifest (written last) records
the base model, its shape (model_type, hidden_size, layers, vocabulary), the adapter's tensor shapes and
the size and sha256 of every .safetensors file; ``load_adapters`` checks all of it against the base it
is about to load, and reads weights from safetensors only (see ``toolkit.guard``), before PEFT runs.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from toolkit.guard import UnsafeFileError, check_fingerprint, fingerprint, read_header, refuse_pickle  # noqa: F401 (re-export)

MANIFEST = "toolkit_export.json"
ADAPTER_FILE = "adapter_model.safetensors"


class ExportError(ValueError):
    """An export that cannot be written, a folder that is not a valid export, or an adapter/base mismatch."""


def _atomic_write(target: str | Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp)`` then rename tmp -> target; on any error nothing is left at target.

    A missing parent folder is created. A read-only parent is refused before anything is written:
    ``os.access`` sees read-only mounts and permissions (root bypasses permission bits, not ``ro`` mounts).
    """
    target = Path(target)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. a file where a folder should be, or a read-only mount
        raise ExportError(f"cannot create the output folder {parent} ({exc.strerror}); choose another output folder") from exc
    if not os.access(parent, os.W_OK):
        raise ExportError(f"cannot write to {parent}: the folder is read-only; choose another output folder "
                          "or make it writable")
    tmp = parent / f".partial-{target.name}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        write(tmp)
        if target.exists():  # replace an older export only once the new one is complete
            old = parent / f".old-{target.name}-{uuid.uuid4().hex[:8]}"
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        # Still an OSError (callers may catch it as one), with a message that names the folder and the fix.
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            free = shutil.disk_usage(parent).free / 2**20
            raise OSError(exc.errno, f"No space left on device: the disk filled up while writing {target} ({free:.0f} MiB "
                          f"free now on {parent}); nothing was written there (an older export, if any, is unchanged). "
                          "Free some space or export to another disk") from exc
        if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise OSError(exc.errno, f"cannot write to {parent} ({exc.strerror}); nothing was written there. Choose "
                          "another output folder or make it writable") from exc
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
        "intermediate_size": getattr(config, "intermediate_size", None),
        "base_vocab_size": getattr(config, "vocab_size", None),  # rows of the embedding matrix
        "vocab_size": len(tokenizer),  # tokens the tokenizer trained with knows
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
        manifest = {**_manifest(model, tokenizer, "adapters", settings), "files": fingerprint(tmp)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")

    return _atomic_write(out_dir, write)


def save_merged(model, tokenizer, out_dir: str | Path, settings: Any = None) -> Path:
    """Merge ``W0 + (alpha/r)·B·A`` into every adapted weight and save 16-bit safetensors (Unsloth's merged_16bit)."""
    manifest = _manifest(model, tokenizer, "merged_16bit", settings)

    def write(tmp: Path) -> None:
        model.save_pretrained_merged(str(tmp), tokenizer, save_method="merged_16bit")
        (tmp / MANIFEST).write_text(json.dumps({**manifest, "files": fingerprint(tmp)}, indent=2) + "\n")

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


# --------------------------------------------------------------------------- reloading, with checks first
def _base_path(path: Path, base: str | None) -> str:
    """The base model the adapter will be attached to: ``base`` if given, else the one adapter_config.json names."""
    if base is not None:
        from toolkit.load import resolve_model_path

        return resolve_model_path(base)
    return json.loads((path / "adapter_config.json").read_text())["base_model_name_or_path"]


def _describe(info: dict) -> str:
    return (f"{info.get('model_type')}, hidden_size {info.get('hidden_size')}, {info.get('num_hidden_layers')} layers, "
            f"vocab {info.get('vocab_size')}")


def check_pairing(path: str | Path, base: str | None = None, allow_pickle: bool = False) -> dict:
    """Check, without loading any weights, that the adapter export in ``path`` fits the base it will load.

    Checks: weights are safetensors (unless ``allow_pickle``); every file is whole and unchanged since
    export; the base's config (model_type, hidden_size, layers, vocabulary) equals the one trained on;
    each LoRA A (r×k) and B (d×r) fits the base Linear weight (d×k); the tokenizer has the vocabulary
    trained with. Returns the manifest; raises ``ExportError``/``UnsafeFileError`` naming both models.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist; export adapters first (python -m toolkit export)")
    refuse_pickle(path, ADAPTER_FILE, allow_pickle)
    manifest = check_export(path)
    files = manifest.get("files", {})
    if allow_pickle:  # the caller accepted weights converted to pickle: a safetensors file gone is expected
        files = {name: info for name, info in files.items() if (path / name).exists()}
    check_fingerprint(path, files)
    trained = {k: manifest.get(k) for k in ("model_type", "hidden_size", "num_hidden_layers")}
    trained["vocab_size"] = manifest.get("base_vocab_size")
    base_path = _base_path(path, base)
    fix = (f"Load it onto the base it was trained on (base={manifest.get('base_model')!r}) or retrain the adapter "
           f"on {base or base_path!r}")
    config_file = Path(base_path) / "config.json"
    if config_file.is_file():  # an HF name not on disk yet is checked by PEFT when it loads
        config = json.loads(config_file.read_text())
        config = {**config.get("text_config", {}), **config}
        wrong = [k for k, v in trained.items() if v is not None and config.get(k) != v]
        if wrong:
            raise ExportError(
                f"adapter {path} was trained on base {manifest.get('base_model')!r} ({_describe(trained)}) but the base "
                f"to load is {base or base_path!r} ({_describe(config)}): {', '.join(wrong)} differ. {fix}")
        refuse_pickle(base_path, "*.safetensors", allow_pickle)
    if (path / ADAPTER_FILE).is_file():
        header = read_header(path / ADAPTER_FILE)
        base_shapes = {}
        for file in Path(base_path).glob("*.safetensors") if Path(base_path).is_dir() else []:
            base_shapes.update({k: v["shape"] for k, v in read_header(file).items()})
        for key, info in header.items():  # base_model.model.<module>.lora_A.weight
            module, part = key.removeprefix("base_model.model.").rsplit(".lora_", 1)
            recorded = manifest.get("lora_shapes", {}).get(module)
            want = recorded[0 if part.startswith("B") else 1] if recorded else None
            if want is not None and info["shape"] != want:
                raise ExportError(f"{path / ADAPTER_FILE}: {key} has shape {info['shape']} but the export recorded {want}; "
                                  "the file does not belong to this export. Export the adapter again")
            weight = base_shapes.get(module + ".weight")
            if weight is None:
                continue
            d, k = weight
            fits = info["shape"][0] == d if part.startswith("B") else info["shape"][1] == k
            if not fits:
                raise ExportError(
                    f"adapter {path} (trained on {manifest.get('base_model')!r}) does not fit base {base or base_path!r}: "
                    f"{key} has shape {info['shape']} but {module}.weight is {weight} (d×k; A must be r×{k}, B {d}×r). {fix}")
    return manifest


def _check_tokenizer(path: Path, tokenizer, manifest: dict) -> None:
    if manifest.get("vocab_size") is not None and len(tokenizer) != manifest["vocab_size"]:
        raise ExportError(f"the tokenizer loaded with {path} has {len(tokenizer)} tokens but the adapter was trained with "
                          f"{manifest['vocab_size']} (base {manifest.get('base_model')!r}): token ids would mean different "
                          "words. Use the tokenizer saved with the export (export again if it was replaced)")


def load_adapters(path: str | Path, max_seq_length: int = 512, base: str | None = None, allow_pickle: bool = False):
    """Reload an adapter export as ``(model, tokenizer)`` after ``check_pairing``.

    Args:
        base: a model name as in ``ModelSettings.name`` ("tiny", "default", a folder, an HF name) to attach
            the adapter to; default: the base recorded in the export.
        allow_pickle: accept an ``adapter_model.bin`` (pickle; can run code when loaded) without safetensors.
    """
    from unsloth import FastLanguageModel

    path = Path(path)
    manifest = check_pairing(path, base, allow_pickle)
    if base is None:  # Unsloth reads adapter_config.json, loads its base, then attaches the adapter with PEFT
        model, tokenizer = FastLanguageModel.from_pretrained(model_name=str(path), max_seq_length=max_seq_length,
                                                             load_in_4bit=False, trust_remote_code=False)
    else:
        from peft import PeftModel

        from toolkit.load import load_model
        from toolkit.settings import ModelSettings

        model, tokenizer = load_model(ModelSettings(name=base, max_seq_length=max_seq_length))
        model = PeftModel.from_pretrained(model, str(path))
        model.eval()
    _check_tokenizer(path, tokenizer, manifest)
    model.toolkit_model_name = manifest.get("base_model") if base is None else base
    return model, tokenizer


def load_merged(path: str | Path, max_seq_length: int = 512, allow_pickle: bool = False):
    """Reload a merged 16-bit export as a plain model (no PEFT), from safetensors unless ``allow_pickle``."""
    from unsloth import FastLanguageModel

    refuse_pickle(path, "*.safetensors", allow_pickle)
    manifest = check_export(path)
    check_fingerprint(path, manifest.get("files", {}))
    return FastLanguageModel.from_pretrained(model_name=str(path), max_seq_length=max_seq_length, load_in_4bit=False,
                                             trust_remote_code=False)


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
