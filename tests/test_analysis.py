"""LoRA lab: each claim's formula checked on matrices with known answers, and against PEFT's own files."""
import json
import math

import pytest
import torch

from toolkit.analysis import (
    BaseWeights,
    amplification,
    analyse_runs,
    checkpoint_report,
    delta_w,
    effective_rank,
    energy_top_k,
    find_adapter_dir,
    gpt3_extrapolation,
    load_adapter,
    lora_param_count,
    lowrank_svd,
    param_rows,
    phi,
    rank_above,
    safetensors_header_bytes,
    select_targets,
    subspace_similarity,
)

ALL_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


# --------------------------------------------------------------------------- tiny model + adapters on disk
@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    """A random 2-layer Llama (hidden 64, MLP 128, vocab 1000) saved as a local HF checkpoint."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4)
    path = tmp_path_factory.mktemp("base")
    LlamaForCausalLM(config).save_pretrained(path)
    return path


def make_adapter(base_path, out_dir, r, seed, targets=("q_proj", "v_proj"), use_rslora=False):
    """Attach LoRA with PEFT, give B random values (as if trained: B starts at zero), save_pretrained."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_path),
                           LoraConfig(r=r, lora_alpha=16, target_modules=list(targets), use_rslora=use_rslora))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    model.save_pretrained(out_dir)
    return model


# --------------------------------------------------------------------------- claim 1: parameters
def test_param_rows_follow_d_k_to_r_d_plus_k():
    rows = param_rows({"q": (4096, 4096), "up": (11008, 4096)}, r=8)
    assert rows[0] == {"module": "q", "d": 4096, "k": 4096, "r": 8, "full": 4096 * 4096, "lora": 8 * 8192, "ratio": 256.0}
    assert rows[1]["lora"] == 8 * (11008 + 4096)
    assert lora_param_count({"q": (4096, 4096), "up": (11008, 4096)}, 8) == 8 * 8192 + 8 * 15104
    with pytest.raises(ValueError, match="r\\['q'\\] = 0"):
        lora_param_count({"q": (4, 4)}, 0)


def test_shape_formula_counts_what_peft_trains(tiny_base, tmp_path):
    model = make_adapter(tiny_base, tmp_path / "a", r=8, seed=0, targets=ALL_TARGETS)
    shapes = select_targets(BaseWeights(tiny_base).linear_shapes(), ALL_TARGETS)
    assert shapes == select_targets(BaseWeights(model).linear_shapes(), ALL_TARGETS)  # folder and module agree
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert lora_param_count(shapes, 8) == trainable == 2 * (4 * 8 * (64 + 64) + 3 * 8 * (128 + 64))


# --------------------------------------------------------------------------- claim 3: checkpoint bytes
def test_checkpoint_bytes_formula_matches_the_saved_file(tiny_base, tmp_path):
    make_adapter(tiny_base, tmp_path / "run" / "adapter", r=8, seed=0, targets=ALL_TARGETS)
    file = tmp_path / "run" / "adapter" / "adapter_model.safetensors"
    with open(file, "rb") as f:
        header = 8 + int.from_bytes(f.read(8), "little")
    assert safetensors_header_bytes(file) == header
    report = checkpoint_report(load_adapter(tmp_path / "run"), BaseWeights(tiny_base))  # run folder accepted
    expected = 17408 * 4  # hand count above (17,408 fp32 params)
    assert report["predicted_bytes"] == expected
    assert report["file_bytes"] == file.stat().st_size == expected + header
    assert report["formula_matches"] and report["other_bytes"] == 0
    assert report["full_model_bytes"] == (tiny_base / "model.safetensors").stat().st_size


def test_gpt3_extrapolation_is_about_ten_thousand_fold():
    g = gpt3_extrapolation()
    assert g["lora_params"] == 96 * 2 * 4 * (12288 + 12288) == 18_874_368
    assert g["full_bytes"] == 350e9 and 35e6 < g["lora_bytes"] < 40e6
    assert 9000 < g["ratio"] < 10000


# --------------------------------------------------------------------------- claim 4: ΔW is low-rank
def test_delta_w_matches_peft_merge_with_and_without_rslora(tiny_base, tmp_path):
    for rs in (False, True):
        model = make_adapter(tiny_base, tmp_path / f"rs{rs}", r=4, seed=1, use_rslora=rs)
        adapter = load_adapter(tmp_path / f"rs{rs}")
        m = "model.layers.1.self_attn.v_proj"
        assert adapter.scaling(m) == (16 / 2 if rs else 16 / 4)
        w0 = BaseWeights(tiny_base)[m]
        merged = model.merge_and_unload().model.layers[1].self_attn.v_proj.weight.detach()
        torch.testing.assert_close(merged - w0, delta_w(adapter.A[m], adapter.B[m], adapter.scaling(m)).float(), atol=1e-5, rtol=1e-4)


def test_rank_k_update_has_exactly_k_nonnegligible_singular_values():
    g = torch.Generator().manual_seed(0)
    d, k, r, true_rank = 48, 40, 8, 3
    f64 = {"generator": g, "dtype": torch.float64}
    B = torch.randn(d, true_rank, **f64) @ torch.randn(true_rank, r, **f64)  # (d, r) but rank 3
    A = torch.randn(r, k, **f64)
    full = torch.linalg.svdvals(delta_w(A, B, 2.0))
    _, s, _ = lowrank_svd(A, B, 2.0)
    assert rank_above(full, 1e-9) == rank_above(s, 1e-9) == true_rank
    torch.testing.assert_close(s[:true_rank], full[:true_rank])
    assert full[true_rank:].max() < 1e-9 * full[0]
    # stored adapters are fp32: rounding leaves ~1e-8·σ1 tails, far below the default 1% threshold
    assert rank_above(lowrank_svd(A.float(), B.float(), 2.0)[1]) == true_rank


