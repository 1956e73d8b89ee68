"""Typed settings for every step, loadable from YAML/JSON presets and validated once.

Settings flow one way: a preset in ``configs/`` (or a notebook) builds a ``RunSettings``; it is
validated here, passed down to each step, and saved as JSON beside every artifact it produced.

Every problem found is reported at once (like torchtune's config checks), and each message names
the field, the bad value and the fix::

    >>> RunSettings.from_dict({"lora": {"r": 0}})
    Traceback (most recent call last):
    SettingsError: 1 problem in settings:
      - lora.r = 0: must be a positive integer (LoRA rank, e.g. 8 or 16)

Other modules add their own sections (``PokerSettings``, ``ArenaSettings``…) by defining a
dataclass with a ``problems()`` method and a field on ``RunSettings``.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml


class SettingsError(ValueError):
    """One or more invalid settings; ``.problems`` lists them as ``"field = value: fix"``."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem{'s' if len(problems) > 1 else ''} in settings:\n{lines}")


def problem(name: str, value: Any, fix: str) -> str:
    """Format one problem the same way everywhere: field, bad value, what to do instead."""
    return f"{name} = {value!r}: {fix}"


# --------------------------------------------------------------------------- sections
@dataclass
class ModelSettings:
    name: str = "default"  # "default" = embedded SmolLM2-135M-Instruct, "tiny" = random 2-layer test model, or any HF name / local path
    max_seq_length: int = 512  # longest tokenized row; longer rows are reported by data validation
    load_in_4bit: bool = False  # QLoRA via bitsandbytes; needs a CUDA GPU (ignored with a warning on CPU)
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"  # "auto" lets Unsloth pick (bf16 where supported)
    trust_remote_code: bool = False  # run Python shipped with a hub model; off unless you trust its author
    allow_pickle: bool = False  # accept .bin/.pt weights (unpickling can run code); off unless you trust the file

    def problems(self, p: str = "model") -> list[str]:
        out = []
        if not self.name.strip():
            out.append(problem(f"{p}.name", self.name, 'give "default", "tiny", an HF model name or a local path'))
        if self.max_seq_length <= 0:
            out.append(problem(f"{p}.max_seq_length", self.max_seq_length, "must be a positive number of tokens, e.g. 512"))
        return out


DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class LoraSettings:
    r: int = 16  # rank of B (d×r) and A (r×k); trainable params per module = r·(d+k)
    alpha: float = 16.0  # scaling = alpha / r (or alpha / sqrt(r) with rsLoRA)
    dropout: float = 0.0  # dropout on the LoRA input path; 0 lets Unsloth use its fast path
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))  # Linear layers to adapt
    use_rslora: bool = False  # rank-stabilised scaling alpha/sqrt(r): keeps update size stable as r grows
    gradient_checkpointing: Literal["unsloth", "true", "false"] = "false"  # "unsloth" offloads activations; measured not to pay on CPU at 512 tokens
    seed: int = 3407  # seeds A's random init (B starts at zero)
    last_layers: int = 0  # adapt only the last N decoder blocks (0 = all). Backward then stops at the lowest adapted
    # block, so training steps get cheaper: the last 15 of SmolLM2's 30 blocks train 1.41x faster per step (same bench)

    def problems(self, p: str = "lora") -> list[str]:
        out = []
        if self.r <= 0:
            out.append(problem(f"{p}.r", self.r, "must be a positive integer (LoRA rank, e.g. 8 or 16)"))
        if self.alpha <= 0:
            out.append(problem(f"{p}.alpha", self.alpha, "must be > 0 (common choices: alpha = r or 2·r)"))
        if not 0 <= self.dropout < 1:
            out.append(problem(f"{p}.dropout", self.dropout, "must be in [0, 1); 0 is fastest"))
        if self.last_layers < 0:
            out.append(problem(f"{p}.last_layers", self.last_layers, "must be >= 0 (0 = every decoder block, N = the last N)"))
        if not self.target_modules:
            out.append(problem(f"{p}.target_modules", self.target_modules, f"list at least one module, e.g. {DEFAULT_TARGETS[:4]}"))
        return out


