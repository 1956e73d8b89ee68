"""The main job end to end on the smoke preset, the CLI's settings handling, and report = JSON."""
import json
import re
import subprocess
import sys

import pytest

from toolkit.pipeline import load_settings
from toolkit.settings import SettingsError

SECTIONS = ["## Targets", "## Decisions on held-out spots", "## Duplicate heads-up matches", "## Training",
            "## Export", "## Data", "## Time", "## Settings and versions"]
PLOTS = ["loss.png", "accuracy.png", "bb100.png", "action_mix.png", "confusion.png"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    cmd = [sys.executable, "-m", "toolkit", "demo", "--config", "configs/smoke.yaml", "--set", f"runs_dir={runs}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return runs / "smoke"


def test_smoke_demo_writes_every_section_and_plot(smoke_run):
    report = (smoke_run / "report.md").read_text()
    for section in SECTIONS:
        assert section in report
    for png in PLOTS:
        assert (smoke_run / png).stat().st_size > 5000, png
        assert f"({png})" in report
    for name in ("settings.json", "versions.json", "adapter/adapter_model.safetensors", "adapter/toolkit_export.json"):
        assert (smoke_run / name).is_file(), name
    results = json.loads((smoke_run / "results.json").read_text())
    assert results["export"]["verify_adapter"]["passed"] and results["export"]["verify_adapter"]["max_abs_diff"] == 0
    assert results["arena"]["finetuned"]["player"]["illegal"] == 0
    hands = {name: r["hands"] for name, r in results["arena"]["finetuned"].items() if name != "player"}
    assert hands == {"random": 8, "fish": 8, "base": 4}  # eval.hands: {base: 4}, the others arena.hands


def test_report_figures_equal_the_json(smoke_run):
    report = (smoke_run / "report.md").read_text()
    results = json.loads((smoke_run / "results.json").read_text())
    for label, ev in results["eval"].items():
        row = re.search(rf"^\| {label} \| ([\d.]+)% \| ([\d.]+)% \| ([\d.]+)% \| ([\d.]+) \|$", report, re.M)
        assert row, label
        assert float(row.group(1)) == round(100 * ev["agreement"], 1)
        assert float(row.group(2)) == round(100 * ev["overall"]["action_accuracy"], 1)
        assert float(row.group(4)) == round(ev["decisions_per_s"], 2)
    for name, r in results["arena"]["finetuned"].items():
        if name == "player":
            continue
        e = r["bb100"]
        assert f"{e['value']:+.1f} [{e['low']:+.1f}, {e['high']:+.1f}]" in report
    total = results["timings_s"]["total"]
    assert f"| the whole run finishes within 20 minutes on this machine | {int(total // 60)} min {total % 60:.0f} s | yes |" in report
    train = results["train"]
    assert f"{train['trained_tokens']:,} tokens" in report and f"{train['steps']} steps" in report


def test_overrides_and_unknown_keys():
    s = load_settings("configs/smoke.yaml", ["lora.r=2", "train.lr=1e-3", "arena.hands=4", "name=other"])
    assert (s.lora.r, s.train.lr, s.arena.hands, s.train.output_dir) == (2, 1e-3, 4, "runs/other/checkpoints")
    with pytest.raises(SettingsError) as err:
        load_settings("configs/smoke.yaml", ["lora.rank=2", "arena.hands=3", "eval.opponents=[shark]"])
    text = str(err.value)
    assert "lora.rank" in text and "unknown setting" in text
    assert "arena.hands = 3" in text and "multiple of players" in text
    assert "shark" in text
    with pytest.raises(SettingsError) as err:
        load_settings("configs/smoke.yaml", ["eval.hands={fish: 3, shark: 4}", "lora.last_layers=-1"])
    text = str(err.value)
    assert "eval.hands.fish = 3" in text and "multiple of arena.players" in text
    assert "eval.hands" in text and "'shark'" in text and "lora.last_layers = -1" in text


def test_cli_reports_bad_settings_before_any_work():
    done = subprocess.run([sys.executable, "-m", "toolkit", "train", "--config", "configs/smoke.yaml", "--set", "lora.r=0"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "lora.r = 0" in done.stderr


def test_help_teaches():
    done = subprocess.run([sys.executable, "-m", "toolkit", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for word in ("demo", "materialize", "arena", "analyse", "--set"):
        assert word in done.stdout


def test_same_preset_and_seed_give_the_same_data_and_adapter_bytes(smoke_run, tmp_path):
    """Reproducibility: `train` alone, in another folder, rebuilds byte-identical data and adapters."""
    cmd = [sys.executable, "-m", "toolkit", "train", "--config", "configs/smoke.yaml", "--set", f"runs_dir={tmp_path}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    again = tmp_path / "smoke"
    for split in ("train", "validation", "test"):
        assert (again / "data" / f"{split}.jsonl").read_bytes() == (smoke_run / "data" / f"{split}.jsonl").read_bytes()
    new = (again / "adapter" / "adapter_model.safetensors").read_bytes()
    assert new == (smoke_run / "adapter" / "adapter_model.safetensors").read_bytes()


def test_eval_and_arena_can_be_the_first_command_of_a_new_run(smoke_run, tmp_path):
    """`eval`/`arena` on a run name with no folder yet (the base model) write their results, not a traceback."""
    common = ["--config", "configs/smoke.yaml", "--set", f"runs_dir={tmp_path}", "--set", "name=fresh",
              "--set", f"data.dir={smoke_run / 'data'}", "--set", "arena.hands=2", "--set", "eval.opponents=[random]"]
    for command, written in (("eval", "eval_base.json"), ("arena", "arena_base.json")):
        done = subprocess.run([sys.executable, "-m", "toolkit", command, *common], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "agreement" in done.stdout or command == "arena"
        assert (tmp_path / "fresh" / written).is_file()
