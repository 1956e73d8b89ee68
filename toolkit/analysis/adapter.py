"""Read a PEFT adapter and the base model's weights as plain tensors, without building a model.

A PEFT adapter folder (``model.save_pretrained(...)`` on a ``PeftModel``) holds two files:

* ``adapter_model.safetensors`` with one pair per adapted Linear layer::

      base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight   (r, k)
      base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight   (d, r)

* ``adapter_config.json`` with ``r``, ``lora_alpha``, ``use_rslora``, ``target_modules``,
  ``base_model_name_or_path`` …

We read the file with ``safetensors`` directly (no PEFT model) so that the analysis also works on
adapters whose base model is not on this machine. The module name ``model.layers.0.self_attn.q_proj``
is what both the adapter and the base checkpoint (``model.layers.0.self_attn.q_proj.weight``) use.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file

ADAPTER_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
# "<prefix>.<module>.lora_A[.<adapter name>].weight"; the adapter name only appears in live state dicts.
_LORA_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight$")
# 2-D weights that are not LoRA targets in practice (token tables and the output head).
_NOT_LINEAR = ("embed", "lm_head", "wte", "wpe")


def lora_scaling(alpha: float, r: int, use_rslora: bool = False) -> float:
    """The factor in front of B·A: ``alpha / r`` (LoRA paper) or ``alpha / sqrt(r)`` (rsLoRA)."""
    return alpha / math.sqrt(r) if use_rslora else alpha / r


@dataclass
class Adapter:
    """One LoRA adapter as tensors: ``A[module]`` is (r, k), ``B[module]`` is (d, r)."""

    path: Path | None  # folder holding adapter_model.safetensors (None when built from a live model)
    config: dict[str, Any]  # adapter_config.json as PEFT wrote it
    A: dict[str, torch.Tensor]  # module name -> lora_A weight, shape (r, k)
    B: dict[str, torch.Tensor]  # module name -> lora_B weight, shape (d, r)

    @property
    def modules(self) -> list[str]:
        return sorted(self.A, key=_natural_key)

    @property
    def name(self) -> str:
        if self.path is None:
            return "adapter"
        # runs/my-run/adapter -> "my-run"; a bare adapter folder keeps its own name
        return self.path.parent.name if self.path.name == "adapter" else self.path.name

    def rank(self, module: str) -> int:
        return self.A[module].shape[0]

    def scaling(self, module: str) -> float:
        """alpha/r for this module, honouring PEFT's per-module ``alpha_pattern`` (matched on the name's end)."""
        alpha = self.config.get("lora_alpha", 8)
        for pattern, value in (self.config.get("alpha_pattern") or {}).items():
            if module == pattern or module.endswith("." + pattern):
                alpha = value
        return lora_scaling(alpha, self.rank(module), bool(self.config.get("use_rslora", False)))

    def shapes(self) -> dict[str, tuple[int, int]]:
        """module -> (d, k), the shape of the adapted W0 (d = B's rows, k = A's columns)."""
        return {m: (self.B[m].shape[0], self.A[m].shape[1]) for m in self.modules}


def find_adapter_dir(path: str | Path) -> Path:
    """Accept a run folder (adapter in ``RUN/adapter/``) or the adapter folder itself."""
    path = Path(path)
    for candidate in (path, path / "adapter"):
        if (candidate / ADAPTER_FILE).is_file():
            return candidate
    raise FileNotFoundError(
        f"adapter = {str(path)!r}: no {ADAPTER_FILE} there or in {path / 'adapter'}; "
        "pass a run folder written by the train step or a folder from PeftModel.save_pretrained()"
    )


def split_lora_state(state: dict[str, torch.Tensor]) -> tuple[dict, dict, list[str]]:
    """Sort a PEFT state dict into A (r, k) and B (d, r) per module, plus the keys that are not LoRA pairs."""
    A, B, other = {}, {}, []
    for key, tensor in state.items():
        match = _LORA_KEY.match(key)
        if match is None:
            other.append(key)  # e.g. modules_to_save copies or lora_embedding_A/B
            continue
        (A if match["ab"] == "A" else B)[match["module"]] = tensor
    unpaired = sorted(set(A) ^ set(B))
    if unpaired:
        raise ValueError(f"lora modules = {unpaired}: have only one of lora_A/lora_B; re-save the adapter with PEFT")
    return A, B, other


def load_adapter(source: str | Path | torch.nn.Module | Adapter) -> Adapter:
    """Load an adapter from a run folder, an adapter folder, or a live ``PeftModel``.

    Returns:
        Adapter with float32 ``A[m]`` (r, k) and ``B[m]`` (d, r) for every adapted module ``m``.
    """
    if isinstance(source, Adapter):
        return source
    if isinstance(source, torch.nn.Module):
        if not hasattr(source, "peft_config"):
            raise ValueError(f"adapter = {type(source).__name__}: not a PeftModel; pass the model returned by get_peft_model()")
        from peft import get_peft_model_state_dict  # only needed for live models

        state = get_peft_model_state_dict(source)
        config = next(iter(source.peft_config.values())).to_dict()
        config["target_modules"] = sorted(config.get("target_modules") or [])
        A, B, _ = split_lora_state({k: v.detach().float().cpu() for k, v in state.items()})
        return Adapter(None, config, A, B)
    folder = find_adapter_dir(source)
    config_file = folder / CONFIG_FILE
    if not config_file.is_file():
        raise FileNotFoundError(f"adapter = {str(folder)!r}: {CONFIG_FILE} is missing; it is written next to {ADAPTER_FILE} by save_pretrained()")
    config = json.loads(config_file.read_text())
    A, B, _ = split_lora_state({k: v.float() for k, v in load_file(folder / ADAPTER_FILE).items()})
    if not A:
        raise ValueError(f"adapter = {str(folder)!r}: no lora_A/lora_B weights in {ADAPTER_FILE}; is this a LoRA adapter?")
    return Adapter(folder, config, A, B)


class BaseWeights:
    """The base model's W0 matrices, read lazily from a local HF checkpoint folder or taken from a module.

    ``base["model.layers.0.self_attn.q_proj"]`` -> W0 of shape (d, k) in float32.
    """

    def __init__(self, source: str | Path | torch.nn.Module):
        self.module: torch.nn.Module | None = None
        self.files: dict[str, Path] = {}  # tensor key -> safetensors file holding it
        if isinstance(source, torch.nn.Module):
            self.module = source
            self.name = type(source).__name__
            return
        folder = Path(source)
        index = folder / "model.safetensors.index.json"
        if index.is_file():  # sharded checkpoint: the index maps each key to its shard
            weight_map = json.loads(index.read_text())["weight_map"]
            self.files = {k: folder / f for k, f in weight_map.items()}
        elif (folder / "model.safetensors").is_file():
            with safe_open(folder / "model.safetensors", "pt") as f:
                self.files = {k: folder / "model.safetensors" for k in f.keys()}
        else:
            raise FileNotFoundError(
                f"base = {str(folder)!r}: no model.safetensors (or .index.json) there; pass a local HF checkpoint "
                "folder (model.save_pretrained(dir)) or the loaded nn.Module"
            )
        self.name = folder.name

    def _key(self, module: str) -> str | None:
        keys = self.files if self.module is None else dict(self.module.named_parameters())
        # a PeftModel names W0 "base_model.model.<module>.base_layer.weight"
        for key in (f"{module}.weight", f"base_model.model.{module}.base_layer.weight", f"{module}.base_layer.weight"):
            if key in keys:
                return key
        return None

    def __contains__(self, module: str) -> bool:
        return self._key(module) is not None

    def __getitem__(self, module: str) -> torch.Tensor:
        key = self._key(module)
        if key is None:
            raise KeyError(f"module = {module!r}: no '{module}.weight' in base {self.name}; is this the adapter's base model?")
        if self.module is not None:
            return dict(self.module.named_parameters())[key].detach().float().cpu()
        with safe_open(self.files[key], "pt") as f:
            return f.get_tensor(key).float()

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """module -> (d, k) for every Linear layer (every 2-D weight except embeddings and the LM head)."""
        if self.module is not None:
            return {  # in a PeftModel W0 sits in "<prefix><module>.base_layer"; skip the lora_A/B Linears
                name.removeprefix("base_model.model.").removesuffix(".base_layer"): tuple(m.weight.shape)
                for name, m in self.module.named_modules()
                if type(m) is torch.nn.Linear and "lora_" not in name and not any(s in name for s in _NOT_LINEAR)
            }
        shapes = {}
        for key, file in self.files.items():
            if not key.endswith(".weight") or any(s in key for s in _NOT_LINEAR):
                continue
            with safe_open(file, "pt") as f:
                shape = f.get_slice(key).get_shape()
            if len(shape) == 2:
                shapes[key.removesuffix(".weight")] = (shape[0], shape[1])
        return dict(sorted(shapes.items(), key=lambda kv: _natural_key(kv[0])))

    def file_bytes(self) -> int:
        """Bytes of the full model on disk (all shards), or of its parameters for an in-memory module."""
        if self.module is not None:
            return sum(p.numel() * p.element_size() for p in self.module.parameters())
        return sum(f.stat().st_size for f in set(self.files.values()))


def _natural_key(name: str) -> list:
    """Sort layers.2 before layers.10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def module_kind(module: str) -> str:
    """'model.layers.3.self_attn.q_proj' -> 'q_proj' (the name used in target_modules)."""
    return module.rsplit(".", 1)[-1]


def layer_index(module: str) -> int | None:
    match = re.search(r"\.(\d+)\.", module)
    return int(match.group(1)) if match else None
