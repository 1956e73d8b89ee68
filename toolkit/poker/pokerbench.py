"""Read PokerBench files and score answers with PokerBench's own two metrics.

PokerBench (Zhuang et al., 2025; github.com/richardzhuang0412/PokerBench) ships JSON lists of
``{"instruction", "output"}`` and CSVs. Its scorer (``untrained_eval/report_eval_result.py``,
``check_match``) gives each answer 1, 0.5 or 0, and reports

* **action accuracy** = ``ceil(match)``: the verb matches (fold / check / call / all in, or raise vs
  raise, bet vs bet; a "raise" answer to a "bet" label is wrong);
* **exact match** = ``floor(match)``: the verb matches and, for bet/raise, the first number in the
  answer equals the label's as floats (``model_size == label_size``: no tolerance, so "bet 18"
  vs "bet 18.0" match but "raise 2.3" vs "raise 2.5" do not).

We parse both sides instead of PokerBench's substring test, which would also count "bet 1" as an
exact match for the label "bet 10" (``"bet 1" in "bet 10"``); otherwise the scores are the same.
Street is read from the prompt ("The river comes" -> river, ...; none -> preflop).
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

VERB_RE = re.compile(r"\b(fold|check|call|raise|bet|allin)\b")
NUMBER_RE = re.compile(r"\d+\.\d+|\d+")
ANSWER_MARK = "your optimal action is:"
STREET_MARKS = (("river", "the river comes"), ("turn", "the turn comes"), ("flop", "the flop comes"))
COLUMN_PAIRS = (("instruction", "output"), ("prompt", "label"))


def parse_answer(text: str) -> tuple[str | None, float | None]:
    """Lenient read of an answer: (verb, size) from the first verb after "Your optimal action is:".

    "all in" / "all-in" / "ALLIN" read as ``"allin"``; returns (None, None) when no verb is found,
    which scores as wrong (model output may be anything).
    """
    low = str(text).lower()
    low = low.rsplit(ANSWER_MARK, 1)[-1]
    low = re.sub(r"all[\s_-]+in", "allin", low)
    m = VERB_RE.search(low)
    if not m:
        return None, None
    size = NUMBER_RE.search(low, m.end()) if m.group(1) in ("raise", "bet") else None
    return m.group(1), float(size.group(0)) if size else None


def street_of(prompt: str) -> str:
    """preflop / flop / turn / river, from the last board sentence in a PokerBench-style prompt."""
    low = str(prompt).lower()
    return next((street for street, mark in STREET_MARKS if mark in low), "preflop")


def load_pokerbench(path: str | Path) -> list[dict]:
    """Rows ``{"instruction", "output"}`` from a PokerBench JSON list or CSV (instruction/output or prompt/label columns)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; download PokerBench's files (e.g. preflop_1k_test_set_prompt_and_label.json)")
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of {{'instruction', 'output'}} rows, got {type(data).__name__}")
        rows = []
        for i, row in enumerate(data):
            missing = [k for k in ("instruction", "output") if not isinstance(row, dict) or k not in row]
            if missing:
                raise ValueError(f"{path} row {i}: missing {missing}; every row needs 'instruction' and 'output'")
            rows.append({"instruction": str(row["instruction"]), "output": str(row["output"])})
        return rows
    if path.suffix.lower() != ".csv":
        raise ValueError(f"{path}: unknown file type {path.suffix!r}; give PokerBench's .json or .csv")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        pair = next((p for p in COLUMN_PAIRS if set(p) <= set(columns)), None)
        if pair is None:
            want = " or ".join("/".join(p) for p in COLUMN_PAIRS)
            raise ValueError(f"{path}: missing columns {want}; found columns {columns}")
        rows = []
        for i, row in enumerate(reader, 2):  # line 1 is the header
            if row[pair[0]] is None or row[pair[1]] is None or not row[pair[1]].strip():
                raise ValueError(f"{path} line {i}: empty '{pair[0]}' or '{pair[1]}'")
            rows.append({"instruction": row[pair[0]], "output": row[pair[1]]})
        return rows


def match(prediction: str, reference: str, row: int | str = "?") -> tuple[bool, bool]:
    """(action match, exact match) for one answer; the reference must parse (ValueError naming the row)."""
    ref_verb, ref_size = parse_answer(reference)
    if ref_verb is None or (ref_verb in ("raise", "bet") and ref_size is None):
        raise ValueError(f"reference row {row} = {reference!r}: not a PokerBench answer like 'call', 'raise 2.5', 'all in'")
    verb, size = parse_answer(prediction)
    action = verb == ref_verb
    exact = action and (ref_size is None or size == ref_size)
    return action, exact


def score(predictions: list[str], references: list[str], prompts: list[str]) -> dict:
    """PokerBench's action accuracy and exact match, overall and per street.

    Returns ``{"overall": {"n", "action_accuracy", "exact_match"}, "by_street": {street: {...}}}``
    (streets that have no rows are left out).
    """
    if not len(predictions) == len(references) == len(prompts):
        raise ValueError(f"score: got {len(predictions)} predictions, {len(references)} references and "
                         f"{len(prompts)} prompts; give one of each per row")
    tally: dict[str, list[int]] = {}
    for i, (pred, ref, prompt) in enumerate(zip(predictions, references, prompts)):
        action, exact = match(pred, ref, i)
        for key in ("overall", street_of(prompt)):
            t = tally.setdefault(key, [0, 0, 0])
            t[0], t[1], t[2] = t[0] + 1, t[1] + action, t[2] + exact
    summary = lambda t: {"n": t[0], "action_accuracy": t[1] / t[0], "exact_match": t[2] / t[0]}  # noqa: E731
    return {"overall": summary(tally.get("overall", [0, 0, 0])) if predictions else {"n": 0, "action_accuracy": 0.0, "exact_match": 0.0},
            "by_street": {s: summary(tally[s]) for s in ("preflop", "flop", "turn", "river") if s in tally}}
