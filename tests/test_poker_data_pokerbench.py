"""PokerBench import and its two metrics, checked against scores computed by hand on fixture rows."""
import json
from pathlib import Path

import pytest

from toolkit.poker.pokerbench import load_pokerbench, match, parse_answer, score, street_of

FIX = Path(__file__).parent / "fixtures"


def test_json_and_csv_read_the_same_rows():
    rows = load_pokerbench(FIX / "pokerbench_sample.json")
    assert len(rows) == 6 and rows[0]["output"] == "raise 6.5"
    assert load_pokerbench(FIX / "pokerbench_sample.csv") == rows  # prompt/label columns
    assert [street_of(r["instruction"]) for r in rows] == ["preflop", "preflop", "flop", "turn", "river", "preflop"]


def test_hand_computed_scores():
    rows = load_pokerbench(FIX / "pokerbench_sample.json")
    preds = ["raise 6.5",          # preflop: action yes, exact yes
             "Fold.",              # preflop: yes, yes
             "bet 4",              # flop (label bet 3): yes, no
             "bet 3",              # turn (label check): no, no
             "raise 36.0 chips",   # river (label raise 36): yes, yes (36.0 == 36)
             "I go all-in"]        # preflop (label all in): yes, yes
    result = score(preds, [r["output"] for r in rows], [r["instruction"] for r in rows])
    assert result["overall"] == {"n": 6, "action_accuracy": 5 / 6, "exact_match": 4 / 6}
    assert result["by_street"]["preflop"] == {"n": 3, "action_accuracy": 1.0, "exact_match": 1.0}
    assert result["by_street"]["flop"] == {"n": 1, "action_accuracy": 1.0, "exact_match": 0.0}
    assert result["by_street"]["turn"] == {"n": 1, "action_accuracy": 0.0, "exact_match": 0.0}
    assert result["by_street"]["river"] == {"n": 1, "action_accuracy": 1.0, "exact_match": 1.0}


def test_sizes_compare_as_numbers_not_substrings():
    assert match("bet 30", "bet 3") == (True, False)  # PokerBench's substring test would call this exact
    assert match("raise 2.30", "raise 2.3") == (True, True)
    assert match("bet 3", "raise 3") == (False, False)  # bet and raise are different actions
    assert match("raise", "raise 2.5") == (True, False)
    assert match("gibberish", "fold") == (False, False)
    assert parse_answer("... Your optimal action is: Call") == ("call", None)


def test_bad_input_names_row_or_column(tmp_path):
    with pytest.raises(ValueError, match="missing columns instruction/output or prompt/label; found columns"):
        load_pokerbench(FIX / "pokerbench_bad_columns.csv")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"instruction": "x", "output": "fold"}, {"instruction": "y"}]))
    with pytest.raises(ValueError, match=r"row 1: missing \['output'\]"):
        load_pokerbench(bad)
    with pytest.raises(ValueError, match="reference row 1 = 'shove'"):
        score(["fold", "fold"], ["fold", "shove"], ["p", "p"])
    with pytest.raises(ValueError, match="2 predictions, 1 references"):
        score(["fold", "call"], ["fold"], ["p"])
