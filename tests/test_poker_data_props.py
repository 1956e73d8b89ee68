"""Property tests over random engine states: every candidate is an action PyPokerEngine accepts as is,
the parser inverts the formatter, and every state renders and round-trips through JSON."""
import json

from hypothesis import HealthCheck, given, settings, strategies as st
from pypokerengine.engine.action_checker import ActionChecker

from toolkit.poker.actions import from_engine, parse_action, to_engine
from toolkit.poker.cards import hand_words
from toolkit.poker.render import render_prompt
from toolkit.poker.state import Spot
from toolkit.poker.teacher import TeacherPolicy

from engine_hands import play_random_hand


hands = dict(
    n=st.sampled_from([2, 3, 6]),
    stacks=st.lists(st.integers(15, 1500), min_size=6, max_size=6),  # short stacks reach bug #72
    choices=st.lists(st.integers(0, 9), min_size=1, max_size=25),
    seed=st.integers(0, 10_000),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**hands)
def test_every_candidate_is_accepted_by_the_engine_unchanged(n, stacks, choices, seed):
    for spot, msg, state, pos in play_random_hand(n, stacks, choices, seed):
        valid = msg["valid_actions"]
        players = state["table"].seats.players
        hero_paid = round(spot.hero_in * 10)
        for cand in spot.candidates:
            action, amount = to_engine(cand, valid, bb=10, hero_paid=hero_paid)
            fixed = ActionChecker.correct_action(players, pos, 5, action, amount)
            if action == "call":  # a call the stack cannot cover becomes an all-in call, still a call
                assert fixed[0] == "call"
            else:
                assert fixed == (action, amount), (cand, valid, fixed)
            assert from_engine(action, amount, bb=10, call_total=valid[1]["amount"], hero_paid=hero_paid,
                               street=spot.street) == cand
            assert parse_action(str(cand)) == cand
        assert len({str(c) for c in spot.candidates}) == len(spot.candidates)
        assert ("fold" in [c.verb for c in spot.candidates]) == (spot.to_call > 0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**hands)
def test_every_state_renders_and_round_trips(n, stacks, choices, seed):
    for spot, *_ in play_random_hand(n, stacks, choices, seed):
        text = render_prompt(spot)
        assert text.endswith("\nYour optimal action is:")
        assert f"your position is {spot.position}.\n" in text
        assert text.endswith(f"The current pot size is {spot.pot:.1f} chips, and your holding is "
                             f"[{hand_words(spot.hole)}].\nYour optimal action is:")
        assert spot.pot >= 0 and spot.to_call >= 0
        assert Spot.from_dict(json.loads(json.dumps(spot.to_dict()))) == spot
        assert TeacherPolicy(trials=200).decide(spot) in spot.candidates
