"""Step 3 — prepare data for SFT: any common row format in, TRL's conversational prompt/completion out.

Accepted rows (mixed formats in one source are fine)::

    {"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]}
    {"prompt": "...", "completion": "..."}                         # plain strings
    {"instruction": "...", "input": "...", "output": "..."}        # alpaca (input optional); PokerBench uses this

Sources: a Python list, a ``.jsonl``/``.json``/``.csv`` file, or a HF ``datasets.Dataset``.

Every row becomes ``{"prompt": [messages...], "completion": [{"role": "assistant", ...}]}``. TRL's
``SFTTrainer`` then applies the model's chat template and, with ``completion_only_loss``, masks every
prompt token: the loss is on the final assistant turn only (earlier assistant turns are context).
``encode`` reproduces TRL's two ``apply_chat_template`` calls so notebooks can show the mask token by
token and ``validate`` can check, before training, that no row loses all its labels to truncation.
"""
from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

ROLES = ("system", "user", "assistant")


class DataError(ValueError):
    """A malformed row: the message names its index, the field and the fix."""


# --------------------------------------------------------------------------- reading
def read_rows(source: Any) -> list[dict]:
    """Rows from a list, a JSONL/JSON/CSV path or a HF Dataset (each row a dict)."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"data file {path} does not exist (expected .jsonl, .json or .csv)")
        if path.suffix == ".jsonl":
            rows = []
            for i, line in enumerate(path.read_text().splitlines()):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{path}: line {i + 1} is not valid JSON ({exc.msg})") from exc
            return rows
        if path.suffix == ".json":
            data = json.loads(path.read_text())
            if not isinstance(data, list):
                raise DataError(f"{path}: expected a JSON list of rows, got {type(data).__name__}")
            return data
        if path.suffix == ".csv":
            with path.open(newline="") as handle:
                return [dict(row) for row in csv.DictReader(handle)]
        raise DataError(f"{path}: unsupported extension {path.suffix!r}; use .jsonl, .json or .csv")
    if hasattr(source, "to_list"):  # datasets.Dataset
        return source.to_list()
    if isinstance(source, list):
        return source
    raise DataError(f"unsupported data source {type(source).__name__}; pass a list, a file path or a datasets.Dataset")


# --------------------------------------------------------------------------- normalising
def _text(row: dict, key: str, index: int, hint: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        state = "missing" if key not in row else "empty" if isinstance(value, str) else f"not text ({type(value).__name__})"
        raise DataError(f"row {index}: field {key!r} is {state}; {hint}")
    return value


def _check_messages(messages: Any, index: int) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise DataError(f"row {index}: 'messages' must be a non-empty list of {{role, content}} dicts")
    for j, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            role = m.get("role") if isinstance(m, dict) else m
            raise DataError(f"row {index}: messages[{j}].role = {role!r}; use one of {list(ROLES)}")
        if not isinstance(m.get("content"), str) or not m["content"].strip():
            raise DataError(f"row {index}: messages[{j}].content is missing or empty")
    turns = [m["role"] for m in messages if m["role"] != "system"]
    if any(m["role"] == "system" for m in messages[1:]):
        raise DataError(f"row {index}: a 'system' message may only come first")
    if not turns or turns[0] != "user" or any(a == b for a, b in zip(turns, turns[1:])):
        raise DataError(f"row {index}: roles must alternate user/assistant starting with user, got {turns}")
    if turns[-1] != "assistant":
        raise DataError(f"row {index}: the last message must be the assistant's answer to train on, got {turns[-1]!r}")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def to_prompt_completion(row: dict, index: int = 0, system_prompt: str | None = None) -> dict:
    """One row of any accepted format -> ``{"prompt": [...messages], "completion": [assistant message]}``."""
    if not isinstance(row, dict):
        raise DataError(f"row {index}: expected a dict, got {type(row).__name__}")
    if "messages" in row:
        messages = _check_messages(row["messages"], index)
    elif "prompt" in row or "completion" in row:
        hint = "prompt/completion rows need both as non-empty text"
        messages = [{"role": "user", "content": _text(row, "prompt", index, hint)},
                    {"role": "assistant", "content": _text(row, "completion", index, hint)}]
    elif "instruction" in row or "output" in row:
        hint = "alpaca rows need 'instruction' and 'output' ('input' is optional)"
        user = _text(row, "instruction", index, hint)
        extra = row.get("input") or ""
        if extra.strip():
            user = f"{user}\n\n{extra}"
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": _text(row, "output", index, hint)}]
    else:
        raise DataError(f"row {index}: no known fields in {sorted(row)[:6]}; give 'messages', "
                        "'prompt'+'completion' or 'instruction'+'output'")
    if system_prompt and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system_prompt}] + messages
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def normalize(rows: Iterable[dict], system_prompt: str | None = None) -> list[dict]:
    """Normalise every row; the first malformed one raises ``DataError`` naming its index and field."""
    return [to_prompt_completion(row, i, system_prompt) for i, row in enumerate(rows)]


# --------------------------------------------------------------------------- tokenising (as TRL does)
def _ids(encoded: Any) -> list[int]:
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


def encode(tokenizer, example: dict, max_length: int | None = None) -> dict:
    """Tokenize one normalised example exactly as TRL's SFTTrainer does for prompt/completion rows.

    Returns ``input_ids`` and ``completion_mask`` (1 = trained token), truncated to ``max_length``
    from the end (TRL's default ``keep_start``), plus ``full_length`` before truncation.
    """
    prompt_ids = _ids(tokenizer.apply_chat_template(example["prompt"], tokenize=True, add_generation_prompt=True))
    full_ids = _ids(tokenizer.apply_chat_template(example["prompt"] + example["completion"], tokenize=True))
    mask = [0] * len(prompt_ids) + [1] * (len(full_ids) - len(prompt_ids))
    if max_length is not None:
        full_ids, trimmed = full_ids[:max_length], mask[:max_length]
    else:
        trimmed = mask
    return {"input_ids": full_ids, "completion_mask": trimmed, "full_length": len(mask),
            "completion_tokens": sum(mask)}


def show_mask(tokenizer, example: dict, max_length: int | None = None) -> list[tuple[str, bool]]:
    """``[(token_text, trained?), ...]`` for a notebook table of what the loss sees."""
    enc = encode(tokenizer, example, max_length)
    return [(tokenizer.decode([t]), bool(m)) for t, m in zip(enc["input_ids"], enc["completion_mask"])]


# --------------------------------------------------------------------------- validation
@dataclass
class ValidationReport:
    n_rows: int  # rows examined
    problems: dict[int, list[str]] = field(default_factory=dict)  # row index -> reasons
    max_length_seen: int = 0  # longest row in tokens (before truncation)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bad_rows(self) -> list[int]:
        return sorted(self.problems)

    def summary(self) -> str:
        if self.ok:
            return f"{self.n_rows} rows, all valid (longest {self.max_length_seen} tokens)"
        reasons = Counter(r.split(":")[0] for rs in self.problems.values() for r in rs)
        lines = [f"{len(self.problems)} of {self.n_rows} rows have problems:"]
        lines += [f"  row {i}: {'; '.join(rs)}" for i, rs in list(sorted(self.problems.items()))[:20]]
        if len(self.problems) > 20:
            lines.append(f"  ... and {len(self.problems) - 20} more")
        lines.append("  by reason: " + ", ".join(f"{k} x{v}" for k, v in reasons.most_common()))
        return "\n".join(lines)


def _key(example: dict) -> str:
    return json.dumps(example["prompt"] + example["completion"], sort_keys=True)


def validate(rows: list[dict], tokenizer=None, max_length: int | None = None,
             other_splits: dict[str, list[dict]] | None = None, system_prompt: str | None = None) -> ValidationReport:
    """Find every bad row (not just the first): malformed fields, roles, over-long rows whose answer
    truncation would cut, rows with no trained token, and rows also present in another split."""
    report = ValidationReport(len(rows))
    seen_elsewhere: dict[str, str] = {}
    for split, other in (other_splits or {}).items():
        for j, row in enumerate(other):
            try:
                seen_elsewhere.setdefault(_key(to_prompt_completion(row, j, system_prompt)), split)
            except DataError:
                pass
    for i, row in enumerate(rows):
        reasons = []
        try:
            example = to_prompt_completion(row, i, system_prompt)
        except DataError as exc:
            report.problems[i] = ["malformed: " + str(exc).split(": ", 1)[-1]]
            continue
        if _key(example) in seen_elsewhere:
            reasons.append(f"duplicate: the same row is in the {seen_elsewhere[_key(example)]} split")
        if tokenizer is not None:
            enc = encode(tokenizer, example, max_length)
            report.max_length_seen = max(report.max_length_seen, enc["full_length"])
            if enc["completion_tokens"] == 0:
                reasons.append("fully masked: the answer has no tokens after the chat template")
            elif max_length is not None and enc["full_length"] > max_length:
                kept = sum(enc["completion_mask"])
                what = "every answer token" if kept == 0 else f"{enc['completion_tokens'] - kept} answer tokens"
                reasons.append(f"too long: {enc['full_length']} tokens > max_seq_length {max_length}; truncation cuts {what}")
        if reasons:
            report.problems[i] = reasons
    return report


def prepare(source: Any, tokenizer=None, max_length: int | None = None, skip_bad_rows: bool = False,
            other_splits: dict[str, list[dict]] | None = None, system_prompt: str | None = None):
    """Read, validate and normalise rows into a HF ``Dataset`` of prompt/completion conversations.

    Raises ``DataError`` listing every bad row unless ``skip_bad_rows``; then they are dropped and
    the returned report says how many.
    """
    from datasets import Dataset

    rows = read_rows(source)
    if not rows:
        raise DataError("the dataset is empty; give at least one row")
    other = {k: read_rows(v) for k, v in (other_splits or {}).items()}
    report = validate(rows, tokenizer, max_length, other, system_prompt)
    if not report.ok and not skip_bad_rows:
        raise DataError(report.summary() + "\nFix these rows, or pass skip_bad_rows=True (data.skip_bad_rows: true) to drop them.")
    keep = [to_prompt_completion(r, i, system_prompt) for i, r in enumerate(rows) if i not in report.problems]
    if not keep:
        raise DataError("every row was bad, nothing left to train on:\n" + report.summary())
    return Dataset.from_list(keep), report
