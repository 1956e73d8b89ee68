"""``analyse_runs``: measure the LoRA paper's claims on one or two of the user's runs and write a report.

    analyse_runs("runs/seed1", "runs/seed2", base="runs/base-model", out_dir="runs/seed1/analysis")

writes ``analysis.md`` (a markdown section), ``analysis.json`` (every number) and PNG figures. What it
needs: one adapter for claims 1, 3, 4; a second adapter (another seed or rank, same base) for claim 5;
the base model's weights W0 (a local checkpoint folder or the nn.Module) for claim 6 and the
full-model checkpoint size. Claim 2 (memory) needs training runs: pass ``memory=compare_memory(...)``.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from statistics import mean

import torch

from .adapter import Adapter, BaseWeights, layer_index, load_adapter, module_kind
from .params import checkpoint_report, gpt3_extrapolation, param_rows
from .plots import plot_checkpoint_sizes, plot_memory, plot_params, plot_spectra, plot_subspace
from .spectrum import amplification_rows, spectrum_rows
from .subspace import similarity_rows, subspace_similarity

RANKS = [1, 2, 4, 8, 16, 32, 64]  # ranks on the parameter plot's x axis


def analyse_runs(adapter_a: str | Path | Adapter | torch.nn.Module,
                 adapter_b: str | Path | Adapter | torch.nn.Module | None = None,
                 base: str | Path | torch.nn.Module | None = None,
                 out_dir: str | Path = "analysis",
                 memory: dict | None = None) -> dict:
    """Measure claims 1-6 on saved adapters (run folders, adapter folders or live PeftModels).

    Returns:
        the dict saved as ``out_dir/analysis.json``; ``result["files"]`` lists what was written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    a = load_adapter(adapter_a)
    b = load_adapter(adapter_b) if adapter_b is not None else None
    local = Path(a.config.get("base_model_name_or_path") or "-")
    if base is None and ((local / "model.safetensors").is_file() or (local / "model.safetensors.index.json").is_file()):
        base = local  # the adapter was trained on a local checkpoint that is still here
    w0 = BaseWeights(base) if base is not None else None
    res: dict = {"adapter_a": str(a.path or a.name), "adapter_b": str(b.path or b.name) if b else None,
                 "base": None if w0 is None else w0.name if isinstance(base, torch.nn.Module) else str(base),
                 "config_a": _config_summary(a), "config_b": _config_summary(b) if b else None, "files": []}
    md = [f"## LoRA lab: {a.name}" + (f" vs {b.name}" if b else ""), ""]

    # 1. parameters: d·k -> r·(d+k) per module
    shapes = a.shapes()
    rows = param_rows(shapes, {m: a.rank(m) for m in shapes})
    res["params"] = {"rows": rows, "full": sum(r["full"] for r in rows), "lora": sum(r["lora"] for r in rows)}
    res["params"]["ratio"] = res["params"]["full"] / res["params"]["lora"]
    all_shapes = w0.linear_shapes() if w0 is not None else shapes
    kinds = sorted({module_kind(m) for m in all_shapes})
    adapted = sorted({module_kind(m) for m in shapes})
    target_sets = {"+".join(adapted): adapted, **{k: [k] for k in adapted}, "all Linears": kinds}
    r_plot = a.rank(a.modules[0])
    res["files"].append(_fig(plot_params(all_shapes, RANKS, target_sets, r=r_plot), out / "params.png"))
    md += ["### 1. Trainable parameters: d·k → r·(d+k)", "",
           f"{len(rows)} adapted modules train **{res['params']['lora']:,}** parameters instead of "
           f"**{res['params']['full']:,}** ({res['params']['ratio']:.0f}× fewer).", "",
           "| module kind | d × k | r | d·k | r·(d+k) | ratio |", "|---|---|---:|---:|---:|---:|"]
    for row in _first_per_kind(rows):
        md.append(f"| {module_kind(row['module'])} | {row['d']} × {row['k']} | {row['r']} | {row['full']:,} | {row['lora']:,} | {row['ratio']:.1f} |")
    md += ["", "![trainable parameters](params.png)", ""]

    # 2. memory (measured elsewhere, in fresh processes)
    if memory is not None:
        res["memory"] = memory
        res["files"].append(_fig(plot_memory(memory), out / "memory.png"))
        from toolkit.memory import format_table

        md += ["### 2. Peak training memory (LoRA vs full fine-tuning)", "", format_table(memory), "",
               f"Full / LoRA: **{memory['ratio_training']:.2f}×** (peak − memory before loading), "
               f"{memory['ratio_peak']:.2f}× whole-process peak; device: {memory['machine']['device']}, "
               f"{memory['machine']['cpus']} CPUs.", "", "![memory](memory.png)", ""]

    # 3. checkpoint size
    ck = checkpoint_report(a, w0) if a.path is not None else None
    gpt3 = gpt3_extrapolation()
    res["checkpoint"], res["gpt3"] = ck, gpt3
    md += ["### 3. Checkpoint size", ""]
    sizes = {}
    if ck:
        md += [f"Adapter file: **{ck['file_bytes']:,} B** = header {ck['header_bytes']:,} B + tensors "
               f"{ck['tensor_bytes']:,} B; formula Σ r·(d+k)·bytes = {ck['predicted_bytes']:,} B"
               + (f" (+ {ck['other_bytes']:,} B of non-LoRA tensors)" if ck["other_bytes"] else "")
               + f" → {'matches exactly' if ck['formula_matches'] else '**does not match**'}."]
        sizes[f"adapter ({a.name})"] = ck["file_bytes"]
        if "full_model_bytes" in ck:
            md[-1] += f" Full model: {ck['full_model_bytes']:,} B ({ck['full_over_adapter']:,.0f}× the adapter)."
            sizes[f"full model ({w0.name})"] = ck["full_model_bytes"]
    md += ["", f"Same formula on GPT-3 175B (r = {gpt3['r']}, W_q and W_v in {gpt3['n_layers']} layers, "
           f"{gpt3['d_model']}×{gpt3['d_model']}, fp16): {gpt3['lora_params']:,} params = "
           f"{gpt3['lora_bytes'] / 1e6:.1f} MB vs {gpt3['full_bytes'] / 1e9:.0f} GB → **{gpt3['ratio']:,.0f}×** "
           "(the paper: ~10,000×, 350 GB → 35 MB).", ""]
    sizes.update({"GPT-3 LoRA r=4 (q,v)": gpt3["lora_bytes"], "GPT-3 full": gpt3["full_bytes"]})
    res["files"].append(_fig(plot_checkpoint_sizes(sizes), out / "checkpoint_sizes.png"))
    md += ["![checkpoint sizes](checkpoint_sizes.png)", ""]

    # 4. ΔW is low-rank
    res["spectrum_a"] = spectrum_rows(a)
    res["files"].append(_fig(plot_spectra(res["spectrum_a"], title=f"Singular values of ΔW, {a.name}"), out / "spectrum_a.png"))
    md += ["### 4. ΔW = scaling·B·A is low-rank", "", "| run | module kind | r | effective rank (entropy) | σ_i > 1% σ_1 | energy in top 1 | energy in top r/2 |",
           "|---|---|---:|---:|---:|---:|---:|"]
    md += _spectrum_table(a.name, res["spectrum_a"])
    if b:
        res["spectrum_b"] = spectrum_rows(b)
        res["files"].append(_fig(plot_spectra(res["spectrum_b"], title=f"Singular values of ΔW, {b.name}"), out / "spectrum_b.png"))
        md += _spectrum_table(b.name, res["spectrum_b"])
    md += ["", "![spectrum](spectrum_a.png)", ""]

    # 5. subspace similarity between the two runs' A matrices
    if b:
        sim = similarity_rows(a, b)
        res["subspace"] = {"rows": sim, "grids": {}}
        md += ["### 5. Subspace similarity φ(A_a, A_b, i, j) between the runs", ""]
        for m in _middle_layer_modules([row["module"] for row in sim]):
            grid = subspace_similarity(a.A[m], b.A[m])
            res["subspace"]["grids"][m] = grid.tolist()
            name = f"subspace_{module_kind(m)}.png"
            res["files"].append(_fig(plot_subspace(grid, title=f"φ for {m}", label_a=a.name, label_b=b.name), out / name))
            md.append(f"![{m}]({name})")
        md += ["", "| module kind | mean φ(1,1) | random φ(1,1) ≈ 1/k | mean φ over the grid |", "|---|---:|---:|---:|"]
        for kind, group in _by_kind(sim).items():
            md.append(f"| {kind} | {mean(r['phi_1_1'] for r in group):.3f} | {mean(r['random_1_1'] for r in group):.4f} | {mean(r['phi_mean'] for r in group):.3f} |")
        md.append("")

    # 6. ΔW amplifies directions W0 underuses
    if w0 is not None:
        amp = amplification_rows(a, w0)
        res["amplification"] = amp
        md += ["### 6. ΔW amplifies directions that W0 underuses (Section 7.3)", "",
               "| module kind | ‖ΔW‖_F | ‖W0‖_F | ‖UᵀW0V‖_F, U,V of ΔW | random U,V | top-r of W0 | amplification ‖ΔW‖/‖UᵀW0V‖ |",
               "|---|---:|---:|---:|---:|---:|---:|"]
        for kind, group in _by_kind(amp).items():
            cols = ["delta_norm", "w0_norm", "proj_delta", "proj_random", "proj_w0_top", "amplification"]
            md.append(f"| {kind} | " + " | ".join(f"{mean(r[c] for r in group):.3g}" for c in cols) + " |")
        md += ["", "(means over layers; the paper reports ‖ΔW‖/‖UᵀW0V‖ ≈ 21.5 for GPT-3 W_q at r = 4)", ""]

    res["files"] += [str(out / "analysis.md"), str(out / "analysis.json")]
    (out / "analysis.md").write_text("\n".join(md) + "\n")
    (out / "analysis.json").write_text(json.dumps(res, indent=1, default=float))
    return res


