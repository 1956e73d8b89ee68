"""Loading: cached materialization is reused and atomic; bad paths and corrupt checkpoints are named."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toolkit import load
from toolkit.settings import ModelSettings


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty cache with only the tokenizer copied in (rebuilding it from the GGUF takes ~10 s)."""
    shutil.copytree(load.materialize_tokenizer(), tmp_path / load.TOKENIZER_DIR)
    monkeypatch.setenv("TOOLKIT_CACHE", str(tmp_path))
    return tmp_path


def test_second_call_reuses_the_cache(fresh_cache):
    first = load.materialize_tiny()
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    again = load.materialize_tiny()
    assert again == first and (again / "model.safetensors").stat().st_mtime_ns == stamp


def test_killed_materialization_leaves_no_valid_model_and_is_rebuilt(fresh_cache):
    env = dict(os.environ, TOOLKIT_TEST_PAUSE_BEFORE_RENAME="60")
    proc = subprocess.Popen([sys.executable, "-c", "from toolkit.load import materialize_tiny; materialize_tiny()"],
                            env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    line = ""
    while time.time() < deadline and "PAUSED" not in line:
        line = proc.stdout.readline()
    assert "PAUSED" in line, "materialization never reached the pause point"
    partial = Path(line.split("PAUSED ", 1)[1].strip())
    assert (partial / "model.safetensors").is_file()  # the weights were fully written…
    proc.send_signal(signal.SIGKILL)  # …but the process dies before the rename
    proc.wait()
    final = fresh_cache / load.TINY_DIR
    assert not final.exists()
    with pytest.raises(FileNotFoundError):
        load.resolve_model_path(str(final))  # nothing half-written looks like a model
    rebuilt = load.materialize_tiny()
    assert load.is_complete(rebuilt) and not partial.exists()
    model, _ = load.load_model(ModelSettings(name="tiny"))
    assert model.config.num_hidden_layers == 2


def test_missing_path_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.name = .*no such folder"):
        load.resolve_model_path(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load.resolve_model_path(str(tmp_path / "empty"))


def test_corrupt_checkpoint_is_named(tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(load.materialize_tiny(), broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])  # truncated download
    with pytest.raises(ValueError, match="could not be loaded.*corrupt"):
        load.load_model(ModelSettings(name=str(broken)))


@pytest.mark.slow
def test_default_model_is_the_real_smollm2():
    """The embedded model answers a factual question (about 20-40 s the first time)."""
    from toolkit.infer import chat

    model, tokenizer = load.load_model(ModelSettings(name="default"))
    assert model.config.num_hidden_layers == 30 and len(tokenizer) == 49152
    assert "Paris" in chat(model, tokenizer, "What is the capital of France?", max_new_tokens=12)