def test_effective_rank_and_energy_known_values():
    assert effective_rank(torch.tensor([2.0, 2.0, 2.0, 0.0])) == pytest.approx(3.0)  # uniform over 3 -> exp(log 3)
    assert effective_rank(torch.tensor([5.0, 0.0])) == pytest.approx(1.0)
    assert energy_top_k(torch.tensor([4.0, 3.0]), 1) == pytest.approx(16 / 25)
    assert rank_above(torch.tensor([1.0, 0.5, 0.005]), 1e-2) == 2


# --------------------------------------------------------------------------- claim 5: subspace similarity
def test_phi_is_one_for_identical_and_zero_for_orthogonal_subspaces():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(6, 20, generator=g)
    assert torch.allclose(subspace_similarity(A, A), torch.ones(6, 6, dtype=torch.float64))
    orth = torch.zeros(4, 20)
    orth[:, 10:14] = torch.randn(4, 4, generator=g)  # rows in span(e10..e13)
    inside = torch.zeros(3, 20)
    inside[:, :5] = torch.randn(3, 5, generator=g)  # rows in span(e0..e4)
    assert subspace_similarity(inside, orth).abs().max() < 1e-12


def test_phi_known_angle_and_nested_ranks():
    # top directions e1 and (e1+e2)/√2: cos² 45° = 1/2
    assert phi(torch.tensor([[1.0, 0, 0]]), torch.tensor([[1.0, 1.0, 0]]), 1, 1) == pytest.approx(0.5)
    g = torch.Generator().manual_seed(1)
    A64 = torch.randn(64, 128, generator=g)
    A8 = torch.randn(8, 64, generator=g) @ A64  # r=8 row space inside the r=64 one, like the paper's Fig. 3
    grid = subspace_similarity(A8, A64)
    assert grid.shape == (8, 64)
    assert grid[7, 63] == pytest.approx(1.0)
    for i, j in [(1, 1), (3, 5), (8, 2), (8, 64)]:
        assert grid[i - 1, j - 1].item() == pytest.approx(phi(A8, A64, i, j))


# --------------------------------------------------------------------------- claim 6: amplification
def test_amplification_hand_computed_4x4():
    W0 = torch.tensor([[4.0, 1, 0, 0], [0, 3, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]])
    dW = torch.zeros(4, 4)
    dW[0, 1] = 6.0  # ΔW = 6·e1 e2ᵀ: U = e1, V = e2, so Uᵀ W0 V = W0[0, 1] = 1
    out = amplification(dW, W0)
    assert out["r"] == 1
    assert out["proj_delta"] == pytest.approx(1.0)
    assert out["amplification"] == pytest.approx(6.0)
    assert out["w0_norm"] == pytest.approx(math.sqrt(31))
    assert out["proj_w0_top"] == pytest.approx(math.sqrt(18))  # σ1 of [[4,1],[0,3]]: eig of [[16,4],[4,10]] = 18
    dW2 = torch.diag(torch.tensor([0.0, 0, 3, 2]))  # rank 2 on W0's two weakest directions
    out2 = amplification(dW2, W0)
    assert out2["proj_delta"] == pytest.approx(math.sqrt(5))  # ||diag(2, 1)||_F
    assert out2["amplification"] == pytest.approx(math.sqrt(13 / 5))


# --------------------------------------------------------------------------- the report
def test_analyse_runs_writes_report_and_known_answers(tiny_base, tmp_path):
    make_adapter(tiny_base, tmp_path / "seed1" / "adapter", r=8, seed=1)
    make_adapter(tiny_base, tmp_path / "seed2" / "adapter", r=4, seed=2)
    out = tmp_path / "analysis"
    res = analyse_runs(tmp_path / "seed1", tmp_path / "seed2" / "adapter", base=tiny_base, out_dir=out)
    saved = json.loads((out / "analysis.json").read_text())
    assert saved["checkpoint"]["formula_matches"]
    assert saved["params"]["lora"] == 4 * 8 * 128
    assert {r["module"] for r in saved["subspace"]["rows"]} == set(load_adapter(tmp_path / "seed1").A)
    grid = next(iter(saved["subspace"]["grids"].values()))
    assert len(grid) == 8 and len(grid[0]) == 4
    assert all(r["rank_above"] <= 8 for r in saved["spectrum_a"])
    assert len(saved["amplification"]) == 4
    for f in res["files"]:
        assert (out / f.split("/")[-1]).stat().st_size > 0
    text = (out / "analysis.md").read_text()
    assert "matches exactly" in text and "![checkpoint sizes](checkpoint_sizes.png)" in text
    # the same run twice: every φ is 1
    same = analyse_runs(tmp_path / "seed1", tmp_path / "seed1", out_dir=tmp_path / "same")
    assert all(r["phi_1_1"] == pytest.approx(1.0) and r["phi_mean"] == pytest.approx(1.0) for r in same["subspace"]["rows"])


def test_missing_adapter_error_names_path_and_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="adapter = .*save_pretrained"):
        find_adapter_dir(tmp_path)
    with pytest.raises(FileNotFoundError, match="base = .*model.safetensors"):
        BaseWeights(tmp_path)
