"""Peak training memory: LoRA vs full fine-tuning, each measured in a fresh process."""
import os

import pytest
import torch

from toolkit.memory import MemorySettings, breakdown, compare_memory, format_table
from toolkit.settings import SettingsError, build


def test_breakdown_is_counts_plus_remainder():
    m = {"device": "cpu", "rss_before_load": 1000, "rss_peak": 3000, "weight_bytes": 400, "trainable_bytes": 100,
         "n_trainable": 25}
    assert breakdown(m) == {"weights": 400, "gradients": 100, "optimizer": 2 * 4 * 25, "activations": 3000 - 1000 - 700,
                            "measured": 2000}


def test_settings_errors_name_field_and_fix(tmp_path):
    with pytest.raises(SettingsError) as err:
        build(MemorySettings, {"model": str(tmp_path), "steps": 1, "seq_len": 0})
    text = str(err.value)
    assert "memory.model" in text and "config.json" in text
    assert "memory.steps = 1" in text and "memory.seq_len = 0" in text


@pytest.fixture(scope="module")
def medium_base(tmp_path_factory):
    """~20M params: full fine-tuning needs ~12 bytes/param more (grads + AdamW) = ~230 MB above RSS noise."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=1000, hidden_size=512, intermediate_size=1376, num_hidden_layers=6,
                         num_attention_heads=8, num_key_value_heads=8)
    path = tmp_path_factory.mktemp("medium")
    LlamaForCausalLM(config).save_pretrained(path)
    return path


def test_lora_needs_less_training_memory_than_full(medium_base):
    # parallel: the two fresh processes run at once (one thread each); peaks are per process
    res = compare_memory({"model": str(medium_base), "batch_size": 1, "seq_len": 32, "steps": 2}, parallel=True)
    lora, full = res["lora"], res["full"]
    assert len({lora["pid"], full["pid"], os.getpid()}) == 3  # each measured in a process of its own
    for m in (lora, full):
        assert m["rss_before_load"] > 0 and m["rss_after_load"] > 0 and m["breakdown"]["measured"] > 0
        assert not m["peak_includes_load"]  # Linux: the peak was reset after loading
    assert full["n_trainable"] == full["n_params"] > 100 * lora["n_trainable"]
    assert full["optimizer_bytes_measured"] == full["breakdown"]["optimizer"]  # AdamW: 2 fp32 states per param
    # full needs at least most of the extra gradients + AdamW states the counts predict (12 B/param in fp32)
    extra = full["breakdown"]["measured"] - lora["breakdown"]["measured"]
    predicted = 12 * (full["n_trainable"] - lora["n_trainable"])
    assert extra > 0.7 * predicted
    assert res["ratio_training"] > 1.5
    assert "| trainable params |" in format_table(res)
