"""Every lesson notebook runs top to bottom on the smoke preset, and is committed without outputs.

The notebooks share one temporary runs folder (``$TOOLKIT_RUNS_DIR``), so the dataset and the adapter
trained by an earlier lesson are reused by later ones, as they are for a reader going 00 → 07.
"""
import os
from pathlib import Path

import nbformat
import pytest

from toolkit.notebook import NOTEBOOKS, execute, notebook_paths, outputs_problems

PATHS = notebook_paths()
EXPECTED = ["00_quickstart", "01_load_model", "02_attach_lora", "03_prepare_data", "04_train",
            "05_export_adapters", "06_test_in_pypokerengine", "07_lora_theory"]


def test_every_lesson_is_there():
    assert [p.stem for p in PATHS] == EXPECTED


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    assert outputs_problems(nbformat.read(path, as_version=4)) == []


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_starts_with_colab_install_then_one_setup(path):
    code = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert '"google.colab" in sys.modules' in code[0] and "pip install" in code[0]
    assert "settings = setup()" in code[1]
    assert sum("setup(" in c for c in code) == 1


@pytest.fixture(scope="module")
def lesson_env(tmp_path_factory):
    """Smoke preset, runs in a temp folder, plots inline: what the kernel inherits from this process."""
    saved = dict(os.environ)
    os.environ.update(TOOLKIT_NOTEBOOK_PRESET="smoke", TOOLKIT_RUNS_DIR=str(tmp_path_factory.mktemp("runs")),
                      HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", UNSLOTH_DISABLE_STATISTICS="1")
    os.environ.pop("MPLBACKEND", None)
    yield os.environ["TOOLKIT_RUNS_DIR"]
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_runs(path, lesson_env):
    nb = execute(path, timeout=600)  # a failing cell raises CellExecutionError naming the cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    assert not (NOTEBOOKS / "runs").exists()  # everything went to $TOOLKIT_RUNS_DIR


# --------------------------------------------------------------------------- setup() and the commands
@pytest.mark.parametrize("env, arg, gpu, want", [
    ({"TOOLKIT_NOTEBOOK_PRESET": "smoke"}, "demo", True, "smoke"),  # the environment wins (CI forces smoke)
    ({}, "demo", False, "demo"),  # an explicit choice beats "no GPU"
    ({"CI": "true"}, None, True, "smoke"),
    ({}, None, False, "smoke"),
    ({}, None, True, "demo"),
])
def test_choose_preset(monkeypatch, env, arg, gpu, want):
    from toolkit import notebook

    for key in ("TOOLKIT_NOTEBOOK_PRESET", "CI"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(notebook, "has_gpu", lambda: gpu)
    assert notebook.choose_preset(arg)[0] == want


def test_choose_preset_names_the_bad_source(monkeypatch):
    from toolkit import notebook

    monkeypatch.setenv("TOOLKIT_NOTEBOOK_PRESET", "big")
    with pytest.raises(ValueError, match=r"'big' \(from \$TOOLKIT_NOTEBOOK_PRESET\)"):
        notebook.choose_preset()


def test_setup_returns_validated_settings_in_the_runs_dir(monkeypatch, tmp_path):
    from toolkit.notebook import REPO_ROOT, setup

    monkeypatch.setenv("TOOLKIT_NOTEBOOK_PRESET", "smoke")
    monkeypatch.setenv("TOOLKIT_RUNS_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    settings = setup(overrides=["arena.hands=4"], quiet=True)
    assert (settings.name, settings.model.name, settings.arena.hands) == ("smoke", "tiny", 4)
    assert settings.run_dir == tmp_path / "smoke" and settings.train.output_dir == str(tmp_path / "smoke" / "checkpoints")
    assert Path.cwd() == REPO_ROOT  # repo-relative paths work from any folder


def test_strip_removes_outputs_and_counts(tmp_path):
    from toolkit.notebook import strip

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]
    nb.cells[0].execution_count = 1
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    assert outputs_problems(nbformat.read(path, as_version=4)) == ["cell 0: has outputs", "cell 0: execution_count = 1"]
    assert strip(path) is True and strip(path) is False
    assert outputs_problems(nbformat.read(path, as_version=4)) == []
