"""LoRA lab: measure the LoRA paper's claims (Hu et al. 2021) on your own runs.

| claim | where |
|---|---|
| 1. trainable params fall from d·k to r·(d+k)            | ``params.py``   |
| 2. training memory falls (LoRA vs full, fresh processes) | ``toolkit/memory.py`` |
| 3. checkpoints shrink (~10,000× for GPT-3)               | ``params.py``   |
| 4. ΔW = scaling·B·A is low-rank                          | ``spectrum.py`` |
| 5. top directions are stable across seeds and ranks (φ)  | ``subspace.py`` |
| 6. ΔW amplifies directions W0 underuses                  | ``spectrum.py`` |

``analyse_runs(run_a, run_b, base, out_dir)`` in ``report.py`` runs them all and writes
``analysis.md`` + ``analysis.json`` + PNGs; ``plots.py`` draws the figures; ``adapter.py`` reads
adapter folders and base weights.
"""
from .adapter import Adapter, BaseWeights, find_adapter_dir, load_adapter, lora_scaling
from .params import (
    checkpoint_report,
    full_param_count,
    gpt3_extrapolation,
    lora_param_count,
    param_rows,
    predicted_adapter_bytes,
    safetensors_header_bytes,
    select_targets,
)
from .plots import plot_checkpoint_sizes, plot_memory, plot_params, plot_spectra, plot_subspace
from .report import analyse_runs
from .spectrum import (
    amplification,
    amplification_from_svd,
    delta_w,
    effective_rank,
    energy_top_k,
    lowrank_svd,
    rank_above,
    spectrum_rows,
)
from .subspace import phi, right_singular_vectors, similarity_rows, subspace_similarity

__all__ = [
    "Adapter", "BaseWeights", "find_adapter_dir", "load_adapter", "lora_scaling",
    "checkpoint_report", "full_param_count", "gpt3_extrapolation", "lora_param_count", "param_rows",
    "predicted_adapter_bytes", "safetensors_header_bytes", "select_targets",
    "plot_checkpoint_sizes", "plot_memory", "plot_params", "plot_spectra", "plot_subspace",
    "analyse_runs",
    "amplification", "amplification_from_svd", "delta_w", "effective_rank", "energy_top_k", "lowrank_svd",
    "rank_above", "spectrum_rows",
    "phi", "right_singular_vectors", "similarity_rows", "subspace_similarity",
]
