"""The main job, one function per CLI command: materialize → data → train → export → eval → arena → demo.

Every step takes one validated ``RunSettings`` (a preset from ``configs/`` plus ``--set`` overrides),
writes into ``runs/<name>/`` and saves the settings and package versions beside what it wrote.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from toolkit.poker.arena import ArenaSettings
from toolkit.poker.spots import SpotSettings
from toolkit.settings import (LoraSettings, ModelSettings, SettingsError, TrainSettings, apply_overrides, build,
                              problem, read_file, save_json, to_dict)

OPPONENTS = ("random", "fish", "honest", "teacher")  # bots the arena knows by name
PACKAGES = ("unsloth", "unsloth_zoo", "torch", "transformers", "trl", "peft", "datasets", "PyPokerEngine", "eval7")


@dataclass
class DataSettings:
    dir: str = ""  # where the JSONL splits live; "" = runs/<name>/data. Reused when its settings.json matches `spots`
    train_rows: int = 0  # use at most this many training rows (0 = all)
    eval_rows: int = 200  # held-out test spots scored before and after training (0 = all)
    val_rows: int = 64  # validation rows for the eval loss during/after training (0 = all)
    skip_bad_rows: bool = False  # drop rows that fail validation instead of refusing to train
    system_prompt: str = "You are a poker player. Answer with one action."  # short system turn (SmolLM2's default is ~20 tokens)

    def problems(self, p: str = "data") -> list[str]:
        return [problem(f"{p}.{k}", getattr(self, k), "must be >= 0 (0 = all)") for k in ("train_rows", "eval_rows", "val_rows")
                if getattr(self, k) < 0]


@dataclass
class EvalSettings:
    opponents: list[str] = field(default_factory=lambda: list(OPPONENTS))  # bots for duplicate heads-up matches
    vs_base: bool = True  # also play the fine-tuned model against its own base model
    hands: dict[str, int] = field(default_factory=dict)  # hands per match for these opponents ("base" included);
    # the others play arena.hands. Spend hands where the figure is close (FishPlayer), not where it is not (Random)
    honest_sims: int = 100  # Monte Carlo sims per HonestPlayer decision (upstream: 1000, ~10x slower)
    generate_check: int = 0  # also score this many test spots with free-text generate-and-parse (0 = skip)
    merge_adapters: bool = True  # evaluate/play the fine-tuned model with B·A merged into W0 (what a merged export ships): ~2x faster on CPU; false = separate adapters, bit-exact to the saved ones

    def problems(self, p: str = "eval") -> list[str]:
        bad = [o for o in self.opponents if o not in OPPONENTS]
        out = [problem(f"{p}.opponents", bad, f"unknown bots; choose from {list(OPPONENTS)}")] if bad else []
        unknown = [o for o in self.hands if o not in (*OPPONENTS, "base")]
        if unknown:
            out.append(problem(f"{p}.hands", unknown, f"unknown opponents; choose from {[*OPPONENTS, 'base']}"))
        if self.honest_sims <= 0:
            out.append(problem(f"{p}.honest_sims", self.honest_sims, "must be positive, e.g. 100"))
        return out


@dataclass
class RunSettings:
    name: str = "demo"  # run folder: runs/<name>/
    runs_dir: str = "runs"  # parent of every run folder
    model: ModelSettings = field(default_factory=ModelSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    spots: SpotSettings = field(default_factory=SpotSettings)
    data: DataSettings = field(default_factory=DataSettings)
    arena: ArenaSettings = field(default_factory=ArenaSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)

    def problems(self) -> list[str]:
        out = []
        if not self.name or "/" in self.name:
            out.append(problem("name", self.name, "give a plain folder name such as demo or smoke"))
        for opponent, hands in self.eval.hands.items():
            if hands <= 0 or hands % self.arena.players:
                out.append(problem(f"eval.hands.{opponent}", hands, f"must be a positive multiple of arena.players = "
                                   f"{self.arena.players} (each deal is replayed with the seats rotated)"))
        return out

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name

    @property
    def data_dir(self) -> Path:
        return Path(self.data.dir) if self.data.dir else self.run_dir / "data"


def load_settings(config: str | Path | None = None, overrides: list[str] | None = None) -> RunSettings:
    """A preset file plus ``key=value`` overrides -> validated RunSettings (every problem listed at once)."""
    data = read_file(config) if config else {}
    data = apply_overrides(data, overrides or [])
    train = data.get("train") if isinstance(data.get("train"), dict) else None
    if train is not None and train.get("output_dir") in ("", None):  # "" = inside the run folder
        name = data.get("name", RunSettings.name)
        train["output_dir"] = str(Path(data.get("runs_dir", RunSettings.runs_dir)) / str(name) / "checkpoints")
    return build(RunSettings, data)


def versions() -> dict:
    out = {"python": platform.python_version(), "machine": platform.machine()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def record(settings: RunSettings) -> Path:
    """Save settings.json and versions.json in the run folder."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    save_json(settings, settings.run_dir / "settings.json")
    (settings.run_dir / "versions.json").write_text(json.dumps(versions(), indent=2) + "\n")
    return settings.run_dir


