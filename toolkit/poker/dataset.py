"""Labelled spots -> train/validation/test JSONL files, a stats summary and a chart.

Each row carries the same example in two views plus metadata::

    {"spot_id": "s0-h3-p4-d0", "street": "flop", "position": "BTN", "n_players": 6,
     "candidates": ["check", "bet 2.1", "bet 4.2", "bet 6.3", "bet 97.5"], "label": "bet 4.2", "label_verb": "bet",
     "messages": [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": "bet 4.2"}],  # chat view (TRL SFT)
     "instruction": PROMPT, "output": "bet 4.2"}                                                     # PokerBench view

Splits are decided by a hash of the prompt text, so identical prompts always land in the same split
(no prompt, and hence no spot, is shared across splits) and a row's split does not depend on the
other rows. Same settings -> same bytes. Regenerate the shipped sample with::

    python -m toolkit.poker.dataset --seed 0 --n-spots 150 --out data/poker
"""
from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter
from pathlib import Path

from ..settings import build, save_json, to_dict
from .actions import STREETS, VERBS, Action
from .render import render_prompt
from .spots import SpotSettings, generate_spots
from .state import Spot

SPLITS = ("train", "validation", "test")
ROW_FIELDS = ("spot_id", "street", "position", "n_players", "candidates", "label", "label_verb",
              "messages", "instruction", "output")


def make_row(spot: Spot, label: Action, style: str = "compact") -> dict:
    """One dataset row (see module docstring) for a spot and its teacher label."""
    prompt, answer = render_prompt(spot, style), str(label)
    return {
        "spot_id": spot.spot_id, "street": spot.street, "position": spot.position, "n_players": spot.n_players,
        "candidates": [str(a) for a in spot.candidates], "label": answer, "label_verb": label.verb,
        "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
        "instruction": prompt, "output": answer,
    }


def split_of(prompt: str, shares: dict[str, float], seed: int) -> str:
    """Split for a prompt: a uniform number from sha256(seed, prompt) cut at the cumulative shares."""
    u = int(hashlib.sha256(f"{seed}\n{prompt}".encode()).hexdigest()[:12], 16) / 16 ** 12
    edge = 0.0
    for name in SPLITS:
        edge += shares[name]
        if u < edge:
            return name
    return SPLITS[-1]


def summarize(rows_by_split: dict[str, list[dict]]) -> dict:
    """Counts that show whether the data is balanced: labels, streets, positions, per split and overall."""
    rows = [r for name in SPLITS for r in rows_by_split[name]]
    order = {v: i for i, v in enumerate(VERBS + STREETS + ("UTG", "HJ", "CO", "BTN", "SB", "BB"))}

    def count(key: str, rs: list[dict]) -> dict:  # in poker order (fold..bet, preflop..river, UTG..BB)
        return dict(sorted(Counter(r[key] for r in rs).items(), key=lambda kv: (order.get(kv[0], 99), str(kv[0]))))
    return {
        "rows": {name: len(rows_by_split[name]) for name in SPLITS} | {"total": len(rows)},
        "label_verb": count("label_verb", rows),
        "street": count("street", rows),
        "position": count("position", rows),
        "n_players": {str(k): v for k, v in count("n_players", rows).items()},
        "label_verb_by_split": {name: count("label_verb", rows_by_split[name]) for name in SPLITS},
        "mean_prompt_chars": round(sum(len(r["instruction"]) for r in rows) / max(len(rows), 1), 1),
    }


def stats_figure(stats: dict):
    """Three bar charts (answer verb, street, hero position) as a matplotlib Figure (shows inline in notebooks)."""
    from matplotlib.figure import Figure  # not pyplot: never switches the caller's backend

    fig = Figure(figsize=(12, 3.6))
    axes = fig.subplots(1, 3)
    for ax, (key, title) in zip(axes, [("label_verb", "Teacher's answer"), ("street", "Street"), ("position", "Hero position")]):
        names, values = list(stats[key]), list(stats[key].values())
        ax.bar(names, values, color="#4C72B0")
        ax.set_title(title)
        ax.set_ylabel("spots")
        for i, v in enumerate(values):
            ax.annotate(str(v), (i, v), ha="center", va="bottom", fontsize=8)
    fig.suptitle(f"Poker spots: {stats['rows']['total']} rows "
                 f"(train {stats['rows']['train']} / validation {stats['rows']['validation']} / test {stats['rows']['test']})")
    fig.tight_layout()
    return fig


def plot_stats(stats: dict, path: Path) -> Path:
    """``stats_figure`` saved as a PNG."""
    stats_figure(stats).savefig(path, dpi=80, metadata={"Software": None})  # no version stamp: same data -> same bytes
    return path


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: str | Path) -> list[dict]:
    """Read rows back, checking every row has the dataset's fields (errors name file and line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; build it with `python -m toolkit.poker.dataset --out {path.parent}`")
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} line {i}: not valid JSON ({exc.msg})") from exc
        missing = [k for k in ROW_FIELDS if k not in row]
        if missing:
            raise ValueError(f"{path} line {i} (spot {row.get('spot_id', '?')!r}): missing fields {missing}; "
                             "rebuild the file with toolkit.poker.dataset")
        rows.append(row)
    return rows


def load_splits(folder: str | Path = "data/poker"):
    """The JSONL splits in ``folder`` as an HF ``datasets.DatasetDict``."""
    from datasets import Dataset, DatasetDict

    return DatasetDict({name: Dataset.from_list(read_jsonl(Path(folder) / f"{name}.jsonl")) for name in SPLITS})


def build_dataset(settings: SpotSettings, out_dir: str | Path = "data/poker", progress: bool = True) -> dict:
    """Generate, label, split and write a dataset.

    Returns ``{"files": {"train": path, "validation": ..., "test": ..., "stats": ..., "chart": ...,
    "settings": ...}, "stats": summary dict}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows_by_split: dict[str, list[dict]] = {name: [] for name in SPLITS}
    for spot, label in generate_spots(settings, progress=progress):
        row = make_row(spot, label, settings.prompt_style)
        rows_by_split[split_of(row["instruction"], settings.splits, settings.seed)].append(row)
    files = {name: str(write_jsonl(rows_by_split[name], out / f"{name}.jsonl")) for name in SPLITS}
    stats = summarize(rows_by_split)
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    files["stats"] = str(out / "stats.json")
    files["chart"] = str(plot_stats(stats, out / "stats.png"))
    files["settings"] = str(save_json(settings, out / "settings.json"))
    return {"files": files, "stats": stats}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Generate teacher-labelled poker spots as JSONL splits.")
    parser.add_argument("--seed", type=int, default=0, help="same seed -> same bytes")
    parser.add_argument("--n-spots", type=int, default=1000, help="decision points to keep")
    parser.add_argument("--players", type=int, default=6, choices=(2, 6), help="6-max or heads-up")
    parser.add_argument("--style", default="compact", choices=("compact", "pokerbench"), help="prompt wording")
    parser.add_argument("--out", default="data/poker", help="output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    base = to_dict(SpotSettings())
    base.update(seed=args.seed, n_spots=args.n_spots, players=args.players, prompt_style=args.style)
    result = build_dataset(build(SpotSettings, base), args.out, progress=not args.quiet)
    print(json.dumps(result["stats"]["rows"]), "->", args.out)
    return result


if __name__ == "__main__":
    main()