def _fig(fig, path: Path) -> str:
    fig.savefig(path, dpi=120)
    return str(path)


def _config_summary(adapter: Adapter) -> dict:
    keys = ("r", "lora_alpha", "use_rslora", "target_modules", "base_model_name_or_path")
    return {k: adapter.config.get(k) for k in keys}


def _by_kind(rows: list[dict]) -> dict[str, list[dict]]:
    groups = defaultdict(list)
    for row in rows:
        groups[module_kind(row["module"])].append(row)
    return dict(sorted(groups.items()))


def _first_per_kind(rows: list[dict]) -> list[dict]:
    return [group[0] for group in _by_kind(rows).values()]


def _middle_layer_modules(modules: list[str]) -> list[str]:
    """One module per kind from the middle layer (the paper shows layer 48 of 96)."""
    layers = sorted({i for m in modules if (i := layer_index(m)) is not None})
    mid = layers[len(layers) // 2] if layers else None
    picked = {}
    for m in modules:
        if layer_index(m) == mid:
            picked.setdefault(module_kind(m), m)
    return list(picked.values())


def _spectrum_table(name: str, rows: list[dict]) -> list[str]:
    out = []
    for kind, group in _by_kind(rows).items():
        out.append(f"| {name} | {kind} | {group[0]['r']} | {mean(r['effective_rank'] for r in group):.2f} | "
                   f"{mean(r['rank_above'] for r in group):.1f} | {mean(r['energy_top1'] for r in group):.2f} | "
                   f"{mean(r['energy_top_half'] for r in group):.2f} |")
    return out
