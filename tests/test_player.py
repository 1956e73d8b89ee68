"""LLMPlayer: scores only legal candidates (exactly as a naive full forward would), never acts illegally,
and its generate-and-parse mode survives garbage."""
import json

import pytest
import torch
from examples.players.fish_player import FishPlayer
from examples.players.random_player import RandomPlayer

from toolkit.poker import metrics
from toolkit.poker.arena import ArenaSettings, play_match
from toolkit.poker.evaluate import confusion, evaluate
from toolkit.poker.player import LLMPlayer, answer_ids, chat_prefix_ids, score_candidates
from toolkit.poker.state import Spot

SYSTEM = "You are a poker player. Answer with one action."


def _row():
    return json.loads(open("data/poker/test.jsonl").readline())


def test_batched_kv_cache_scores_equal_naive_forward(tiny):
    model, tokenizer = tiny
    row = _row()
    got = score_candidates(model, tokenizer, row["instruction"], row["candidates"], SYSTEM)
    prefix = chat_prefix_ids(tokenizer, row["instruction"], SYSTEM)
    want = []
    with torch.no_grad():
        for cand in row["candidates"]:
            ans = answer_ids(tokenizer, row["instruction"], cand, prefix, SYSTEM)
            assert tokenizer.decode(ans).startswith(cand) and ans[-1] == tokenizer.eos_token_id
            logp = torch.log_softmax(model(input_ids=torch.tensor([prefix + ans])).logits[0].float(), -1)
            want.append(sum(logp[len(prefix) + t - 1, a].item() for t, a in enumerate(ans)))
    assert got == pytest.approx(want, abs=1e-3)


def test_llm_player_plays_many_hands_without_an_illegal_action(tiny):
    model, tokenizer = tiny
    player = LLMPlayer(model, tokenizer, system_prompt=SYSTEM, temperature=1.0, seed=3)  # sampling: varied actions
    settings = ArenaSettings(hands=40, seed=5, progress=False, strict_illegal=True)  # strict: an illegal action raises
    for bot in (RandomPlayer, FishPlayer):
        match = play_match({"llm": lambda: player, "bot": bot}, settings)
        hero = metrics.summarize(match)["players"]["llm"]
        assert hero["illegal"] == 0 and hero["forced"] == 0
    assert len(player.decisions) > 40
    assert {d.choice.split()[0] for d in player.decisions} >= {"fold", "call"} or len({d.choice for d in player.decisions}) > 2
    first = player.log()[0]
    assert first["prompt"].endswith("Your optimal action is:") and first["choice"] in first["candidates"]
    assert len(first["scores"]) == len(first["candidates"]) and first["latency_s"] > 0


def test_generate_mode_survives_garbage(tiny):
    model, tokenizer = tiny
    player = LLMPlayer(model, tokenizer, mode="generate", max_new_tokens=4)
    texts = {"": "unparseable", "purple monkey": "unparseable", "raise banana": "unparseable", "check": "illegal",
             "raise 99999": "illegal", "call": "ok"}
    row_spot = _facing_bet_spot()
    for text, status in texts.items():
        action, got = LLMPlayer.parse_legal(text, row_spot)
        assert got == status, text
        assert action.verb in {a.verb for a in row_spot.candidates}
    match = play_match({"llm": lambda: player, "fish": FishPlayer}, ArenaSettings(hands=6, seed=2, progress=False))
    stats = player.stats()
    assert stats["decisions"] > 0 and stats["unparseable"] + stats["illegal"] <= stats["decisions"]
    assert metrics.summarize(match)["players"]["llm"]["forced"] == stats["unparseable"] + stats["illegal"]


def _facing_bet_spot() -> Spot:
    """A heads-up preflop spot where the BB faces an open to 2.5 bb."""
    from toolkit.poker.actions import Action
    from toolkit.poker.state import Move

    return Spot(spot_id="t", n_players=2, positions=("SB", "BB"), position="BB", hole=("Kh", "7d"), board=(),
                street="preflop", moves=(Move("preflop", "SB", "raise", 2.5),), pot=3.5, start_stacks=(100, 100),
                stacks=(97.5, 99), active=("SB", "BB"), hero_in=1.0, call_total=2.5, raise_min=4.0, raise_max=100.0,
                candidates=(Action("fold"), Action("call"), Action("raise", 7.5), Action("raise", 100.0)))


def test_decision_set_evaluation_and_confusion(tiny):
    model, tokenizer = tiny
    rows = [json.loads(line) for line in open("data/poker/test.jsonl")][:5]
    result = evaluate(model, tokenizer, rows, progress=False, system_prompt=SYSTEM)
    assert result["overall"]["n"] == 5 and all(p in r["candidates"] for p, r in zip(result["predictions"], rows))
    agree = sum(p == r["label"] for p, r in zip(result["predictions"], rows)) / 5
    assert result["agreement"] == agree
    table = confusion(["call", "fold", "raise 3", "nonsense"], ["call", "call", "raise 2.5", "fold"])
    assert table["call"]["call"] == 1 and table["call"]["fold"] == 1 and table["raise"]["raise"] == 1
    assert table["fold"]["other"] == 1
