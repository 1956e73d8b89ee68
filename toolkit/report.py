"""``runs/<name>/report.md``: every figure of the demo, rendered from ``results.json`` and nothing else.

Because the report is a pure function of the JSON (``render(results)``), its numbers are the measured
ones; ``tests/test_demo.py`` parses them back and checks they match.
"""
from __future__ import annotations

import json
from pathlib import Path

TARGET_AGREEMENT = 0.80  # issue target: agreement with the teacher on held-out spots
TARGET_MINUTES = 20  # issue target: the demo preset finishes within this on a 2-core CPU


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _ci(e: dict) -> str:
    return f"{e['value']:+.1f} [{e['low']:+.1f}, {e['high']:+.1f}]"


def targets(results: dict) -> list[tuple[str, str, bool]]:
    """(target, measured, met?) for the demo's three promises."""
    out = []
    agree_ft = results["eval"]["finetuned"]["agreement"]
    agree_base = results["eval"]["base"]["agreement"]
    out.append((f"agreement with the teacher on held-out spots ≥ {_pct(TARGET_AGREEMENT)}",
                f"{_pct(agree_ft)} (base model: {_pct(agree_base)})", agree_ft >= TARGET_AGREEMENT))
    arena = results["arena"]["finetuned"]
    if "base" in arena:
        e = arena["base"]["bb100"]
        out.append(("beats its own base model heads-up (95% CI above 0 bb/100)", f"{_ci(e)} bb/100", e["low"] > 0))
    for bot in ("random", "fish"):
        if bot in arena:
            e = arena[bot]["bb100"]
            out.append((f"beats {bot} with significance (p < 0.05, CI above 0)", f"{_ci(e)} bb/100, p = {e['p_value']:.3g}",
                        e["low"] > 0 and e["p_value"] < 0.05))
    total = results.get("timings_s", {}).get("total")
    if total is not None:
        out.append((f"the whole run finishes within {TARGET_MINUTES} minutes on this machine",
                    f"{int(total // 60)} min {total % 60:.0f} s", total <= 60 * TARGET_MINUTES))
    return out


