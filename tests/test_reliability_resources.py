"""Resource limits are reported before loading: parameter counts are exact, the estimate scales as its
formula says, and a run that clearly won't fit is refused with the settings to turn down."""
import json

import pytest

from toolkit.resources import GIB, SMOLLM2_CONFIG, ResourceError, check_fits, estimate_memory
from toolkit.settings import LoraSettings, ModelSettings, TrainSettings


def test_parameter_counts_match_the_real_model_and_peft(tiny):
    from toolkit.load import TINY_CONFIG
    from toolkit.lora import attach_lora, parameter_report

    model, _ = tiny
    real = sum(p.numel() for p in model.parameters())  # the tied lm_head is counted once, as on disk
    lora = parameter_report(attach_lora(model, LoraSettings(r=4))).lora_trainable
    from_headers = estimate_memory("tiny", lora_r=4)  # the materialized tiny checkpoint's safetensors headers
    from_config = estimate_memory({**TINY_CONFIG, "model_type": "llama"}, lora_r=4)  # config.json arithmetic
    assert from_headers["params"]["source"].startswith("safetensors headers")
    for estimate in (from_headers, from_config):
        assert estimate["params"]["total"] == real and estimate["params"]["lora"] == lora
        assert estimate["bytes"]["lora_params"] == 4 * lora and estimate["bytes"]["adamw_states"] == 8 * lora
        assert estimate["weights_bytes_by_dtype"]["float32"] == 4 * real
    # SmolLM2-135M from its config alone: HF's published parameter count
    default = estimate_memory(SMOLLM2_CONFIG, lora_r=16)
    assert default["params"]["total"] == 134_515_008
    assert default["weights_bytes_by_dtype"]["bfloat16"] == 2 * 134_515_008
    assert default["weights_bytes_by_dtype"]["4bit"] < default["weights_bytes_by_dtype"]["bfloat16"] / 2


def test_config_alone_is_enough_and_the_estimate_scales_as_documented(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(SMOLLM2_CONFIG))  # no weights in the folder at all
    base = estimate_memory(str(tmp_path), batch_size=4, seq_len=256, device="cpu")
    assert base["params"]["total"] == 134_515_008 and base["params"]["source"] == "config.json"
    double_batch = estimate_memory(str(tmp_path), batch_size=8, seq_len=256, device="cpu")
    double_seq = estimate_memory(str(tmp_path), batch_size=4, seq_len=512, device="cpu")
    for part in ("activations", "logits"):  # linear in tokens = batch × length (fused attention: no s² term)
        assert double_batch["bytes"][part] == double_seq["bytes"][part] == 2 * base["bytes"][part]
    assert double_batch["bytes"]["weights"] == base["bytes"]["weights"]
    checkpointed = estimate_memory(str(tmp_path), batch_size=4, seq_len=256, gradient_checkpointing=True, device="cpu")
    assert checkpointed["bytes"]["activations"] < base["bytes"]["activations"] / 5  # 30 layers -> 1 layer + inputs
    assert estimate_memory(str(tmp_path), load_in_4bit=True, device="cpu")["dtype"] == "bfloat16"  # 4-bit is GPU-only
    assert estimate_memory(str(tmp_path), load_in_4bit=True, device="cuda")["dtype"] == "4bit"
    assert base["total_bytes"] == sum(base["bytes"].values())


def test_a_run_that_clearly_wont_fit_is_refused_naming_the_knobs():
    huge = (ModelSettings(name="default", max_seq_length=4096), LoraSettings(r=16), TrainSettings(batch_size=64))
    with pytest.raises(ResourceError) as err:
        check_fits(*huge, available=8 * GIB)
    text = str(err.value)
    assert "model.name = 'default' with train.batch_size = 64, model.max_seq_length = 4096" in text
    assert "but only 8.0 GiB is free" in text
    assert "Turn down train.batch_size" in text and "lora.gradient_checkpointing: unsloth" in text
    needed = float(text.split("needs about ")[1].split(" GiB")[0])
    assert needed > 1.5 * 8
    # the smoke preset fits in the same 8 GiB, and is checked against the real free memory by default
    smoke = (ModelSettings(name="tiny", max_seq_length=384), LoraSettings(r=4), TrainSettings(batch_size=8))
    assert check_fits(*smoke, available=8 * GIB)["total_bytes"] < 8 * GIB
    assert check_fits(*smoke)["available_bytes"] > 0
    # the threshold is the factor: just under 1.5 × available passes, just over fails
    total = check_fits(*smoke, available=8 * GIB)["total_bytes"]
    check_fits(*smoke, available=int(total / 1.5) + 1)
    with pytest.raises(ResourceError):
        check_fits(*smoke, available=int(total / 1.5) - 1)


def test_an_unreadable_config_is_not_blocking_but_says_so(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.warns(UserWarning, match="could not read its config.json, so memory was not checked"):
        assert check_fits(ModelSettings(name="nobody/no-such-model-xyz"), available=1) is None
