"""Training through the pipeline (what ``python -m toolkit train`` runs): a run killed with SIGKILL after a
checkpoint resumes to the same adapter, bit for bit; bad rows stop training unless skip_bad_rows.

Run as a script, this file is the training worker that the resume test kills:
``python tests/test_reliability_train.py OVERRIDES_JSON PAUSE_STEP``.
"""
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COLORS = ["red", "green", "blue", "pink"]
MARKER = "CHECKPOINT SAVED AT STEP"


def write_data(folder: Path, bad_row: dict | None = None) -> Path:
    """A tiny learnable dataset in the layout the pipeline reads: train/validation/test.jsonl."""
    folder.mkdir(parents=True, exist_ok=True)
    splits = {
        "train": [{"prompt": f"Color number {i}?", "completion": COLORS[i % 4]} for i in range(32)],
        "validation": [{"prompt": f"Colour of item {i}?", "completion": COLORS[i % 4]} for i in range(4)],
        "test": [{"prompt": f"Which color is {i}?", "completion": COLORS[i % 4]} for i in range(4)],
    }
    if bad_row is not None:
        splits["train"].insert(5, bad_row)
    for split, rows in splits.items():
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def overrides(tmp: Path, name: str, *extra: str) -> list[str]:
    return [f"runs_dir={tmp}", f"name={name}", f"data.dir={tmp / 'data'}", "model.max_seq_length=128",
            "train.max_steps=6", "train.save_steps=3", "train.batch_size=4", "train.warmup_steps=0",
            "train.eval_steps=0", "train.lr=5e-3", "lora.r=4", *extra]


def settings_for(tmp: Path, name: str, *extra: str):
    from toolkit.pipeline import load_settings

    return load_settings(ROOT / "configs" / "smoke.yaml", overrides(tmp, name, *extra))


