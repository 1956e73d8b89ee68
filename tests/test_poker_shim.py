"""Each PyPokerEngine bug the shim claims to fix, reproduced on a concrete hand: wrong unpatched, right patched."""
import random

import pytest
from pypokerengine.api.emulator import Emulator
from pypokerengine.engine.card import Card
from pypokerengine.engine.dealer import Dealer
from pypokerengine.engine.deck import Deck
from pypokerengine.engine.hand_evaluator import HandEvaluator
from pypokerengine.engine.table import Table
from pypokerengine.players import BasePokerPlayer

from toolkit.poker import shim


class Script(BasePokerPlayer):
    """Answers from a shared list of (action, amount) or callables of valid_actions; check/call when empty."""

    def __init__(self, answers=None, asked=None):
        self.answers = answers if answers is not None else []
        self.asked = asked if asked is not None else []  # (street, valid_actions) of every decision, may be shared

    def declare_action(self, valid_actions, hole_card, round_state):
        self.asked.append((round_state["street"], valid_actions))
        if self.answers:
            answer = self.answers.pop(0)
            return answer(valid_actions) if callable(answer) else answer
        return "call", valid_actions[1]["amount"]

    def receive_game_start_message(self, game_info): pass
    def receive_round_start_message(self, round_count, hole_card, seats): pass
    def receive_street_start_message(self, street, round_state): pass
    def receive_game_update_message(self, new_action, round_state): pass
    def receive_round_result_message(self, winners, hand_info, round_state): pass


class Watcher(Script):
    """Sees every public message: who acted on which street, and the final round state."""

    def __init__(self):
        super().__init__()
        self.updates, self.final = [], None

    def receive_game_update_message(self, new_action, round_state):
        self.updates.append((round_state["street"], new_action["player_uuid"], new_action["action"]))

    def receive_round_result_message(self, winners, hand_info, round_state):
        self.final = round_state


def ids(*cards):
    return [Card.from_str(c).to_id() for c in cards]


def play(holes, board, players=None, button=0, stack=1000):
    """One hand with a fixed deck (seat 0 gets holes[0]...). Returns (stack deltas by seat, watcher, players)."""
    players = players or [Script() for _ in holes]
    used = ids(*[c for h in holes for c in h], *board)
    rest = [i for i in range(1, 53) if i not in used]
    dealer = Dealer(5, stack, 0)
    dealer.table = Table(cheat_deck=Deck(cheat=True, cheat_card_ids=used + rest))
    dealer.table.dealer_btn = button
    for k, p in enumerate(players):
        dealer.register_player(f"p{k}", p)
    watcher = Watcher()
    dealer.message_handler.algo_owner_map["watcher"] = watcher
    result = dealer.start_game(1)
    deltas = [s["stack"] - stack for s in result["message"]["game_information"]["seats"]]
    return deltas, watcher, players


BOARD_STRAIGHT = ["C5", "D6", "H7", "S8", "C9"]


@pytest.mark.parametrize("bug, holes, board, right", [
    ("#68 board straight must split", [["D2", "H3"], ["DK", "HQ"]], BOARD_STRAIGHT, [0, 0]),
    ("#69 wheel beats a pair", [["SA", "D2"], ["SK", "C7"]], ["C3", "H4", "S5", "DK", "HQ"], [10, -10]),
    ("#78 flush 9-high kicker 7 beats 6", [["D5", "HA"], ["CQ", "D7"]], ["DQ", "DJ", "D9", "CK", "D6"], [-10, 10]),
])
def test_showdown_bugs_wrong_upstream_right_patched(bug, holes, board, right):
    wrong, _, _ = play(holes, board)  # both players check/call down: pot 20
    assert wrong != right, bug
    with shim.patched():
        fixed, _, _ = play(holes, board)
    assert fixed == right, bug


def test_equal_hands_evaluate_equal_only_when_patched():
    hole_a, hole_b, board = ([Card.from_str(c) for c in cs] for cs in (["D2", "H3"], ["DK", "HQ"], BOARD_STRAIGHT))
    assert HandEvaluator.eval_hand(hole_a, board) != HandEvaluator.eval_hand(hole_b, board)
    with shim.patched():
        assert HandEvaluator.eval_hand(hole_a, board) == HandEvaluator.eval_hand(hole_b, board)
        assert HandEvaluator.gen_hand_rank_info(hole_a, board)["hand"]["strength"] == "STRAIGHT"


def test_odd_chip_of_a_split_pot_is_kept():
    # 3-handed, button = seat 2 calls, SB folds (5 chips stay in), BB checks: pot 25 split by two equal hands.
    holes = [["SA", "SK"], ["D2", "H3"], ["C2", "S3"]]  # seats 1 and 2 hold the same ranks, so even upstream ties
    scripts = [Script([("fold", 0)]), Script(), Script()]
    wrong, _, _ = play(holes, BOARD_STRAIGHT, scripts, button=2)
    assert sum(wrong) == -1  # upstream int(25 / 2) = 12 each: one chip vanishes
    with shim.patched():
        fixed, _, _ = play(holes, BOARD_STRAIGHT, [Script([("fold", 0)]), Script(), Script()], button=2)
    assert fixed == [-5, 3, 2]  # odd chip to the winner nearest the left of the button (seat 1)