# --------------------------------------------------------------------------- steps
def step_materialize(settings: RunSettings) -> str:
    from toolkit.load import resolve_model_path

    return resolve_model_path(settings.model.name)


def step_data(settings: RunSettings, progress: bool = True) -> dict:
    """Generate the spot dataset, or reuse it when the folder already holds one made with the same settings."""
    from toolkit.poker.dataset import build_dataset

    folder = settings.data_dir
    saved = folder / "settings.json"
    user_data = bool(settings.data.dir) and (folder / "train.jsonl").is_file() and not saved.is_file()
    if user_data:  # the user's own JSONL splits: never overwritten
        stats_file = folder / "stats.json"
        return {"reused": True, "dir": str(folder), "stats": json.loads(stats_file.read_text()) if stats_file.is_file() else {}}
    if saved.is_file() and json.loads(saved.read_text()) == to_dict(settings.spots) and (folder / "train.jsonl").is_file():
        return {"reused": True, "dir": str(folder), "stats": json.loads((folder / "stats.json").read_text())}
    if settings.data.dir and saved.is_file():
        raise ValueError(f"data.dir = {settings.data.dir!r} holds a dataset generated with other `spots` settings; "
                         "point data.dir at a new folder, or delete that one to regenerate it")
    result = build_dataset(settings.spots, folder, progress=progress)
    return {"reused": False, "dir": str(folder), "stats": result["stats"]}


def _rows(settings: RunSettings, split: str, limit: int) -> list[dict]:
    from toolkit.data import read_rows

    path = settings.data_dir / f"{split}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run `python -m toolkit data` with the same settings first")
    rows = read_rows(path)
    return rows[:limit] if limit else rows


