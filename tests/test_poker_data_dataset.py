"""Spot generation and the dataset writer: determinism, isolation of `random`, legal labels, clean splits."""
import json
import random

import pytest

from toolkit.poker.actions import parse_action
from toolkit.poker.dataset import SPLITS, build_dataset, load_splits, read_jsonl
from toolkit.poker.spots import SpotSettings, generate_spots
from toolkit.settings import SettingsError, build

SMALL = {"n_spots": 40, "teacher_trials": 300, "honest_sims": 10}


def small(**kw) -> SpotSettings:
    return build(SpotSettings, {**SMALL, **kw})


def folder_bytes(path):
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def test_same_seed_same_bytes_and_callers_random_untouched(tmp_path):
    random.seed(123)
    before = random.getstate()
    a = build_dataset(small(seed=3), tmp_path / "a", progress=False)
    assert random.getstate() == before  # PyPokerEngine's global shuffles were isolated
    build_dataset(small(seed=3), tmp_path / "b", progress=False)
    assert folder_bytes(tmp_path / "a") == folder_bytes(tmp_path / "b")
    build_dataset(small(seed=4), tmp_path / "c", progress=False)
    assert (tmp_path / "a" / "train.jsonl").read_bytes() != (tmp_path / "c" / "train.jsonl").read_bytes()
    assert a["stats"]["rows"]["total"] == 40 and set(a["files"]) >= {"train", "validation", "test", "stats", "chart"}


def test_every_label_is_legal_and_parses_back():
    for spot, label in generate_spots(small(seed=1, players=2), progress=False):
        assert label in spot.candidates
        assert parse_action(str(label)) == label
        assert all(parse_action(str(c)) == c for c in spot.candidates)


def test_quotas_cap_labels_and_follow_street_weights():
    kept = generate_spots(small(seed=2, max_label_share=0.3,
                                street_weights={"preflop": 1, "flop": 1, "turn": 0, "river": 0}), progress=False)
    verbs = [a.verb for _, a in kept]
    assert max(verbs.count(v) for v in set(verbs)) <= 12  # ceil(0.3 * 40)
    assert {s.street for s, _ in kept} == {"preflop", "flop"}


def test_splits_share_no_spot_and_no_prompt(tmp_path):
    build_dataset(small(seed=5, n_spots=60), tmp_path, progress=False)
    rows = {name: read_jsonl(tmp_path / f"{name}.jsonl") for name in SPLITS}
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            assert not {r["spot_id"] for r in rows[a]} & {r["spot_id"] for r in rows[b]}
            assert not {r["instruction"] for r in rows[a]} & {r["instruction"] for r in rows[b]}
    row = rows["train"][0]
    assert row["messages"][0]["content"] == row["instruction"] and row["messages"][1]["content"] == row["output"] == row["label"]
    assert row["label"] in row["candidates"] and row["instruction"].endswith("Your optimal action is:")
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert sum(stats["label_verb"].values()) == 60
    assert (tmp_path / "stats.png").read_bytes()[:4] == b"\x89PNG"
    dd = load_splits(tmp_path)
    assert dd["train"].num_rows == len(rows["train"]) and "messages" in dd["train"].column_names


def test_bad_rows_and_settings_are_named(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"spot_id": "x", "label": "fold"}\n')
    with pytest.raises(ValueError, match=r"line 1 \(spot 'x'\): missing fields \['street'"):
        read_jsonl(tmp_path / "train.jsonl")
    with pytest.raises(SettingsError) as err:
        build(SpotSettings, {"players": 9, "max_label_share": 0.1, "opponents": {"shark": 1.0}})
    text = str(err.value)
    assert "players = 9" in text and "max_label_share = 0.1" in text and "shark" in text
