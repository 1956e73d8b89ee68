"""Notebook support: one ``setup()`` call at the top of every lesson, and the commands that run them.

    from toolkit.notebook import setup
    settings = setup()            # "smoke" (tiny model) on CPU / in CI, "demo" (SmolLM2-135M) on a GPU

Preset choice, first match wins:

1. ``$TOOLKIT_NOTEBOOK_PRESET`` (the notebook test sets it to ``smoke``);
2. the ``preset=`` argument (``setup("demo")`` runs the real model even on a CPU: ~20 min per lesson);
3. ``$CI`` set, or no CUDA GPU -> ``"smoke"``;
4. otherwise ``"demo"``.

``$TOOLKIT_RUNS_DIR`` moves every run folder (the notebook test points it at a temp dir).

Commands::

    python -m toolkit.notebook build [NAME ...]   # execute notebooks, write HTML to notebooks/executed/
    python -m toolkit.notebook strip              # remove outputs and execution counts before committing
    python -m toolkit.notebook check              # fail if a notebook has outputs (what the test checks)
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO_ROOT / "notebooks"
EXECUTED = NOTEBOOKS / "executed"
PRESETS = ("smoke", "demo")  # configs/<preset>.yaml
SHOWN_PACKAGES = ("torch", "unsloth", "transformers", "trl", "peft", "datasets", "PyPokerEngine", "eval7", "matplotlib")


# --------------------------------------------------------------------------- setup()
def has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def choose_preset(preset: str | None = None) -> tuple[str, str]:
    """``(preset, why)`` following the rules in the module docstring."""
    forced = os.environ.get("TOOLKIT_NOTEBOOK_PRESET", "").strip()
    if forced:
        name, why = forced, "$TOOLKIT_NOTEBOOK_PRESET"
    elif preset:
        name, why = preset, "setup(preset=...)"
    elif os.environ.get("CI"):
        name, why = "smoke", "$CI is set"
    elif not has_gpu():
        name, why = "smoke", "no CUDA GPU (pass setup('demo') to run the real model on the CPU anyway)"
    else:
        name, why = "demo", "a CUDA GPU is present"
    if name not in PRESETS:
        raise ValueError(f"preset = {name!r} (from {why}): must be one of {list(PRESETS)} (files in configs/)")
    return name, why


def seed_everything(seed: int) -> None:
    """Python, NumPy and torch (CPU and CUDA) generators."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def versions() -> dict[str, str | None]:
    out = {"python": sys.version.split()[0]}
    for name in SHOWN_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def setup(preset: str | None = None, overrides: list[str] | None = None, seed: int = 0, quiet: bool = False):
    """Prepare a lesson: choose the preset, work from the repo root, seed, print versions; return ``RunSettings``.

    Args:
        preset: "smoke" or "demo"; None picks by environment (see module docstring).
        overrides: extra ``section.key=value`` settings, e.g. ``["arena.hands=40"]``.
        seed: seeds Python, NumPy and torch once here (each step also seeds itself from its settings).
    """
    os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")  # no usage ping from a lesson
    os.chdir(REPO_ROOT)  # lessons use repo-relative paths (configs/, runs/, tests/fixtures/) from any folder
    name, why = choose_preset(preset)
    from toolkit.pipeline import load_settings

    extra = list(overrides or [])
    runs_dir = os.environ.get("TOOLKIT_RUNS_DIR")
    if runs_dir:
        extra.insert(0, f"runs_dir={runs_dir}")
    settings = load_settings(REPO_ROOT / "configs" / f"{name}.yaml", extra)
    seed_everything(seed)
    _inline_plots()
    if not quiet:
        gpu = _gpu_name()
        print(f"preset: {name} ({why}) -> model {settings.model.name!r}, runs in {settings.run_dir}/")
        print(f"device: {gpu or 'CPU only'} | {os.cpu_count()} CPU cores | working folder {Path.cwd()}")
        print("versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()))
    return settings


def _inline_plots() -> None:
    """Inside Jupyter, show matplotlib Figures inline even if $MPLBACKEND says Agg (as in CI)."""
    try:
        from IPython import get_ipython
        from ipykernel.zmqshell import ZMQInteractiveShell  # Jupyter and Colab kernels (not a terminal IPython)
    except ImportError:
        return
    shell = get_ipython()
    if isinstance(shell, ZMQInteractiveShell):
        shell.run_line_magic("matplotlib", "inline")


def _gpu_name() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


# --------------------------------------------------------------------------- running notebooks
def notebook_paths(names: list[str] | None = None) -> list[Path]:
    """``notebooks/NN_*.ipynb`` in order; ``names`` filters by prefix or file name (e.g. ``["00", "02_attach_lora"]``)."""
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if names:
        chosen = [p for p in paths if any(p.name.startswith(n) or p.stem == n for n in names)]
        unknown = [n for n in names if not any(p.name.startswith(n) or p.stem == n for p in paths)]
        if unknown:
            raise FileNotFoundError(f"notebooks {unknown}: not found; choose from {[p.name for p in paths]}")
        return chosen
    return paths


def execute(path: str | Path, timeout: int = 900, kernel: str = "python3"):
    """Run a notebook top to bottom in a fresh kernel (cwd = notebooks/); return the executed NotebookNode.

    A failing cell raises ``nbclient.exceptions.CellExecutionError`` naming the cell and the error.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name=kernel, resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def outputs_problems(nb) -> list[str]:
    """What would make a committed notebook unclean: outputs, execution counts, widget state."""
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            out.append(f"cell {i}: has outputs")
        if cell.get("execution_count") is not None:
            out.append(f"cell {i}: execution_count = {cell.execution_count}")
    if "widgets" in nb.metadata:
        out.append("metadata.widgets: saved widget state")
    return out


def strip(path: str | Path) -> bool:
    """Remove outputs, execution counts and widget state in place; True if the file changed."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    if not outputs_problems(nb):
        return False
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    return True


def build(names: list[str] | None = None, out_dir: str | Path = EXECUTED, timeout: int = 900) -> list[Path]:
    """Execute notebooks and write an HTML copy of each (plots and outputs included) to ``out_dir``."""
    from nbconvert import HTMLExporter

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebook_paths(names):
        start = time.perf_counter()
        nb = execute(path, timeout)
        html, _ = HTMLExporter().from_notebook_node(nb)
        target = out_dir / f"{path.stem}.html"
        target.write_text(html, encoding="utf-8")
        written.append(target)
        print(f"{path.name}: {time.perf_counter() - start:.0f} s -> {target}", flush=True)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m toolkit.notebook", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="execute notebooks and write HTML to notebooks/executed/")
    b.add_argument("names", nargs="*", help="notebook prefixes, e.g. 00 03 (default: all)")
    b.add_argument("--out", default=str(EXECUTED), help="output folder (default: %(default)s)")
    b.add_argument("--timeout", type=int, default=900, help="seconds per cell (default: %(default)s)")
    sub.add_parser("strip", help="remove outputs and execution counts from notebooks/*.ipynb")
    sub.add_parser("check", help="exit 1 if any notebook has outputs or execution counts")
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.names or None, args.out, args.timeout)
        return 0
    import nbformat

    bad = 0
    for path in notebook_paths():
        if args.command == "strip":
            print(f"{path.name}: {'stripped' if strip(path) else 'clean'}")
        else:
            problems = outputs_problems(nbformat.read(path, as_version=4))
            bad += bool(problems)
            print(f"{path.name}: {'; '.join(problems) or 'clean'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