def step_train(settings: RunSettings, resume: bool = False):
    """Load → attach LoRA → train on the train split (validation split for eval loss) → save adapters.

    Returns ``(model, tokenizer, TrainResult)``; adapters land in ``runs/<name>/adapter``.
    """
    from toolkit.data import prepare
    from toolkit.export import save_adapters
    from toolkit.load import load_model
    from toolkit.lora import attach_lora, parameter_report
    from toolkit.resources import check_fits
    from toolkit.train import train

    record(settings)
    check_fits(settings.model, settings.lora, settings.train)  # refuse, before loading, a run that clearly won't fit
    model, tokenizer = load_model(settings.model)
    model = attach_lora(model, settings.lora)
    report = parameter_report(model)
    (settings.run_dir / "parameters.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    system = settings.data.system_prompt or None
    test_rows = _rows(settings, "test", 0)
    train_data, data_report = prepare(_rows(settings, "train", settings.data.train_rows), tokenizer,
                                      settings.model.max_seq_length, settings.data.skip_bad_rows,
                                      other_splits={"test": test_rows}, system_prompt=system)
    val_rows = _rows(settings, "validation", settings.data.val_rows)
    eval_data = prepare(val_rows, tokenizer, settings.model.max_seq_length, True, system_prompt=system)[0] if val_rows else None
    (settings.run_dir / "data_validation.json").write_text(json.dumps(
        {"rows": data_report.n_rows, "skipped": len(data_report.bad_rows), "problems": data_report.problems}, indent=2) + "\n")
    result = train(model, tokenizer, train_data, settings.train, eval_data, settings.model.max_seq_length, resume=resume)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun/accelerate every rank holds the same adapters
        save_adapters(model, tokenizer, settings.run_dir / "adapter", settings)
    return model, tokenizer, result


def step_export(settings: RunSettings, model=None, tokenizer=None, merged: bool = False) -> dict:
    """Reload the saved adapters from disk, verify them against the in-memory model (exact), size report,
    and optionally merge to 16-bit and verify within ``MERGED_TOLERANCE``."""
    from toolkit.export import (MERGED_TOLERANCE, check_export, load_adapters, load_merged, save_merged, size_report,
                                verify)

    adapter_dir = settings.run_dir / "adapter"
    manifest = check_export(adapter_dir)
    reloaded, rtok = load_adapters(adapter_dir, settings.model.max_seq_length)
    out = {"adapter_dir": str(adapter_dir), "size": size_report(adapter_dir, manifest["base_model_path"]).__dict__}
    if model is not None:
        out["verify_adapter"] = verify(model, reloaded, tokenizer).__dict__
    if merged:
        merged_dir = save_merged(reloaded, rtok, settings.run_dir / "merged")
        merged_model, _ = load_merged(merged_dir, settings.model.max_seq_length)
        out["verify_merged"] = verify(reloaded, merged_model, rtok, tolerance=MERGED_TOLERANCE).__dict__
    (settings.run_dir / "export.json").write_text(json.dumps(out, indent=2) + "\n")
    return {"result": out, "model": reloaded, "tokenizer": rtok}


def for_play(settings: RunSettings, model):
    """The model used for evaluation and play: with ``eval.merge_adapters`` a PEFT model's adapters are
    merged into its weights in place (``merge_and_unload``: no extra LoRA matmuls per layer, ~2x faster
    decisions on CPU; in bf16 the merged weights round, as a merged 16-bit export does). Plain models and
    ``merge_adapters: false`` pass through."""
    if settings.eval.merge_adapters and hasattr(model, "merge_and_unload"):
        merged = model.merge_and_unload()
        merged.toolkit_merged_adapters = True
        return merged
    return model


def step_eval(settings: RunSettings, model, tokenizer, label: str, progress: bool = True) -> dict:
    """Decision accuracy (agreement with the teacher) on held-out test spots, PokerBench metrics per street."""
    from toolkit.poker.evaluate import evaluate

    rows = _rows(settings, "test", settings.data.eval_rows)
    result = evaluate(model, tokenizer, rows, "score", progress, desc=f"eval {label}",
                      system_prompt=settings.data.system_prompt or None)
    if settings.eval.generate_check:
        gen = evaluate(model, tokenizer, rows[: settings.eval.generate_check], "generate", progress,
                       desc=f"generate {label}", system_prompt=settings.data.system_prompt or None)
        result["generate"] = {k: gen[k] for k in ("overall", "agreement", "decisions_per_s", "unparseable_rate")}
    settings.run_dir.mkdir(parents=True, exist_ok=True)  # `eval` may be the first command of a run
    (settings.run_dir / f"eval_{label}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def opponent_factory(name: str, settings: RunSettings):
    from examples.players.fish_player import FishPlayer
    from examples.players.random_player import RandomPlayer

    from toolkit.poker.arena import QuickHonestPlayer
    from toolkit.poker.teacher import TeacherPlayer

    sims = settings.eval.honest_sims
    return {"random": RandomPlayer, "fish": FishPlayer, "teacher": TeacherPlayer,
            "honest": lambda: QuickHonestPlayer(sims)}[name]


def step_arena(settings: RunSettings, model, tokenizer, label: str, base=None, progress: bool = True) -> dict:
    """Duplicate heads-up matches of the model against each bot (and against ``base`` when given)."""
    from toolkit.poker import metrics
    from toolkit.poker.player import LLMPlayer

    player = LLMPlayer(model, tokenizer, system_prompt=settings.data.system_prompt or None)
    # One process: forking after torch has run (the model is loaded) can deadlock in OpenMP.
    common = {**to_dict(settings.arena), "progress": progress, "workers": 1}
    out_dir = settings.run_dir / f"arena_{label}"
    results = {}
    opponents = {name: opponent_factory(name, settings) for name in settings.eval.opponents}
    if base is not None:
        base_player = LLMPlayer(base[0], base[1], system_prompt=settings.data.system_prompt or None)
        opponents["base"] = lambda: base_player
    from toolkit.poker.arena import play_match

    for name, factory in opponents.items():
        start = time.perf_counter()
        arena = build(ArenaSettings, {**common, "hands": settings.eval.hands.get(name, settings.arena.hands)})
        match = play_match({label: lambda: player, name: factory}, arena)
        match.save(out_dir / f"vs_{name}.json")
        hero = metrics.summarize(match)["players"][label]
        results[name] = {**hero, "hands": len(match.hands), "seconds": round(time.perf_counter() - start, 1)}
    results["player"] = player.stats()
    out_dir.mkdir(parents=True, exist_ok=True)  # `arena` may be the first command of a run (or have no opponents)
    (out_dir / "decisions.json").write_text(json.dumps(player.log()[:200], indent=1) + "\n")
    (settings.run_dir / f"arena_{label}.json").write_text(json.dumps(results, indent=2) + "\n")
    return results
