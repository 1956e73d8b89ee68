"""Claim 5 (paper Section 7.2): the top directions LoRA learns are stable across seeds and ranks.

For two adapters' A matrices A1 (r1, k) and A2 (r2, k) of the same module, let U1 (k, r1) and
U2 (k, r2) be their right-singular vectors (A = Σ σ u vᵀ, sorted by σ; the paper calls them the
"right-singular unitary matrices"). With U^i the first i columns, the normalized subspace similarity is

    φ(A1, A2, i, j) = ||U1^iᵀ U2^j||_F² / min(i, j)     ∈ [0, 1]

1 means one top subspace contains the other; 0 means they are orthogonal. For random subspaces
in R^k, φ is about max(i, j) / k, so φ(1, 1) far above 1/k means a shared top direction.
"""
from __future__ import annotations

import torch

from .adapter import Adapter


def right_singular_vectors(A: torch.Tensor) -> torch.Tensor:
    """U_A of the paper: (k, r) right-singular vectors of A (r, k), columns sorted by singular value."""
    _, _, vh = torch.linalg.svd(A.double(), full_matrices=False)
    return vh.T


def phi(A1: torch.Tensor, A2: torch.Tensor, i: int, j: int) -> float:
    """φ(A1, A2, i, j) = ||U1^iᵀ U2^j||_F² / min(i, j), written as in the paper (1-based i, j)."""
    U1, U2 = right_singular_vectors(A1), right_singular_vectors(A2)
    if not (1 <= i <= U1.shape[1] and 1 <= j <= U2.shape[1]):
        raise ValueError(f"(i, j) = ({i}, {j}): must satisfy 1 ≤ i ≤ {U1.shape[1]} and 1 ≤ j ≤ {U2.shape[1]}")
    return (torch.linalg.norm(U1[:, :i].T @ U2[:, :j]) ** 2 / min(i, j)).item()


def subspace_similarity(A1: torch.Tensor, A2: torch.Tensor) -> torch.Tensor:
    """The full grid: ``grid[i-1, j-1] = φ(A1, A2, i, j)`` for i ≤ r1, j ≤ r2.

    Args:
        A1: (r1, k) and A2: (r2, k), lora_A of the same module from two runs.
    Returns:
        (r1, r2) float64 tensor in [0, 1].
    """
    if A1.shape[1] != A2.shape[1]:
        raise ValueError(f"A shapes = {tuple(A1.shape)} vs {tuple(A2.shape)}: need the same input width k; compare the same module of the same base model")
    M = right_singular_vectors(A1).T @ right_singular_vectors(A2)  # (r1, r2) cosines between directions
    # ||U1^iᵀ U2^j||_F² is the sum of M² over the top-left i×j block: a 2-D cumulative sum gives every (i, j) at once.
    block = (M ** 2).cumsum(0).cumsum(1)
    i = torch.arange(1, M.shape[0] + 1, dtype=torch.float64)[:, None]
    j = torch.arange(1, M.shape[1] + 1, dtype=torch.float64)[None, :]
    return block / torch.minimum(i, j)


def similarity_rows(a: Adapter, b: Adapter) -> list[dict]:
    """φ summaries for every module both adapters adapt: φ(1,1), the mean over the grid, and the random baseline."""
    rows = []
    for m in a.modules:
        if m not in b.A:
            continue
        grid = subspace_similarity(a.A[m], b.A[m])
        k = a.A[m].shape[1]
        rows.append({
            "module": m, "r_a": grid.shape[0], "r_b": grid.shape[1],
            "phi_1_1": grid[0, 0].item(),
            "phi_mean": grid.mean().item(),
            "random_1_1": 1 / k,  # E[φ(1,1)] for two random directions in R^k
        })
    return rows
