"""Small helpers the notebooks need that are more than a few lines: reuse a trained run, show a
label mask, plot a loss curve, pull one LoRA layer apart. Each is called from ``notebooks/*.ipynb``.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

from toolkit.settings import to_dict

# Sections that decide what an adapter is; the arena and eval sections only decide how it is measured.
TRAINING_SECTIONS = ("model", "lora", "train", "spots", "data")


# --------------------------------------------------------------------------- runs
def variant(settings, *overrides: str):
    """A copy of ``RunSettings`` with ``section.key=value`` overrides, e.g. ``variant(s, "name=seed1", "lora.seed=1")``.

    When ``name`` (or ``runs_dir``) changes, ``train.output_dir`` follows it if it was the old run's default
    folder and is not overridden too.
    """
    from toolkit.pipeline import RunSettings
    from toolkit.settings import apply_overrides, build

    data = apply_overrides(to_dict(settings), list(overrides))
    new = build(RunSettings, data)
    if new.train.output_dir == settings.train.output_dir == str(settings.run_dir / "checkpoints"):
        new.train.output_dir = str(new.run_dir / "checkpoints")
    return new


def _same_training(saved: dict, settings) -> bool:
    now = to_dict(settings)
    return all(saved.get(k) == json.loads(json.dumps(now[k])) for k in TRAINING_SECTIONS)


def ensure_adapter(settings, progress: bool = True) -> Path:
    """``runs/<name>/adapter``, trained now (data + SFT via ``toolkit.pipeline``) unless a previous lesson
    already saved one with the same model/lora/train/spots/data settings.

    Returns:
        the adapter folder (load it with ``toolkit.export.load_adapters``).
    """
    from toolkit import pipeline

    folder = settings.run_dir / "adapter"
    saved = folder / "settings.json"
    if saved.is_file() and (folder / "toolkit_export.json").is_file() and _same_training(json.loads(saved.read_text()), settings):
        print(f"reusing {folder} (same settings)")
        return folder
    print(f"training {folder} (no adapter with these settings yet)")
    pipeline.step_data(settings, progress)
    pipeline.step_train(settings)
    return folder


# --------------------------------------------------------------------------- LoRA
def lora_parts(layer, adapter: str = "default"):
    """One PEFT LoRA layer as float32 tensors: ``(W0, A, B, scaling)``.

    Returns:
        W0 (d, k) the frozen weight, A (r, k), B (d, r) and the scalar alpha/r (or alpha/sqrt(r) with rsLoRA),
        so that the layer computes ``x @ (W0 + scaling * B @ A).T``.
    """
    W0 = layer.base_layer.weight.detach().float().clone()
    A = layer.lora_A[adapter].weight.detach().float().clone()
    B = layer.lora_B[adapter].weight.detach().float().clone()
    return W0, A, B, float(layer.scaling[adapter])


def param_groups(model) -> dict[str, int]:
    """Parameter count per part of a decoder: embeddings, attention, MLP, norms, LM head (tied = counted once)."""
    groups = {"embeddings": 0, "attention": 0, "mlp": 0, "norms": 0, "lm_head": 0, "other": 0}
    for name, p in model.named_parameters():  # tied weights appear once in named_parameters
        kind = ("embeddings" if "embed" in name else "attention" if "self_attn" in name else "mlp" if ".mlp." in name
                else "norms" if "norm" in name else "lm_head" if "lm_head" in name else "other")
        groups[kind] += p.numel()
    return {k: v for k, v in groups.items() if v}


# --------------------------------------------------------------------------- data
def mask_html(pairs: list[tuple[str, bool]], max_tokens: int = 400):
    """Tokens from ``toolkit.data.show_mask`` coloured by whether the loss sees them (green) or not (grey)."""
    from IPython.display import HTML

    cells = []
    for text, trained in pairs[:max_tokens]:
        shown = html.escape(text).replace("\n", "↵<br>") or "␣"
        style = "background:#b7e4b0;font-weight:bold" if trained else "background:#eee;color:#666"
        cells.append(f'<span style="{style};border:1px solid #ccc;margin:1px;padding:0 2px;'
                     f'font-family:monospace;font-size:12px">{shown}</span>')
    more = f" … {len(pairs) - max_tokens} more tokens" if len(pairs) > max_tokens else ""
    n_trained = sum(t for _, t in pairs)
    legend = (f"<p><b>{len(pairs)} tokens</b>: <span style='background:#eee'>grey = prompt, label -100 (no loss)</span>, "
              f"<span style='background:#b7e4b0'>green = {n_trained} trained tokens</span>{more}</p>")
    return HTML(legend + '<div style="line-height:1.9">' + "".join(cells) + "</div>")


# --------------------------------------------------------------------------- training
def plot_loss(result, path: str | Path | None = None):
    """Training and validation loss per optimizer step from a ``TrainResult`` (a matplotlib Figure)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    if result.train_loss:
        ax.plot(*zip(*result.train_loss), marker=".", label="training loss (answer tokens)")
    if result.eval_loss:
        ax.plot(*zip(*result.eval_loss), marker="o", ls="--", label="validation loss")
    ax.set(xlabel="optimizer step", ylabel="cross-entropy (nats per token)",
           title=f"SFT loss, {result.steps} steps in {result.runtime_s:.0f} s")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
