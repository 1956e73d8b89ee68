"""Step 2 — attach LoRA: wraps Unsloth's ``FastLanguageModel.get_peft_model``.

LoRA (Hu et al., 2021) freezes each target weight ``W0`` (d×k) and learns a low-rank update::

    h = W0·x + (alpha / r) · B·A·x        B: d×r (starts at zero), A: r×k (random), r << min(d, k)

so a module trains ``r·(d+k)`` parameters instead of ``d·k``. ``parameter_report`` lists both per module,
read from the live PEFT layers, and its total must equal PEFT's own trainable count.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from toolkit.settings import LoraSettings


@dataclass
class ModuleRow:
    module: str  # e.g. "model.layers.0.self_attn.q_proj"
    d: int  # output features (rows of W0 and of B)
    k: int  # input features (columns of W0 and of A)
    r: int  # LoRA rank
    frozen: int  # d·k weights of W0, never updated
    trainable: int  # r·(d+k) weights of B and A


@dataclass
class ParameterReport:
    rows: list[ModuleRow]
    lora_trainable: int  # sum of r·(d+k) over adapted modules
    peft_trainable: int  # what PEFT counts as requires_grad (must equal lora_trainable)
    total_params: int  # every parameter of the model, frozen included
    adapted_frozen: int  # sum of d·k over adapted modules

    @property
    def ratio(self) -> float:
        """How many times fewer parameters train in the adapted modules: Σd·k / Σr·(d+k)."""
        return self.adapted_frozen / max(self.lora_trainable, 1)

    def to_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}

    def table(self, max_rows: int = 8) -> str:
        """A plain-text table for notebooks and reports (first rows, then totals)."""
        head = f"{'module':48} {'d':>6} {'k':>6} {'r':>4} {'d·k':>10} {'r·(d+k)':>9}"
        lines = [head, "-" * len(head)]
        for row in self.rows[:max_rows]:
            lines.append(f"{row.module[-48:]:48} {row.d:6} {row.k:6} {row.r:4} {row.frozen:10,} {row.trainable:9,}")
        if len(self.rows) > max_rows:
            lines.append(f"... {len(self.rows) - max_rows} more modules")
        lines.append(f"{'TOTAL (' + str(len(self.rows)) + ' modules)':48} {'':6} {'':6} {'':4} "
                     f"{self.adapted_frozen:10,} {self.lora_trainable:9,}")
        lines.append(f"trainable = {self.peft_trainable:,} of {self.total_params:,} "
                     f"({100 * self.peft_trainable / self.total_params:.3f}%), {self.ratio:.1f}x fewer in adapted modules")
        return "\n".join(lines)


def lora_scaling(settings: LoraSettings) -> float:
    """alpha / r, or alpha / sqrt(r) with rsLoRA (keeps the update's scale stable as r grows)."""
    return settings.alpha / (math.sqrt(settings.r) if settings.use_rslora else settings.r)


def _gradient_checkpointing(value: str):
    return {"unsloth": "unsloth", "true": True, "false": False}[value]


def attach_lora(model, settings: LoraSettings | None = None):
    """Wrap ``model`` with LoRA adapters via Unsloth; returns the PEFT model (base weights frozen)."""
    from unsloth import FastLanguageModel

    settings = settings or LoraSettings()
    leaf_names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in settings.target_modules if m not in leaf_names]
    if missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"})
        raise ValueError(f"lora.target_modules: {missing} not found in this model; its Linear layers are {linear}")
    n_layers = getattr(model.config.get_text_config(), "num_hidden_layers", None)
    layers = None
    if settings.last_layers:
        if n_layers is None or settings.last_layers > n_layers:
            raise ValueError(f"lora.last_layers = {settings.last_layers}: this model has {n_layers} decoder blocks; "
                             f"use 1..{n_layers}, or 0 for all of them")
        layers = list(range(n_layers - settings.last_layers, n_layers))
    peft_model = FastLanguageModel.get_peft_model(
        model,
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        use_rslora=settings.use_rslora,
        use_gradient_checkpointing=_gradient_checkpointing(settings.gradient_checkpointing),
        random_state=settings.seed,
        bias="none",
        **({"layers_to_transform": layers} if layers else {}),
    )
    peft_model.toolkit_model_name = getattr(model, "toolkit_model_name", None)
    return peft_model


def lora_layers(model):
    """Yield ``(name, layer)`` for every PEFT LoRA layer (those holding ``lora_A``/``lora_B``)."""
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and hasattr(module, "base_layer") and len(module.lora_A):
            yield name, module


def parameter_report(model) -> ParameterReport:
    """Per adapted module: d, k, r, d·k frozen and r·(d+k) trainable, read from the live layers."""
    rows = []
    for name, layer in lora_layers(model):
        for adapter in layer.lora_A:
            a = layer.lora_A[adapter].weight  # (r, k)
            b = layer.lora_B[adapter].weight  # (d, r)
            r, k = a.shape
            d = b.shape[0]
            clean = name.replace("base_model.model.", "", 1)
            rows.append(ModuleRow(clean, d, k, r, d * k, r * (d + k)))
    peft_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return ParameterReport(rows, sum(r.trainable for r in rows), peft_trainable, total, sum(r.frozen for r in rows))