def adapter_tensors(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(run_dir / "adapter" / "adapter_model.safetensors")


# --------------------------------------------------------------------------- 1. resume after SIGKILL
def test_killed_run_resumes_to_the_bit_identical_adapter_without_losing_or_repeating_a_step(tmp_path):
    import torch

    from toolkit.pipeline import step_train

    write_data(tmp_path / "data")
    worker = subprocess.Popen(
        [sys.executable, __file__, json.dumps(overrides(tmp_path, "killed")), "3"], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output, saved = [], threading.Event()

    def read():  # drain the pipe all along (a full pipe would block the worker) and spot the marker
        for line in worker.stdout:
            output.append(line)
            if MARKER in line:  # tqdm may have left its progress bar on the same line
                saved.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # The uninterrupted run trains here meanwhile (same settings and seed, another folder).
        _, _, straight = step_train(settings_for(tmp_path, "straight"))
        assert saved.wait(900), "the worker never reached its checkpoint:\n" + "".join(output[-30:])
        worker.send_signal(signal.SIGKILL)  # kill -9 while it is training on: no cleanup runs
        assert worker.wait(60) == -signal.SIGKILL, "".join(output[-30:])
    finally:
        worker.kill()
    killed = settings_for(tmp_path, "killed")
    checkpoints = Path(killed.train.output_dir)
    assert sorted(p.name for p in checkpoints.glob("checkpoint-*")) == ["checkpoint-3"]
    assert not (killed.run_dir / "adapter").exists()  # a killed run exports nothing
    # a save that was cut short (trainer_state.json is written last) must be skipped, not resumed from
    half = checkpoints / "checkpoint-5"
    half.mkdir()
    (half / "adapter_model.safetensors").write_bytes((checkpoints / "checkpoint-3" / "adapter_model.safetensors").read_bytes())

    with pytest.warns(UserWarning, match="skipping incomplete checkpoint .*checkpoint-5: no trainer_state.json"):
        _, _, resumed = step_train(killed, resume=True)  # what `python -m toolkit train --resume` calls

    assert resumed.resumed_from.endswith("checkpoint-3")
    assert resumed.steps_run == [4, 5, 6] and straight.steps_run == [1, 2, 3, 4, 5, 6]
    assert [s for s, _ in resumed.train_loss] == [1, 2, 3, 4, 5, 6]  # each step logged exactly once
    assert resumed.train_loss == straight.train_loss  # same losses, exactly (steps 1-3 come from the checkpoint)
    want, got = adapter_tensors(tmp_path / "straight"), adapter_tensors(killed.run_dir)
    assert set(got) == set(want) and len(want) == 28  # 2 layers × 7 modules × (A, B)
    assert any(w.abs().sum() > 0 for k, w in want.items() if "lora_B" in k)  # B left zero-init: training happened
    for key in want:
        assert torch.equal(got[key], want[key]), f"{key} differs after resume"  # tolerance: 0 (bit-identical)


def test_resume_refuses_pickle_checkpoint_weights_and_says_why(tmp_path):
    from toolkit.guard import UnsafeFileError
    from toolkit.train import last_checkpoint

    ckpt = tmp_path / "checkpoint-2"
    ckpt.mkdir()
    for name in ("trainer_state.json", "optimizer.pt", "scheduler.pt", "adapter_model.bin"):
        (ckpt / name).write_text("{}")
    with pytest.raises(UnsafeFileError, match=r"only pickle files \['adapter_model.bin'\].*arbitrary code"):
        last_checkpoint(tmp_path)
    assert last_checkpoint(tmp_path, allow_pickle=True) == ckpt
    assert last_checkpoint(tmp_path / "empty") is None


def test_cli_resume_flag_reaches_step_train(monkeypatch):
    from toolkit import cli, pipeline
    from toolkit.train import TrainResult

    calls = []
    monkeypatch.setattr(pipeline, "step_data", lambda settings: None)
    monkeypatch.setattr(pipeline, "step_train", lambda settings, resume=False: calls.append(resume) or (None, None, TrainResult("x", 0)))
    cli.main(["train", "--config", "configs/smoke.yaml", "--resume"])
    cli.main(["train", "--config", "configs/smoke.yaml"])
    assert calls == [True, False]


# --------------------------------------------------------------------------- 5. bad data is reported, not trained on
def test_a_bad_row_stops_training_unless_skip_bad_rows_and_the_skip_is_recorded(tmp_path):
    from toolkit.data import DataError
    from toolkit.pipeline import step_train

    write_data(tmp_path / "data", bad_row={"prompt": "Color number 99?", "completion": "   "})
    strict = settings_for(tmp_path, "strict", "train.max_steps=2", "train.save_steps=0")
    with pytest.raises(DataError) as err:
        step_train(strict)
    assert "1 of 33 rows have problems" in str(err.value)
    assert "row 5: malformed: field 'completion' is empty" in str(err.value) and "skip_bad_rows" in str(err.value)
    assert not Path(strict.train.output_dir).exists() and not (strict.run_dir / "adapter").exists()

    lenient = settings_for(tmp_path, "lenient", "train.max_steps=2", "train.save_steps=0", "data.skip_bad_rows=true")
    _, _, result = step_train(lenient)
    report = json.loads((lenient.run_dir / "data_validation.json").read_text())
    assert report["rows"] == 33 and report["skipped"] == 1 and list(report["problems"]) == ["5"]
    assert result.steps == 2 and (lenient.run_dir / "adapter" / "adapter_model.safetensors").is_file()


# --------------------------------------------------------------------------- the worker
def _worker(settings_overrides: list[str], pause_step: int) -> None:
    """Train through pipeline.step_train, announce the checkpoint at ``pause_step``, then wait to be killed."""
    import time

    from transformers import TrainerCallback

    import toolkit.train
    from toolkit.pipeline import load_settings, step_train

    class AnnounceCheckpoint(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == pause_step:  # on_save runs after the checkpoint folder is complete
                print(f"{MARKER} {state.global_step}", flush=True)
                time.sleep(600)  # the test kills us here; step pause_step + 1 never finishes

    build = toolkit.train.build_trainer

    def build_with_announcer(*args, **kwargs):
        trainer = build(*args, **kwargs)
        trainer.add_callback(AnnounceCheckpoint())
        return trainer

    toolkit.train.build_trainer = build_with_announcer
    step_train(load_settings(ROOT / "configs" / "smoke.yaml", settings_overrides))
    print("WORKER FINISHED WITHOUT BEING KILLED", flush=True)


if __name__ == "__main__":
    _worker(json.loads(sys.argv[1]), int(sys.argv[2]))