def plots(results: dict, run_dir: Path) -> dict[str, str]:
    """Write the PNGs next to the report; returns {name: file name}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from toolkit.poker import plots as poker_plots
    from toolkit.poker.evaluate import plot_confusion
    from toolkit.poker.metrics import Estimate

    files = {}
    train = results["train"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if train["train_loss"]:
        ax.plot(*zip(*train["train_loss"]), label="train loss")
    if train["eval_loss"]:
        ax.plot(*zip(*train["eval_loss"]), "o-", label="validation loss")
    ax.set(xlabel="optimizer step", ylabel="loss (answer tokens only)", title="SFT loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(run_dir / "loss.png", dpi=110)
    plt.close(fig)
    files["loss"] = "loss.png"

    streets = ["overall"] + list(results["eval"]["finetuned"]["by_street"])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i, (label, ev) in enumerate(results["eval"].items()):
        values = [ev["agreement"]] + [ev["by_street"].get(s, {}).get("exact_match", 0) for s in streets[1:]]
        ax.bar([j + 0.38 * i for j in range(len(streets))], values, width=0.38, label=label)
    ax.axhline(TARGET_AGREEMENT, color="black", ls="--", lw=0.8, label="target")
    ax.set_xticks([j + 0.19 for j in range(len(streets))], streets)
    ax.set(ylim=(0, 1), ylabel="agreement with teacher", title="Held-out decisions: before vs after fine-tuning")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(run_dir / "accuracy.png", dpi=110)
    plt.close(fig)
    files["accuracy"] = "accuracy.png"

    est = {label: {name: Estimate(**r["bb100"]) for name, r in arena.items() if name != "player"}
           for label, arena in results["arena"].items()}
    poker_plots.compare(est["base"], est["finetuned"], path=run_dir / "bb100.png",
                        title="Duplicate heads-up win rate")
    files["bb100"] = "bb100.png"

    mix = {"hands": sum(r["hands"] for r in results["arena"]["finetuned"].values() if isinstance(r, dict) and "hands" in r),
           "players": {f"{label}": {"action_share": _mean_share(arena)} for label, arena in results["arena"].items()}}
    poker_plots.action_mix(mix, path=run_dir / "action_mix.png")
    files["action_mix"] = "action_mix.png"
    plot_confusion(results["eval"]["finetuned"]["confusion"], "Fine-tuned model vs teacher (held-out spots)",
                   run_dir / "confusion.png")
    files["confusion"] = "confusion.png"
    return files


def _mean_share(arena: dict) -> dict:
    """Action shares over all matches, weighted by decisions."""
    rows = [r for name, r in arena.items() if name != "player" and r.get("decisions")]
    total = sum(r["decisions"] for r in rows) or 1
    kinds = rows[0]["action_share"] if rows else {}
    return {k: sum(r["action_share"][k] * r["decisions"] for r in rows) / total for k in kinds}


def render(results: dict, files: dict[str, str]) -> str:
    """The markdown report (pure function of results.json and the plot file names)."""
    s = results["settings"]
    ev, arena, train, export = results["eval"], results["arena"], results["train"], results["export"]
    lines = [f"# Run `{results['name']}`: {s['model']['name']} fine-tuned to play poker", ""]
    lines += ["## Targets", "", "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {'yes' if ok else '**no**'} |" for t, m, ok in targets(results)]
    lines += ["", "## Decisions on held-out spots (agreement with the teacher)", "",
              "| model | agreement | action accuracy | exact match | decisions/s |", "|---|---|---|---|---|"]
    for label, e in ev.items():
        lines.append(f"| {label} | {_pct(e['agreement'])} | {_pct(e['overall']['action_accuracy'])} | "
                     f"{_pct(e['overall']['exact_match'])} | {e['decisions_per_s']:.2f} |")
    lines += ["", "Per street (exact match, PokerBench definition):", "", "| street | " + " | ".join(ev) + " | n |",
              "|---|" + "---|" * (len(ev) + 1)]
    for street in ev["finetuned"]["by_street"]:
        cells = [_pct(e["by_street"].get(street, {}).get("exact_match", 0)) for e in ev.values()]
        lines.append(f"| {street} | " + " | ".join(cells) + f" | {ev['finetuned']['by_street'][street]['n']} |")
    lines += ["", f"![accuracy]({files['accuracy']}) ![confusion]({files['confusion']})", ""]
    lines += ["## Duplicate heads-up matches (bb/100, 95% CI)", "",
              "| opponent | base model | fine-tuned | hands | p (fine-tuned) |", "|---|---|---|---|---|"]
    for name, r in arena["finetuned"].items():
        if name == "player":
            continue
        before = _ci(arena["base"][name]["bb100"]) if name in arena["base"] else "—"
        lines.append(f"| {name} | {before} | {_ci(r['bb100'])} | {r['hands']} | {r['bb100']['p_value']:.3g} |")
    for label, a in arena.items():
        p = a["player"]
        lines.append(f"\n{label}: {p['decisions']} decisions, {p['decisions_per_s']:.2f} decisions/s, "
                     f"{p['illegal']} illegal, {p['errors']} errors (scoring legal candidates only).")
    if s["eval"].get("merge_adapters"):
        lines.append("\nThe fine-tuned model was evaluated and played with its adapters merged into the weights "
                     "(`eval.merge_adapters: true`, what a merged 16-bit export ships).")
    lines += ["", f"![bb100]({files['bb100']}) ![action mix]({files['action_mix']})", ""]
    lines += ["## Training", "",
              f"- LoRA r = {s['lora']['r']}, alpha = {s['lora']['alpha']}, targets = {', '.join(s['lora']['target_modules'])}"
              + (f" in the last {s['lora']['last_layers']} decoder blocks" if s["lora"].get("last_layers") else " in every decoder block"),
              f"- trainable parameters: {results['parameters']['peft_trainable']:,} of {results['parameters']['total_params']:,} "
              f"({100 * results['parameters']['peft_trainable'] / results['parameters']['total_params']:.2f}%)",
              f"- {train['steps']} steps, batch {s['train']['batch_size']}×{s['train']['grad_accum']}, lr {s['train']['lr']}, "
              f"{train['trained_tokens']:,} tokens in {train['runtime_s']:.0f} s = {train['tokens_per_s']:.0f} tokens/s"
              + (" (decoder layers torch.compiled for training; compile time included)" if train.get("compiled") else ""),
              f"- loss {train['train_loss'][0][1]:.3f} → {train['train_loss'][-1][1]:.3f}; "
              f"peak memory {train['peak_memory_mb']:.0f} MB ({train['memory_kind']})", "", f"![loss]({files['loss']})", ""]
    size = export["size"]
    lines += ["## Export", "",
              f"- adapters reloaded from `{export['adapter_dir']}` and compared with the in-memory model: "
              f"max |Δlogit| = {export['verify_adapter']['max_abs_diff']:.3g} "
              f"({'exact' if export['verify_adapter']['passed'] else 'MISMATCH'})" if "verify_adapter" in export else "",
              f"- adapter {size['adapter_bytes'] / 2**20:.2f} MiB vs full model {size['full_model_bytes'] / 2**20:.1f} MiB "
              f"({size['ratio']:.0f}× smaller)", ""]
    data = results["data"]["stats"]
    lines += ["## Data", "", f"- `{results['data']['dir']}` ({'reused' if results['data']['reused'] else 'generated'}): "
              + ", ".join(f"{k} {v}" for k, v in data["rows"].items()),
              "- labels: " + ", ".join(f"{k} {v}" for k, v in data["label_verb"].items()), ""]
    lines += ["## Time", "", "| step | seconds |", "|---|---|"] + [f"| {k} | {v:.0f} |" for k, v in results["timings_s"].items()]
    lines += ["", "## Settings and versions", "", "```json", json.dumps(s, indent=1), "```", "", "```json",
              json.dumps(results["versions"], indent=1), "```", ""]
    return "\n".join(lines)


def write_report(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    results = json.loads((run_dir / "results.json").read_text())
    files = plots(results, run_dir)
    path = run_dir / "report.md"
    path.write_text(render(results, files))
    return path
