"""Spot construction from PyPokerEngine's arguments, validation, and golden prompts."""
import random

import pytest
from pypokerengine.api.game import setup_config, start_poker

from toolkit.poker.actions import Action
from toolkit.poker.render import render_prompt
from toolkit.poker.state import Move, Spot, spot_from_engine
from toolkit.poker.teacher import TeacherPlayer


def seat(uuid, stack, state="participating"):
    return {"name": uuid, "uuid": uuid, "stack": stack, "state": state}


def flop_round_state():
    """6-max, blinds 5/10. UTG opens to 25, CO calls, BB calls; flop: BB checks, UTG bets 40; CO (hero) to act."""
    h = lambda u, a, **kw: {"uuid": u, "action": a, **kw}  # noqa: E731
    return {
        "street": "flop", "community_card": ["S9", "S7", "C4"], "dealer_btn": 0, "next_player": 5,
        "small_blind_pos": 1, "big_blind_pos": 2, "round_count": 1, "small_blind_amount": 5,
        "pot": {"main": {"amount": 120}, "side": []},
        "seats": [seat("btn", 1000, "folded"), seat("sb", 995, "folded"), seat("bb", 975), seat("utg", 935),
                  seat("hj", 1000, "folded"), seat("co", 975)],
        "action_histories": {
            "preflop": [h("sb", "SMALLBLIND", amount=5, add_amount=5), h("bb", "BIGBLIND", amount=10, add_amount=5),
                        h("utg", "RAISE", amount=25, paid=25, add_amount=15), h("hj", "FOLD"),
                        h("co", "CALL", amount=25, paid=25), h("btn", "FOLD"), h("sb", "FOLD"),
                        h("bb", "CALL", amount=25, paid=15)],
            "flop": [h("bb", "CALL", amount=0, paid=0), h("utg", "RAISE", amount=40, paid=40, add_amount=40)],
        },
    }


FLOP_VALID = [{"action": "fold", "amount": 0}, {"action": "call", "amount": 40},
              {"action": "raise", "amount": {"min": 80, "max": 975}}]


def test_spot_from_engine_reads_positions_history_and_amounts():
    spot = spot_from_engine(["HK", "DK"], flop_round_state(), FLOP_VALID, "co", "golden-1")
    assert spot.positions == ("UTG", "HJ", "CO", "BTN", "SB", "BB") and spot.position == "CO"
    assert spot.hole == ("Kh", "Kd") and spot.board == ("9s", "7s", "4c")
    assert spot.moves[0] == Move("preflop", "UTG", "raise", 2.5)
    assert spot.moves[-2:] == (Move("flop", "BB", "check"), Move("flop", "UTG", "bet", 4.0))
    assert spot.pot == 12.0 and spot.to_call == 4.0 and spot.hero_in == 0
    assert spot.start_stacks == (100.0,) * 6 and spot.stack == 97.5
    assert spot.active == ("UTG", "CO", "BB")
    assert [str(a) for a in spot.candidates] == ["fold", "call", "raise 12", "raise 97.5"]
    assert Spot.from_dict(spot.to_dict()) == spot


GOLDEN_COMPACT = """You are a specialist in playing 6-handed No Limit Texas Holdem.
Blinds are 0.5/1 chips. Everyone started with 100 chips.
Positions: UTG, HJ, CO, BTN, SB, BB.
In this hand, your position is CO.
Before the flop, UTG raise 2.5, HJ fold, CO call, BTN fold, SB fold, and BB call.
The flop comes Nine Of Spade, Seven Of Spade, and Four Of Club, then BB check, and UTG bet 4.
Now it is your turn to make a move. Do not explain your answer.
The current pot size is 12.0 chips, and your holding is [King of Heart and King of Diamond].
Your optimal action is:"""

GOLDEN_POKERBENCH = """You are a specialist in playing 6-handed No Limit Texas Holdem. The following will be a game scenario and you need to make the optimal decision.

Here is a game summary:

The small blind is 0.5 chips and the big blind is 1 chips. Everyone started with 100 chips.
The player positions involved in this game are UTG, HJ, CO, BTN, SB, BB.
In this hand, your position is CO, and your holding is [King of Heart and King of Diamond].
Before the flop, UTG raise 2.5, HJ fold, CO call, BTN fold, SB fold, and BB call.
The flop comes Nine Of Spade, Seven Of Spade, and Four Of Club, then BB check, and UTG bet 4.

Now it is your turn to make a move.
To remind you, the current pot size is 12.0 chips, and your holding is [King of Heart and King of Diamond].

Decide on an action based on the strength of your hand on this board, your position, and actions before you. Do not explain your answer.
Your optimal action is:"""


def test_golden_prompts_from_engine_state():
    spot = spot_from_engine(["HK", "DK"], flop_round_state(), FLOP_VALID, "co")
    assert render_prompt(spot) == GOLDEN_COMPACT
    assert render_prompt(spot, "pokerbench") == GOLDEN_POKERBENCH


