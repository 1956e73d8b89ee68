"""Helpers behind the notebooks: run variants, adapter reuse, LoRA layer parts, mask display, loss plot."""
import json

import pytest
import torch

from toolkit import lessons, pipeline
from toolkit.settings import SettingsError, to_dict
from toolkit.train import TrainResult


@pytest.fixture
def smoke(tmp_path):
    return pipeline.load_settings("configs/smoke.yaml", [f"runs_dir={tmp_path}"])


def test_variant_applies_overrides_and_moves_the_checkpoint_folder(smoke):
    seed1 = lessons.variant(smoke, "name=smoke-seed1", "lora.seed=1")
    assert (seed1.name, seed1.lora.seed) == ("smoke-seed1", 1)
    assert seed1.train.output_dir == str(seed1.run_dir / "checkpoints") != smoke.train.output_dir
    assert smoke.lora.seed == 3407  # the original is untouched


def test_variant_keeps_a_custom_checkpoint_folder(smoke, tmp_path):
    custom = lessons.variant(smoke, f"train.output_dir={tmp_path / 'mine'}")
    assert lessons.variant(custom, "name=other").train.output_dir == str(tmp_path / "mine")


def test_variant_rejects_unknown_settings(smoke):
    with pytest.raises(SettingsError, match="lora.rank"):
        lessons.variant(smoke, "lora.rank=8")


def _fake_adapter(settings):
    folder = settings.run_dir / "adapter"
    folder.mkdir(parents=True)
    (folder / "settings.json").write_text(json.dumps(to_dict(settings)))
    (folder / "toolkit_export.json").write_text("{}")
    return folder


def test_ensure_adapter_reuses_an_adapter_with_the_same_training_settings(smoke, monkeypatch):
    folder = _fake_adapter(smoke)
    monkeypatch.setattr(pipeline, "step_train", lambda s: pytest.fail("must not train again"))
    same_but_measured_differently = lessons.variant(smoke, "arena.hands=40", "eval.vs_base=false")
    assert lessons.ensure_adapter(same_but_measured_differently, progress=False) == folder


@pytest.mark.parametrize("change", ["lora.seed=1", "train.max_steps=7", "spots.seed=3", "data.system_prompt=Play."])
def test_ensure_adapter_retrains_when_training_settings_differ(smoke, monkeypatch, change):
    _fake_adapter(smoke)
    calls = []
    monkeypatch.setattr(pipeline, "step_data", lambda s, progress: calls.append("data"))
    monkeypatch.setattr(pipeline, "step_train", lambda s: calls.append("train"))
    lessons.ensure_adapter(lessons.variant(smoke, change), progress=False)
    assert calls == ["data", "train"]


def test_ensure_adapter_ignores_a_folder_without_manifest(smoke, monkeypatch):
    folder = _fake_adapter(smoke)
    (folder / "toolkit_export.json").unlink()  # an interrupted export
    calls = []
    monkeypatch.setattr(pipeline, "step_data", lambda s, progress: calls.append("data"))
    monkeypatch.setattr(pipeline, "step_train", lambda s: calls.append("train"))
    lessons.ensure_adapter(smoke, progress=False)
    assert calls == ["data", "train"]


def test_lora_parts_reproduce_the_layer(tiny):
    from toolkit.lora import attach_lora, lora_layers
    from toolkit.settings import LoraSettings

    model = attach_lora(tiny[0], LoraSettings(r=4, alpha=8, target_modules=["v_proj"]))
    _, layer = next(iter(lora_layers(model)))
    torch.manual_seed(0)
    with torch.no_grad():
        layer.lora_B["default"].weight.normal_(std=0.05)
    W0, A, B, s = lessons.lora_parts(layer)
    assert (W0.shape, A.shape, B.shape, s) == ((32, 64), (4, 64), (32, 4), 2.0)
    assert W0.dtype == A.dtype == B.dtype == torch.float32
    x = torch.randn(5, 64)
    model.eval()
    with torch.no_grad():
        got = layer(x.to(layer.base_layer.weight.dtype)).float()
    want = x @ (W0 + s * B @ A).T
    assert torch.allclose(got, want, atol=0.02, rtol=0.02)
    assert not torch.allclose(got, x @ W0.T, atol=1e-3)  # the update is really in there


def test_param_groups_cover_every_parameter(tiny):
    model = tiny[0]
    groups = lessons.param_groups(model)
    assert sum(groups.values()) == sum(p.numel() for p in model.parameters())
    assert groups["embeddings"] == 49152 * 64  # tied LM head is not counted twice
    assert set(groups) == {"embeddings", "attention", "mlp", "norms"}


def test_mask_html_marks_trained_tokens_and_escapes_text():
    html = lessons.mask_html([("<|im_start|>", False), ("a\nb", False), ("call", True)]).data
    assert "3 tokens" in html and "1 trained tokens" in html
    assert "&lt;|im_start|&gt;" in html and "↵<br>" in html
    assert html.count("background:#b7e4b0;font-weight:bold") == 1


def test_plot_loss_draws_training_and_validation(tmp_path):
    result = TrainResult("x", steps=3, train_loss=[(1, 2.0), (2, 1.5), (3, 1.0)], eval_loss=[(3, 1.2)], runtime_s=4.0)
    fig = lessons.plot_loss(result, tmp_path / "loss.png")
    lines = fig.axes[0].get_lines()
    assert [list(line.get_ydata()) for line in lines] == [[2.0, 1.5, 1.0], [1.2]]
    assert (tmp_path / "loss.png").stat().st_size > 1000
