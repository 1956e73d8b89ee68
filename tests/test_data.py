"""Data prep: every accepted format normalises the same way; bad rows are named by index and field."""
import json

import pytest

from toolkit.data import DataError, normalize, prepare, read_rows, show_mask, validate

GOOD = {"prompt": [{"role": "user", "content": "2+2?"}], "completion": [{"role": "assistant", "content": "4"}]}


def test_all_formats_normalise_alike(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]},
        {"prompt": "2+2?", "completion": "4"},
        {"instruction": "2+2?", "output": "4"},
        {"instruction": "2+2?", "input": "", "output": "4"},
    ]
    assert normalize(rows) == [GOOD] * 4
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "d.csv").write_text("instruction,output\n2+2?,4\n")
    assert normalize(read_rows(tmp_path / "d.jsonl")) == [GOOD] * 4
    assert normalize(read_rows(tmp_path / "d.csv")) == [GOOD]
    from datasets import Dataset

    assert normalize(read_rows(Dataset.from_list(rows[1:2]))) == [GOOD]


@pytest.mark.parametrize("row,match", [
    ({"instruction": "hi"}, r"row 0: field 'output' is missing"),
    ({"prompt": "hi", "completion": ""}, r"row 0: field 'completion' is empty"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}, r"messages\[1\].role = 'bot'"),
    ({"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]}, "alternate"),
    ({"messages": [{"role": "user", "content": "a"}]}, "last message must be the assistant"),
    ({"text": "hello"}, "no known fields"),
])
def test_malformed_rows_name_index_and_field(row, match):
    with pytest.raises(DataError, match=match):
        normalize([row])


def test_validation_lists_every_bad_row(tiny):
    _, tokenizer = tiny
    long_prompt = "word " * 200
    rows = [
        {"prompt": "ok", "completion": "fine"},
        {"instruction": "no answer"},
        {"prompt": long_prompt, "completion": "answer"},
        {"prompt": "dup", "completion": "x"},
    ]
    report = validate(rows, tokenizer, max_length=64, other_splits={"test": [{"prompt": "dup", "completion": "x"}]})
    assert report.bad_rows == [1, 2, 3]
    assert "malformed" in report.problems[1][0]
    assert "too long" in report.problems[2][0] and "every answer token" in report.problems[2][0]
    assert "duplicate" in report.problems[3][0] and "test split" in report.problems[3][0]
    with pytest.raises(DataError, match="3 of 4 rows"):
        prepare(rows, tokenizer, 64, other_splits={"test": [{"prompt": "dup", "completion": "x"}]})
    data, report = prepare(rows, tokenizer, 64, skip_bad_rows=True, other_splits={"test": [{"prompt": "dup", "completion": "x"}]})
    assert len(data) == 1 and len(report.bad_rows) == 3


def test_mask_shows_only_the_answer(tiny):
    _, tokenizer = tiny
    pieces = show_mask(tokenizer, GOOD)
    trained = "".join(text for text, on in pieces if on)
    assert trained.startswith("4<|im_end|>")
    assert "2+2?" in "".join(text for text, on in pieces if not on)


def test_empty_or_missing_source():
    with pytest.raises(DataError, match="empty"):
        prepare([])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_rows("nope.jsonl")