def hand_built(**kw) -> Spot:
    base = dict(spot_id="hb", n_players=2, positions=("SB", "BB"), position="SB", hole=("As", "Td"), board=(),
                street="preflop", moves=(), pot=1.5, start_stacks=(100.0, 100.0), stacks=(99.5, 99.0),
                active=("SB", "BB"), hero_in=0.5, call_total=1.0, raise_min=2.0, raise_max=100.0,
                candidates=(Action("fold"), Action("call"), Action("raise", 2.5), Action("raise", 100.0)))
    base.update(kw)
    return Spot(**base)


def test_golden_heads_up_preflop_and_river_with_uneven_stacks():
    assert render_prompt(hand_built()) == """You are a specialist in playing heads-up No Limit Texas Holdem.
Blinds are 0.5/1 chips. Everyone started with 100 chips.
Positions: SB, BB.
In this hand, your position is SB.
Before the flop, there has been no action yet.
Now it is your turn to make a move. Do not explain your answer.
The current pot size is 1.5 chips, and your holding is [Ace of Spade and Ten of Diamond].
Your optimal action is:"""
    river = hand_built(position="BB", street="river", board=("2c", "7d", "Kh", "Qs", "3h"), pot=10.0,
                       start_stacks=(60.0, 100.0), stacks=(55.0, 95.0), hero_in=0.0, call_total=0.0,
                       moves=(Move("preflop", "SB", "raise", 2.5), Move("preflop", "BB", "call"),
                              Move("flop", "SB", "bet", 2.5), Move("flop", "BB", "call"),
                              Move("turn", "SB", "check"), Move("turn", "BB", "check"), Move("river", "SB", "check")),
                       candidates=(Action("check"), Action("bet", 3.3)))
    text = render_prompt(river)
    assert "Starting stacks: SB 60, BB 100." in text
    assert "Before the flop, SB raise 2.5, and BB call.\nThe flop comes Two Of Club, Seven Of Diamond, and King Of Heart, " \
           "then SB bet 2.5, and BB call.\nThe turn comes Queen Of Spade, then SB check, and BB check.\n" \
           "The river comes Three Of Heart, then SB check.\n" in text


@pytest.mark.parametrize("field,value,msg", [
    ("hole", ("As", "Zz"), r"hole\[1\]"),
    ("hole", ("As", "As"), "appears twice"),
    ("board", ("As", "2c", "3c"), "hole\\+board: card 'As' appears twice"),
    ("board", ("2c", "3c"), "the preflop has 0 board cards"),
    ("pot", -1.0, "pot = -1.0"),
    ("street", "showdown", "street = 'showdown'"),
    ("position", "UTG", "position = 'UTG'"),
])
def test_impossible_spots_name_the_field(field, value, msg):
    kw = {field: value, "street": "flop"} if field == "board" and len(value) == 3 else {field: value}
    with pytest.raises(ValueError, match=msg):
        hand_built(**kw)


def test_from_dict_names_missing_fields():
    d = hand_built().to_dict()
    del d["pot"]
    with pytest.raises(ValueError, match=r"missing fields \['pot'\]"):
        Spot.from_dict(d)


class Recorder(TeacherPlayer):
    seen: list = []

    def declare_action(self, valid_actions, hole_card, round_state):
        spot = spot_from_engine(hole_card, round_state, valid_actions, self.uuid)
        me = next(i for i, s in enumerate(round_state["seats"]) if s["uuid"] == self.uuid)
        Recorder.seen.append((spot, me, round_state["small_blind_pos"], round_state["big_blind_pos"], round_state["dealer_btn"]))
        return super().declare_action(valid_actions, hole_card, round_state)


@pytest.mark.parametrize("n", [2, 6])
def test_positions_in_real_engine_games(n):
    """SB/BB come from the engine's blind seats; 6-max the BTN is the seat before the SB.

    Heads-up quirk: PyPokerEngine's dealer_btn is the *big blind* (so we never name seats from it).
    """
    Recorder.seen = []
    state = random.getstate()
    random.seed(7)
    try:
        for _ in range(3):
            config = setup_config(max_round=2, initial_stack=1000, small_blind_amount=5)
            for i in range(n):
                config.register_player(f"p{i}", Recorder())
            start_poker(config, verbose=0)
    finally:
        random.setstate(state)
    assert Recorder.seen
    for spot, me, sb, bb, btn in Recorder.seen:
        expected = {sb: "SB", bb: "BB"}.get(me)
        if n == 6 and me == (sb - 1) % 6:
            expected = "BTN"
        if expected:
            assert spot.position == expected
        if n == 2:
            assert btn == bb and spot.positions == ("SB", "BB")
        assert spot.n_players == n and spot.to_dict()["candidates"]
