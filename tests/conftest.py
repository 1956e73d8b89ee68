"""Shared fixtures: the tiny preset (real SmolLM2 tokenizer, 2 random layers) keeps every test fast."""
import os

os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest


@pytest.fixture
def tiny():
    """A fresh tiny model + tokenizer (bf16 on CPU, as in real runs)."""
    from toolkit.load import load_model
    from toolkit.settings import ModelSettings

    return load_model(ModelSettings(name="tiny", max_seq_length=128))


@pytest.fixture
def color_rows():
    """A small learnable dataset: the answer is a deterministic function of the prompt."""
    colors = ["red", "green", "blue", "pink"]
    return [{"messages": [{"role": "user", "content": f"Color number {i % 4}?"},
                          {"role": "assistant", "content": colors[i % 4]}]} for i in range(64)]