@dataclass
class TrainSettings:
    batch_size: int = 8  # rows per device step
    grad_accum: int = 1  # steps accumulated per optimizer update (effective batch = batch_size·grad_accum)
    lr: float = 2e-4  # AdamW learning rate; LoRA tolerates ~10x the full fine-tuning rate
    max_steps: int = 60  # optimizer updates; 0 means "use epochs"
    epochs: float = 1.0  # passes over the data when max_steps = 0
    warmup_steps: int = 5  # linear warm-up updates
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"  # LR schedule after warm-up
    weight_decay: float = 0.0  # AdamW weight decay on LoRA weights
    eval_steps: int = 0  # evaluate on the validation split every N updates; 0 = only at the end
    logging_steps: int = 1  # record the loss every N updates
    save_steps: int = 0  # write a resumable checkpoint every N updates; 0 = none
    output_dir: str = "runs/default"  # where checkpoints, history.json and settings.json go
    seed: int = 3407  # data order and dropout
    completion_only_loss: bool = True  # loss on assistant/completion tokens only
    group_by_length: bool = True  # batch rows of similar length to cut padding waste; turn it off when length
    # tracks the answer (poker: the street), or every batch is one kind of row (see configs/demo.yaml)
    shared_prefix: bool = True  # run the prompt tokens every row of a batch starts with once per batch, not once per row
    # (same loss and gradients; 1.37x faster steps on the poker data, whose rows share an ~83-token start: bench/train_shortcuts.py)
    cpu_compile: bool = True  # CPU only: torch.compile each decoder layer while training (Unsloth's UNSLOTH_CPU_COMPILE), eager again after; 1.1-1.3x faster steps here (bench/RESULTS.md)

    def problems(self, p: str = "train") -> list[str]:
        out = []
        for name in ("batch_size", "grad_accum"):
            if getattr(self, name) <= 0:
                out.append(problem(f"{p}.{name}", getattr(self, name), "must be a positive integer"))
        if self.lr <= 0:
            out.append(problem(f"{p}.lr", self.lr, "must be > 0, e.g. 2e-4 for LoRA"))
        if self.max_steps < 0:
            out.append(problem(f"{p}.max_steps", self.max_steps, "must be >= 0 (0 trains for `epochs` instead)"))
        if self.max_steps == 0 and self.epochs <= 0:
            out.append(problem(f"{p}.epochs", self.epochs, "must be > 0 when max_steps = 0"))
        for name in ("warmup_steps", "eval_steps", "save_steps", "weight_decay"):
            if getattr(self, name) < 0:
                out.append(problem(f"{p}.{name}", getattr(self, name), "must be >= 0"))
        if self.logging_steps <= 0:
            out.append(problem(f"{p}.logging_steps", self.logging_steps, "must be a positive integer"))
        if not self.output_dir.strip():
            out.append(problem(f"{p}.output_dir", self.output_dir, "give a folder, e.g. runs/my-run"))
        return out


# --------------------------------------------------------------------------- generic loading
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _coerce(tp: Any, value: Any, name: str, errors: list[str]) -> Any:
    """Check ``value`` against the annotation ``tp``; ints widen to floats, nothing else converts."""
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            errors.append(problem(name, value, f"must be a mapping of {tp.__name__} fields"))
            return tp()
        return _from_dict(tp, value, name, errors)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            errors.append(problem(name, value, f"must be one of {list(choices)}"))
            return choices[0]
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, name, errors)
    if origin is list:
        (item,) = get_args(tp) or (Any,)
        if not isinstance(value, list):
            errors.append(problem(name, value, f"must be a list of {_type_name(item)}"))
            return []
        return [_coerce(item, v, f"{name}[{i}]", errors) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            errors.append(problem(name, value, "must be a mapping"))
            return {}
        _, vt = get_args(tp) or (Any, Any)
        return {k: _coerce(vt, v, f"{name}.{k}", errors) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads "2e-4" (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp in (int, float) and isinstance(value, bool) or not isinstance(value, tp):
        errors.append(problem(name, value, f"must be of type {_type_name(tp)}, not {type(value).__name__}"))
        return value
    return value


def _from_dict(cls: type, data: dict, prefix: str, errors: list[str]) -> Any:
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            where = f"{prefix}.{key}" if prefix else key
            errors.append(problem(where, data[key], f"unknown setting; valid keys here are {sorted(names)}"))
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            where = f"{prefix}.{f.name}" if prefix else f.name
            kwargs[f.name] = _coerce(hints[f.name], data[f.name], where, errors)
    return cls(**kwargs)


def collect_problems(obj: Any, prefix: str = "") -> list[str]:
    """Run ``problems()`` on a settings object and on every nested settings section."""
    out = []
    if hasattr(obj, "problems"):
        try:
            out += obj.problems(prefix) if prefix else obj.problems()
        except TypeError:  # a value of the wrong type, already reported, can break a range check
            pass
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out += collect_problems(value, f"{prefix}.{f.name}" if prefix else f.name)
    return out


def build(cls: type, data: dict | None = None) -> Any:
    """Build and validate a settings dataclass from a plain dict; raise ``SettingsError`` listing every problem."""
    errors: list[str] = []
    obj = _from_dict(cls, data or {}, "", errors)
    errors += [p for p in collect_problems(obj) if p not in errors]
    if errors:
        raise SettingsError(errors)
    return obj


def to_dict(obj: Any) -> dict:
    return dataclasses.asdict(obj)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"lora.r=8"`` -> (["lora", "r"], 8). Values are parsed as YAML, so 2e-4, true and [a, b] work."""
    if "=" not in text:
        raise SettingsError([problem("--set", text, "write overrides as section.key=value, e.g. lora.r=8")])
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw) if raw.strip() else ""
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Merge ``--set a.b=value`` overrides into a nested dict (unknown keys are caught by ``build``)."""
    data = json.loads(json.dumps(data))
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SettingsError([problem(text, value, f"'{part}' is not a section")])
        node[path[-1]] = value
    return data


def read_file(path: str | Path) -> dict:
    """Read a YAML or JSON settings file into a dict, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"settings file {path} does not exist; presets live in configs/ (e.g. configs/demo.yaml)")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise SettingsError([problem(str(path), "…", f"is not valid YAML/JSON: {exc}")]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError([problem(str(path), type(data).__name__, "must hold a mapping of sections")])
    return data


def save_json(obj: Any, path: str | Path) -> Path:
    """Save settings as JSON beside the artifact they produced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = to_dict(obj) if dataclasses.is_dataclass(obj) else obj
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path
