"""LoRA invariants on the tiny preset: zero-B identity, frozen base, report = formula = PEFT."""
import pytest
import torch

from toolkit.lora import attach_lora, lora_layers, lora_scaling, parameter_report
from toolkit.settings import LoraSettings


def _logits(model, tokenizer, text="Your optimal action is: raise 2.5"):
    model.eval()
    with torch.no_grad():
        return model(**tokenizer([text], return_tensors="pt")).logits.float()


def test_zero_initialised_b_leaves_logits_unchanged(tiny):
    model, tokenizer = tiny
    before = _logits(model, tokenizer)
    peft = attach_lora(model, LoraSettings(r=8, alpha=16))
    for _, layer in lora_layers(peft):
        assert torch.count_nonzero(layer.lora_B["default"].weight) == 0  # B starts at zero
        assert torch.count_nonzero(layer.lora_A["default"].weight) > 0  # A is random
    assert torch.equal(_logits(peft, tokenizer), before)


def test_nonzero_b_changes_logits_by_the_formula(tiny):
    """With B != 0 the layer output is W0·x + (alpha/r)·B·A·x, computed by hand."""
    model, tokenizer = tiny
    settings = LoraSettings(r=4, alpha=8, target_modules=["q_proj"])
    peft = attach_lora(model, settings)
    name, layer = next(iter(lora_layers(peft)))
    torch.manual_seed(0)
    with torch.no_grad():
        layer.lora_B["default"].weight.normal_()
    x = torch.randn(3, layer.in_features, dtype=layer.base_layer.weight.dtype)
    peft.eval()
    with torch.no_grad():
        got = layer(x).float()
        w0 = layer.base_layer.weight.float()
        a, b = layer.lora_A["default"].weight.float(), layer.lora_B["default"].weight.float()
        want = x.float() @ w0.T + lora_scaling(settings) * (x.float() @ a.T @ b.T)
    assert lora_scaling(settings) == 2.0
    assert torch.allclose(got, want, atol=0.05, rtol=0.02)


def test_only_lora_parameters_train(tiny):
    model, _ = tiny
    peft = attach_lora(model, LoraSettings(r=8))
    trainable = [n for n, p in peft.named_parameters() if p.requires_grad]
    assert trainable and all("lora_A" in n or "lora_B" in n for n in trainable)


def test_parameter_report_matches_formula_and_peft(tiny):
    model, _ = tiny
    settings = LoraSettings(r=8, target_modules=["q_proj", "v_proj", "down_proj"])
    peft = attach_lora(model, settings)
    report = parameter_report(peft)
    cfg = model.config
    q = (cfg.num_attention_heads * cfg.head_dim, cfg.hidden_size)
    v = (cfg.num_key_value_heads * cfg.head_dim, cfg.hidden_size)
    down = (cfg.hidden_size, cfg.intermediate_size)
    expected = cfg.num_hidden_layers * sum(8 * (d + k) for d, k in (q, v, down))
    assert len(report.rows) == 3 * cfg.num_hidden_layers
    assert all(row.trainable == row.r * (row.d + row.k) and row.frozen == row.d * row.k for row in report.rows)
    assert report.lora_trainable == expected
    peft_count, _ = peft.get_nb_trainable_parameters()
    assert report.lora_trainable == report.peft_trainable == peft_count
    assert "TOTAL" in report.table()


def test_rslora_scaling():
    assert lora_scaling(LoraSettings(r=16, alpha=16, use_rslora=True)) == 4.0
    assert lora_scaling(LoraSettings(r=16, alpha=16)) == 1.0


def test_unknown_target_module_names_the_choices(tiny):
    import pytest

    model, _ = tiny
    with pytest.raises(ValueError, match="lora.target_modules.*qkv.*Linear layers are"):
        attach_lora(model, LoraSettings(target_modules=["qkv"]))


def test_last_layers_adapts_only_the_top_blocks_and_names_the_field_when_too_many(tiny):
    model, _ = tiny
    n = model.config.num_hidden_layers
    with pytest.raises(ValueError, match=rf"lora.last_layers = {n + 1}: this model has {n} decoder blocks"):
        attach_lora(model, LoraSettings(r=4, alpha=8, last_layers=n + 1))
    peft_model = attach_lora(model, LoraSettings(r=4, alpha=8, last_layers=1))
    report = parameter_report(peft_model)
    assert report.rows and all(f"layers.{n - 1}." in row.module for row in report.rows)
    assert len(report.rows) == len(LoraSettings().target_modules)  # every target module, in the last block only
    assert report.lora_trainable == report.peft_trainable
