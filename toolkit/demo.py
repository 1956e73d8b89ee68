"""The main job: fine-tune the embedded model to play poker and prove it at a PyPokerEngine table.

1. generate (or reuse) the spot dataset            4. export the adapters, reload them from disk, verify
2. measure the base model (accuracy + arena)       5. measure the fine-tuned model the same way (+ vs base)
3. attach LoRA and fine-tune with SFT               6. write runs/<name>/report.md from results.json
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from toolkit import pipeline
from toolkit.report import write_report


def run_demo(settings: pipeline.RunSettings, progress: bool = True) -> Path:
    """Run every step and return the path of the report; every figure is also in results.json."""
    from toolkit.load import load_model

    timings: dict[str, float] = {}
    start = time.perf_counter()

    def lap(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 1)
        print(f"[demo] {name} done in {timings[name]:.0f} s", flush=True)

    run_dir = pipeline.record(settings)
    t = time.perf_counter()
    data = pipeline.step_data(settings, progress)
    lap("data", t)

    t = time.perf_counter()
    base_model, base_tok = load_model(settings.model)
    base_eval = pipeline.step_eval(settings, base_model, base_tok, "base", progress)
    lap("eval_base", t)
    t = time.perf_counter()
    base_arena = pipeline.step_arena(settings, base_model, base_tok, "base", progress=progress)
    lap("arena_base", t)

    t = time.perf_counter()
    model, tokenizer, train_result = pipeline.step_train(settings)
    lap("train", t)
    t = time.perf_counter()
    exported = pipeline.step_export(settings, model, tokenizer, merged=False)
    lap("export", t)
    del model  # from here on only the adapters reloaded from disk are measured
    ft_model, ft_tok = pipeline.for_play(settings, exported["model"]), exported["tokenizer"]

    t = time.perf_counter()
    ft_eval = pipeline.step_eval(settings, ft_model, ft_tok, "finetuned", progress)
    lap("eval_finetuned", t)
    t = time.perf_counter()
    base = (base_model, base_tok) if settings.eval.vs_base else None
    ft_arena = pipeline.step_arena(settings, ft_model, ft_tok, "finetuned", base=base, progress=progress)
    lap("arena_finetuned", t)
    timings["total"] = round(time.perf_counter() - start, 1)

    results = {
        "name": settings.name,
        "settings": pipeline.to_dict(settings),
        "versions": pipeline.versions(),
        "data": {"dir": data["dir"], "reused": data["reused"], "stats": data["stats"]},
        "parameters": json.loads((run_dir / "parameters.json").read_text()),
        "train": {k: v for k, v in train_result.to_dict().items() if k != "log_history"},
        "export": exported["result"],
        "eval": {"base": _trim(base_eval), "finetuned": _trim(ft_eval)},
        "arena": {"base": base_arena, "finetuned": ft_arena},
        "timings_s": timings,
    }
    (run_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return write_report(run_dir)


def _trim(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "predictions"}

