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
from toolkit.poker.player import LLMPlayer, PrefixCache, answer_ids, chat_prefix_ids, score_candidates
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


def _naive(model, tokenizer, prompt, candidates):
    prefix = chat_prefix_ids(tokenizer, prompt, SYSTEM)
    with torch.no_grad():
        out = []
        for cand in candidates:
            ans = answer_ids(tokenizer, prompt, cand, prefix, SYSTEM)
            logp = torch.log_softmax(model(input_ids=torch.tensor([prefix + ans])).logits[0].float(), -1)
            out.append(sum(logp[len(prefix) + t - 1, a].item() for t, a in enumerate(ans)))
    return out


def test_packed_scoring_and_prefix_cache_equal_naive_forward(tiny):
    """One packed pass (custom 4-D mask + position ids) and the reused prompt cache give the naive scores,
    prompt after prompt (float32, so only rounding differs)."""
    model, tokenizer = tiny
    model.float()
    rows = [json.loads(line) for line in open("data/poker/test.jsonl")][:8]
    caches = {"packed": PrefixCache(), "batched": PrefixCache()}
    for row in rows:
        want = _naive(model, tokenizer, row["instruction"], row["candidates"])
        for method in ("packed", "batched"):
            for cache in (None, caches[method]):
                got = score_candidates(model, tokenizer, row["instruction"], row["candidates"], SYSTEM, method, cache)
                assert got == pytest.approx(want, abs=1e-4), (method, cache is not None)
    assert caches["packed"].ids == chat_prefix_ids(tokenizer, rows[-1]["instruction"], SYSTEM)


def test_prefix_cache_runs_only_the_new_tokens_and_goes_stale_when_weights_change(tiny):
    model, tokenizer = tiny
    row = _row()
    prompt, other = row["instruction"], row["instruction"].replace("Your optimal action is:", "Your best action is:")
    cache, seen = PrefixCache(), []
    forward = model.forward
    model.forward = lambda *a, **k: seen.append(k["input_ids"].shape[1]) or forward(*a, **k)
    score_candidates(model, tokenizer, prompt, row["candidates"], SYSTEM, cache=cache)
    score_candidates(model, tokenizer, other, row["candidates"], SYSTEM, cache=cache)
    prefix = chat_prefix_ids(tokenizer, other, SYSTEM)
    answers, full = sum(len(answer_ids(tokenizer, other, c, prefix, SYSTEM)) - 1 for c in row["candidates"]), len(prefix)
    assert seen[0] > full and seen[1] - answers < 12  # the second prompt ran only its last few tokens
    before = score_candidates(model, tokenizer, other, row["candidates"], SYSTEM, cache=cache)
    with torch.no_grad():  # an in-place update, like an optimizer step
        model.get_input_embeddings().weight.mul_(1.5)
    fresh = score_candidates(model, tokenizer, other, row["candidates"], SYSTEM)
    again = score_candidates(model, tokenizer, other, row["candidates"], SYSTEM, cache=cache)
    assert again == pytest.approx(fresh, abs=1e-3) and max(abs(a - b) for a, b in zip(before, fresh)) > 1e-2


def test_prefix_cache_keeps_several_prompts_and_serves_each_from_its_best_match(tiny):
    """Heads-up, a player alternates SB and BB: a new hand's first prompt shares everything up to the
    holding (the last line) with the previous prompt from the same seat, not with the last prompt. Forking
    a stored prompt for a new one must leave the stored keys/values intact for later prompts."""
    model, tokenizer = tiny
    model.float()
    row = _row()
    sb = row["instruction"]
    head, hole = sb.rsplit("your holding is ", 1)
    bb = sb.replace("your position is ", "your position is UTG and not ", 1)
    other_hole = lambda text: text.rsplit("your holding is ", 1)[0] + "your holding is [Two of Club and Two of Heart]."
    cache, seen = PrefixCache(size=4), []
    forward = model.forward
    model.forward = lambda *a, **k: seen.append(k["input_ids"].shape[1]) or forward(*a, **k)
    cands = row["candidates"]
    for prompt in (sb, bb, other_hole(sb), other_hole(bb), sb):  # sb again: its stored cache must be intact
        got = score_candidates(model, tokenizer, prompt, cands, SYSTEM, cache=cache)
        model.forward = forward
        assert got == pytest.approx(_naive(model, tokenizer, prompt, cands), abs=1e-4)
        model.forward = lambda *a, **k: seen.append(k["input_ids"].shape[1]) or forward(*a, **k)
    tail = len(tokenizer("[Two of Club and Two of Heart].\nYour optimal action is:")["input_ids"])
    nodes = sum(len(answer_ids(tokenizer, sb, c, chat_prefix_ids(tokenizer, sb, SYSTEM), SYSTEM)) - 1 for c in cands)
    assert seen[1] > 2 * tail + nodes  # bb differs from sb early: most of it runs
    assert seen[2] <= tail + 8 + nodes and seen[3] <= tail + 8 + nodes  # each served by its own seat's prompt
    assert seen[4] <= 1 + nodes
    assert len(cache.entries) == 4 and cache.ids == chat_prefix_ids(tokenizer, sb, SYSTEM)
    with pytest.raises(ValueError, match="PrefixCache size"):
        PrefixCache(size=0)


@pytest.mark.parametrize("failure", ["wrong", "raises"])
def test_player_falls_back_to_two_passes_when_packed_scoring_is_wrong(tiny, monkeypatch, failure):
    """A backend that ignored the custom mask would give packed scores unlike the two-pass ones; one that
    refused it would raise."""
    import toolkit.poker.player as player_module

    real = player_module.score_candidates

    def broken(*args, method="packed", **kwargs):
        scores = real(*args, method=method, **kwargs)
        if method == "packed" and failure == "raises":
            raise RuntimeError("custom 4-D masks are not supported by this kernel")
        return [s - 5.0 * i for i, s in enumerate(scores)] if method == "packed" else scores

    monkeypatch.setattr(player_module, "score_candidates", broken)
    model, tokenizer = tiny
    player = LLMPlayer(model, tokenizer, system_prompt=SYSTEM)
    spot = _facing_bet_spot()
    with pytest.warns(UserWarning, match="method='batched'"):
        player.decide(spot)
    assert player.method == "batched"
    _, decision = player.decide(spot)
    assert decision.scores == pytest.approx(real(model, tokenizer, decision.prompt, decision.candidates, SYSTEM,
                                                 method="batched"), abs=1e-3)


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
