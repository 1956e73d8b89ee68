"""Claims 4 and 6: the update ΔW = scaling·B·A is low-rank, and it amplifies directions W0 underuses.

Claim 4. ΔW has rank ≤ r by construction; the question is how many directions it *uses*. We report
the singular values, the entropy effective rank of Roy & Vetterli (2007),

    p_i = σ_i / Σ_j σ_j,    erank = exp(-Σ_i p_i log p_i)    (1 ≤ erank ≤ rank),

the count of σ_i above a fraction of σ_1, and the energy Σ_{i≤k} σ_i² / Σ_i σ_i² in the top k.

Claim 6 (paper Section 7.3). With U (d, r) and V (k, r) the top-r left/right singular vectors of ΔW,
||Uᵀ W0 V||_F measures how much of W0 lives in ΔW's subspace. The paper finds it small (ΔW boosts
directions W0 does not emphasise) and reports the amplification factor ||ΔW||_F / ||Uᵀ W0 V||_F
(about 21.5 for GPT-3 W_q at r = 4), next to the same norm for a random r-dim subspace and for
W0's own top-r directions.
"""
from __future__ import annotations

import math

import torch

from .adapter import Adapter, BaseWeights, module_kind


def delta_w(A: torch.Tensor, B: torch.Tensor, scaling: float) -> torch.Tensor:
    """ΔW = scaling · B A.

    Args:
        A: (r, k) lora_A weight.  B: (d, r) lora_B weight.  scaling: alpha/r (or alpha/sqrt(r) for rsLoRA).
    Returns:
        (d, k) update that is added to W0.
    """
    return scaling * (B.double() @ A.double())


def lowrank_svd(A: torch.Tensor, B: torch.Tensor, scaling: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact SVD of ΔW = scaling·B·A without forming the (d, k) matrix.

    Why: a 4096×4096 SVD per module is seconds; with B = Q_B R_B and Aᵀ = Q_A R_A,
    ΔW = Q_B (scaling · R_B R_Aᵀ) Q_Aᵀ, so only the r×r core needs an SVD.

    Returns:
        U (d, r), S (r,) descending, V (k, r) with ΔW = U diag(S) Vᵀ (float64).
    """
    q_b, r_b = torch.linalg.qr(B.double())
    q_a, r_a = torch.linalg.qr(A.double().T)
    u_c, s, vh_c = torch.linalg.svd(scaling * r_b @ r_a.T)
    return q_b @ u_c, s, q_a @ vh_c.T


def effective_rank(s: torch.Tensor) -> float:
    """Roy & Vetterli entropy effective rank: exp(-Σ p_i log p_i) with p_i = σ_i / Σ σ_j."""
    s = s.double()
    if s.sum() <= 0:
        return 0.0
    p = s / s.sum()
    p = p[p > 0]  # 0·log 0 = 0
    return math.exp(-(p * p.log()).sum().item())


def rank_above(s: torch.Tensor, rel: float = 1e-2) -> int:
    """How many singular values exceed ``rel``·σ_1 (σ_1 = the largest)."""
    s = s.double()
    if s.numel() == 0 or s.max() <= 0:
        return 0
    return int((s > rel * s.max()).sum())


def energy_top_k(s: torch.Tensor, k: int) -> float:
    """Σ_{i≤k} σ_i² / Σ_i σ_i²: share of ||ΔW||_F² captured by the top-k directions."""
    e = torch.sort(s.double(), descending=True).values ** 2
    return (e[:k].sum() / e.sum()).item() if e.sum() > 0 else 0.0


def spectrum_rows(adapter: Adapter, rel: float = 1e-2) -> list[dict]:
    """Per adapted module: singular values of ΔW and the low-rank summaries above."""
    rows = []
    for m in adapter.modules:
        _, s, _ = lowrank_svd(adapter.A[m], adapter.B[m], adapter.scaling(m))
        r = adapter.rank(m)
        rows.append({
            "module": m, "kind": module_kind(m), "r": r,
            "singular_values": s.tolist(),
            "norm": s.norm().item(),  # ||ΔW||_F
            "effective_rank": effective_rank(s),
            "rank_above": rank_above(s, rel),
            "energy_top1": energy_top_k(s, 1),
            "energy_top_half": energy_top_k(s, max(1, r // 2)),
        })
    return rows


# --------------------------------------------------------------------------- claim 6
def random_orthonormal(n: int, r: int, generator: torch.Generator) -> torch.Tensor:
    """(n, r) with orthonormal columns spanning a uniformly random r-dim subspace (QR of a Gaussian)."""
    q, _ = torch.linalg.qr(torch.randn(n, r, generator=generator, dtype=torch.float64))
    return q


def amplification_from_svd(U: torch.Tensor, S: torch.Tensor, V: torch.Tensor, W0: torch.Tensor, seed: int = 0) -> dict:
    """Section 7.3 numbers from ΔW's top-r singular vectors U (d, r), V (k, r) and values S (r,).

    Returns:
        dict with ``delta_norm`` = ||ΔW||_F, ``w0_norm`` = ||W0||_F, ``proj_delta`` = ||Uᵀ W0 V||_F,
        ``proj_random`` (random orthonormal U, V), ``proj_w0_top`` (W0's own top-r singular directions,
        = sqrt(Σ_{i≤r} σ_i(W0)²)) and ``amplification`` = ||ΔW||_F / ||Uᵀ W0 V||_F.
    """
    W0 = W0.double()
    d, k = W0.shape
    r = U.shape[1]
    if U.shape[0] != d or V.shape[0] != k:
        raise ValueError(f"W0.shape = {tuple(W0.shape)}: ΔW is ({U.shape[0]}, {V.shape[0]}); pass the base model this adapter was trained on")
    g = torch.Generator().manual_seed(seed)
    proj = torch.linalg.norm(U.double().T @ W0 @ V.double()).item()
    proj_random = torch.linalg.norm(random_orthonormal(d, r, g).T @ W0 @ random_orthonormal(k, r, g)).item()
    w0_s = torch.linalg.svdvals(W0)
    delta_norm = S.double().norm().item()
    return {
        "r": r,
        "delta_norm": delta_norm,
        "w0_norm": torch.linalg.norm(W0).item(),
        "proj_delta": proj,
        "proj_random": proj_random,
        "proj_w0_top": w0_s[:r].norm().item(),
        "amplification": delta_norm / proj if proj > 0 else math.inf,
    }


def amplification(delta: torch.Tensor, W0: torch.Tensor, r: int | None = None, seed: int = 0) -> dict:
    """Amplification of W0 by ΔW (d, k) using its top-r singular directions (r = its numerical rank if None)."""
    U, S, Vh = torch.linalg.svd(delta.double(), full_matrices=False)
    r = r or max(1, rank_above(S, 1e-8))
    return amplification_from_svd(U[:, :r], S[:r], Vh[:r].T, W0, seed)


def amplification_rows(adapter: Adapter, base: BaseWeights, seed: int = 0) -> list[dict]:
    """Claim 6 for every adapted module found in ``base``, using ΔW's top-r directions (r = adapter rank)."""
    rows = []
    for m in adapter.modules:
        if m not in base:
            continue
        W0 = base[m]
        U, S, V = lowrank_svd(adapter.A[m], adapter.B[m], adapter.scaling(m))
        if adapter.config.get("fan_in_fan_out"):  # GPT-2 style Conv1D stores W0 transposed (k, d)
            U, V = V, U
        rows.append({"module": m, "kind": module_kind(m), **amplification_from_svd(U, S, V, W0, seed)})
    return rows