def heads_up_order():
    _, watcher, players = play([["SA", "SK"], ["D2", "H3"]], BOARD_STRAIGHT)
    seats = watcher.final["seats"]
    button_uuid = seats[watcher.final["dealer_btn"]]["uuid"]
    small_blind = next(h["uuid"] for h in watcher.final["action_histories"]["preflop"] if h["action"] == "SMALLBLIND")
    first_preflop = next(u for s, u, _ in watcher.updates if s == "preflop")
    first_flop = next(u for s, u, _ in watcher.updates if s == "flop")
    return button_uuid, small_blind, first_preflop, first_flop


def test_heads_up_button_posts_small_blind_acts_first_preflop_last_postflop():
    button, small_blind, first_preflop, first_flop = heads_up_order()
    assert small_blind != button  # upstream: the button posts the big blind
    assert first_flop == small_blind  # ...and the small blind acts first postflop
    with shim.patched():
        button, small_blind, first_preflop, first_flop = heads_up_order()
    assert small_blind == button
    assert first_preflop == button
    assert first_flop != button


def test_heads_up_emulator_blinds_follow_the_button():
    with shim.patched():
        emu = Emulator()
        emu.set_game_rule(2, 10, 5, 0)
        state = emu.generate_initial_game_state({"a": {"name": "a", "stack": 1000}, "b": {"name": "b", "stack": 1000}})
        state, _ = emu.start_new_round(state)
    assert state["table"].sb_pos() == state["table"].dealer_btn


def all_in_only_spot():
    # Raise to 400, re-raise to 800: the next min raise (800 + 400) exceeds the 1000 stack: only all-in is left.
    answers = [("raise", 400), ("raise", 800), lambda valid: ("raise", valid[2]["amount"]["max"])]
    asked = []  # both players log here, in the order decisions were asked
    board = ["HA", "DA", "C7", "S9", "DJ"]  # seat 0 makes trips: an all-in that is called moves 1000 chips
    deltas, _, _ = play([["SA", "SK"], ["D2", "H3"]], board, [Script(answers, asked), Script(answers, asked)])
    third_valid = asked[2][1]
    return third_valid[2]["amount"], deltas


def test_all_in_raise_is_offered_when_it_is_the_only_raise():
    offered, _ = all_in_only_spot()
    assert offered == {"min": -1, "max": -1}  # upstream hides the all-in raise (#72)
    with shim.patched():
        offered, deltas = all_in_only_spot()
    assert offered == {"min": 1000, "max": 1000}
    assert sorted(deltas) == [-1000, 1000]  # the offered all-in is accepted and called down


def small_blind_raises_to_5():
    answers = [("raise", 5)]  # the first decision (the small blind's); the min raise is 20
    return play([["SA", "SK"], ["D2", "H3"]], BOARD_STRAIGHT, [Script(answers), Script(answers)])[0]


def test_illegal_action_is_counted_and_strict_mode_raises():
    assert sorted(small_blind_raises_to_5()) == [-5, 5]  # upstream: silently a fold, nothing to count
    shim.illegal_log.clear()
    with shim.patched():
        assert sorted(small_blind_raises_to_5()) == [-5, 5]  # still the engine's fold...
        assert [(e["action"], e["amount"]) for e in shim.illegal_log] == [("raise", 5)]  # ...but counted
        with shim.patched(strict_illegal=True), pytest.raises(shim.IllegalActionError, match="valid_actions"):
            small_blind_raises_to_5()


@pytest.mark.parametrize("action, amount, legal", [
    ("fold", 0, True), ("call", 10, True), ("call", 9, False), ("raise", 20, True), ("raise", 20.0, True),
    ("raise", 19, False), ("raise", 1001, False), ("raise", "20", False), ("check", 0, False), ("raise", None, False),
])
def test_is_legal_accepts_exactly_the_offered_actions(action, amount, legal):
    valid = [{"action": "fold", "amount": 0}, {"action": "call", "amount": 10},
             {"action": "raise", "amount": {"min": 20, "max": 1000}}]
    assert shim.is_legal(valid, action, amount) is legal


def test_seeded_deck_replays_and_leaves_global_random_alone():
    random.seed(123)
    before = random.getstate()
    assert shim.deck_order(7) == shim.deck_order(7) != shim.deck_order(8)
    assert sorted(shim.deck_order(7)) == list(range(1, 53))
    with shim.seeded_global_random(7):
        random.random()
    assert random.getstate() == before
    order = shim.deck_order(7)
    holes = [[str(Card.from_id(i)) for i in order[k:k + 2]] for k in (0, 2)]
    board = [str(Card.from_id(i)) for i in order[4:9]]
    with shim.patched():
        _, watcher, _ = play(holes, board)  # play() builds exactly this deck order
    assert watcher.final["community_card"] == board
    assert Table().deck.shuffle() is None and random.getstate() != before  # upstream shuffles the global random


def test_uninstall_restores_upstream():
    original = vars(HandEvaluator)["eval_hand"]
    with shim.patched():
        with shim.patched():
            assert shim.installed()
        assert shim.installed()  # nested: still patched
    assert not shim.installed()
    assert vars(HandEvaluator)["eval_hand"] is original
