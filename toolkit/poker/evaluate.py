"""Decision-set evaluation: how often a model agrees with the labels of a held-out spot file.

Works on our own spot files (rows carry ``candidates``: the model picks among them by score, exactly as
``LLMPlayer`` does at the table) and on PokerBench files (no candidates: the model generates free text,
which is parsed). Scores use PokerBench's own definitions (``pokerbench.score``): action accuracy (the
verb matches) and exact match (verb and size match), overall and per street, plus a verb confusion
matrix.
"""
from __future__ import annotations

import time
from pathlib import Path

from tqdm.auto import tqdm

from .actions import VERBS
from .player import LLMPlayer, pick
from .pokerbench import parse_answer, score


def predict(model, tokenizer, rows: list[dict], mode: str = "score", progress: bool = True,
            desc: str = "evaluating", system_prompt: str | None = None) -> tuple[list[str], float]:
    """One answer per row and the decisions/s. ``score`` needs each row's ``candidates``."""
    import random

    player = LLMPlayer(model, tokenizer, mode=mode, system_prompt=system_prompt)  # scoring reuses the shared prefix
    answers, start = [], time.perf_counter()
    for i, row in enumerate(tqdm(rows, desc=desc, disable=not progress)):
        prompt = row.get("instruction") or row["messages"][0]["content"]
        if mode == "score":
            if not row.get("candidates"):
                raise ValueError(f"row {i}: no 'candidates' to score; use mode='generate' for PokerBench files")
            scores = player.score(prompt, list(row["candidates"]))
            answers.append(row["candidates"][pick(list(row["candidates"]), scores, 0.0, random.Random(0))])
        else:
            answers.append(player.generate(prompt).strip())
    elapsed = time.perf_counter() - start
    return answers, len(rows) / elapsed if elapsed else 0.0


def confusion(predictions: list[str], references: list[str]) -> dict[str, dict[str, int]]:
    """``{label_verb: {predicted_verb: count}}``; unparseable predictions count as "other"."""
    table = {v: {p: 0 for p in VERBS + ("other",)} for v in VERBS}
    for pred, ref in zip(predictions, references):
        ref_verb = parse_answer(ref)[0]
        if ref_verb in table:
            verb = parse_answer(pred)[0]
            table[ref_verb][verb if verb in VERBS else "other"] += 1
    return table


def evaluate(model, tokenizer, rows: list[dict], mode: str = "score", progress: bool = True, desc: str = "evaluating",
             system_prompt: str | None = None) -> dict:
    """Agreement with the labels: PokerBench metrics per street, exact agreement, confusion matrix."""
    if not rows:
        raise ValueError("evaluate: no rows; give a held-out spot file such as runs/<name>/data/test.jsonl")
    predictions, per_second = predict(model, tokenizer, rows, mode, progress, desc, system_prompt)
    references = [row.get("output") or row["label"] for row in rows]
    prompts = [row.get("instruction") or row["messages"][0]["content"] for row in rows]
    result = score(predictions, references, prompts)
    result["agreement"] = sum(p.strip() == r.strip() for p, r in zip(predictions, references)) / len(rows)
    result["unparseable_rate"] = sum(parse_answer(p)[0] is None for p in predictions) / len(rows)
    result["confusion"] = confusion(predictions, references)
    result["decisions_per_s"] = per_second
    result["mode"] = mode
    result["predictions"] = predictions
    return result


def plot_confusion(table: dict[str, dict[str, int]], title: str = "Decisions vs teacher", path: str | Path | None = None):
    """Heatmap of label verb (rows) against predicted verb (columns), with counts in the cells."""
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [v for v in VERBS if sum(table[v].values())]
    cols = list(VERBS) + (["other"] if any(table[v]["other"] for v in rows) else [])
    grid = np.array([[table[r][c] for c in cols] for r in rows])
    fig, ax = plt.subplots(figsize=(1.1 * len(cols) + 2, 0.8 * len(rows) + 1.5))
    ax.imshow(grid, cmap="Blues")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("model's answer")
    ax.set_ylabel("teacher's label")
    for i in range(len(rows)):
        for j in range(len(cols)):
            ax.text(j, i, str(grid[i, j]), ha="center", va="center", color="white" if grid[i, j] > grid.max() / 2 else "black")
    ax.set_title(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
