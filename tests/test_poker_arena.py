"""Duplicate matches: reproducible, seat-fair, exactly cancelling for copies, robust to any decision."""
import dataclasses
import json
import random

import pytest
from examples.players.fish_player import FishPlayer
from examples.players.random_player import RandomPlayer
from hypothesis import given, settings as hsettings, strategies as st
from pypokerengine.players import BasePokerPlayer

from toolkit.poker import metrics, shim
from toolkit.poker.arena import ArenaSettings, MatchResult, QuickHonestPlayer, play_match
from toolkit.settings import SettingsError, build

try:  # the teacher is written in parallel; fall back to PyPokerEngine's HonestPlayer without it
    from toolkit.poker.teacher import TeacherPlayer, TeacherPolicy

    def strong_bot():
        return TeacherPlayer(TeacherPolicy(trials=100))
except ImportError:  # pragma: no cover
    def strong_bot():
        return QuickHonestPlayer(50)


def quick(**kw) -> ArenaSettings:
    return ArenaSettings(**{"progress": False, **kw})


def outcome(match: MatchResult) -> list[dict]:
    """Everything about the hands except how long players took to decide."""
    return [{k: v for k, v in dataclasses.asdict(h).items() if k != "seconds"} for h in match.hands]


class Seer(BasePokerPlayer):
    """Calls everything and remembers the hole cards it was dealt."""

    seen: list = []  # (name, hole cards), shared by all instances of one test

    def __init__(self, name):
        self.name = name

    def declare_action(self, valid_actions, hole_card, round_state):
        return "call", valid_actions[1]["amount"]

    def receive_round_start_message(self, round_count, hole_card, seats):
        Seer.seen.append((self.name, hole_card))

    def receive_game_start_message(self, game_info): pass
    def receive_street_start_message(self, street, round_state): pass
    def receive_game_update_message(self, new_action, round_state): pass
    def receive_round_result_message(self, winners, hand_info, round_state): pass


def test_same_seed_replays_exactly_other_seeds_differ_global_random_untouched():
    random.seed(2024)
    before = random.getstate()
    players = {"random": RandomPlayer, "fish": FishPlayer}
    first = play_match(players, quick(hands=40, seed=3))
    assert random.getstate() == before
    assert outcome(play_match(players, quick(hands=40, seed=3))) == outcome(first)
    other = play_match(players, quick(hands=40, seed=4))
    assert [h.hole_cards for h in other.hands] != [h.hole_cards for h in first.hands]
    assert outcome(play_match(players, quick(hands=40, seed=3, workers=2))) == outcome(first)  # workers change nothing


def test_each_player_holds_every_seat_with_that_seats_cards():
    Seer.seen = []
    names = [f"p{i}" for i in range(6)]
    match = play_match({n: (lambda n=n: Seer(n)) for n in names}, quick(hands=12, players=6, seed=1))
    for deal in (0, 1):
        hands = [h for h in match.hands if h.deal == deal]
        assert all(h.hole_cards == hands[0].hole_cards for h in hands)  # one deck per deal
        for seat in range(6):
            assert sorted(h.seats[seat] for h in hands) == names  # every player sat in every seat once
    dealt = [(h.seats[s], h.hole_cards[s]) for h in match.hands for s in range(6)]
    assert sorted(map(str, Seer.seen)) == sorted(map(str, dealt))  # the log shows what players really got


@pytest.mark.parametrize("bot, seats, hands", [
    (FishPlayer, 2, 100), (RandomPlayer, 2, 100), (lambda: QuickHonestPlayer(20), 2, 20),
    (strong_bot, 2, 40), (RandomPlayer, 6, 60),
])
def test_copies_of_one_bot_cancel_exactly(bot, seats, hands):
    match = play_match({f"copy{i}": bot for i in range(seats)}, quick(hands=hands, players=seats, seed=7))
    assert any(h.delta_bb["copy0"] != 0 for h in match.hands)  # chips did move...
    for name in match.players:
        assert list(metrics.deal_units(match, name)) == [0.0] * (hands // seats)  # ...but cancel in every deal
        assert metrics.bb_per_100(match, name).value == 0.0


def test_strong_bot_beats_random_player_significantly():
    # RandomPlayer raises a random amount up to all-in 2/3 of the time: huge variance, hence 3000 hands.
    match = play_match({"strong": strong_bot, "random": RandomPlayer}, quick(hands=3000, seed=0, workers=2))
    win = metrics.bb_per_100(match, "strong")
    assert win.value > 0 and win.low > 0 and win.p_value < 0.01, win
    assert metrics.bb_per_100(match, "random").value == pytest.approx(-win.value)


class Stubborn(BasePokerPlayer):
    """Raises by one chip every time (never legal) and counts itself as forced."""

    forced_decisions = 0

    def declare_action(self, valid_actions, hole_card, round_state):
        self.forced_decisions += 1
        return "raise", valid_actions[1]["amount"] + 1

    def receive_game_start_message(self, game_info): pass
    def receive_round_start_message(self, round_count, hole_card, seats): pass
    def receive_street_start_message(self, street, round_state): pass
    def receive_game_update_message(self, new_action, round_state): pass
    def receive_round_result_message(self, winners, hand_info, round_state): pass


def test_illegal_and_forced_decisions_are_counted_and_strict_mode_raises(tmp_path):
    match = play_match({"stubborn": Stubborn, "fish": FishPlayer}, quick(hands=20))
    stats = metrics.style(match, "stubborn")
    assert stats["decisions"] == stats["illegal"] == stats["forced"] == 20  # one decision per hand, then folded
    assert stats["action_share"]["illegal"] == 1.0
    assert metrics.style(match, "fish")["illegal"] == 0
    with pytest.raises(shim.IllegalActionError, match="stubborn"):
        play_match({"stubborn": Stubborn, "fish": FishPlayer}, quick(hands=2, strict_illegal=True))
    again = MatchResult.load(match.save(tmp_path / "match.json"))
    assert outcome(again) == outcome(match)
    json.dumps(metrics.summarize(again))  # results are JSON-serialisable


def test_settings_errors_name_the_field_and_the_fix():
    with pytest.raises(SettingsError) as err:
        build(ArenaSettings, {"hands": 101, "players": 2, "big_blind": 5, "colour": "red"})
    text = str(err.value)
    assert "colour = 'red'" in text and "unknown setting" in text
    with pytest.raises(SettingsError) as err:
        build(ArenaSettings, {"hands": 101, "big_blind": 5, "players": 7})
    text = str(err.value)
    assert "big_blind = 5" in text and "even" in text and "players = 7" in text
    with pytest.raises(SettingsError, match="hands = 101.*multiple of players = 2"):
        play_match({"a": FishPlayer, "b": FishPlayer}, quick(hands=101))
    with pytest.raises(SettingsError, match="players = .*exactly arena.players = 2"):
        play_match({"a": FishPlayer}, quick(hands=2))


MOVES = ["fold", "call", "min", "max", "mid", "float", "under", "over", "verb", "junk"]


class Chaos(BasePokerPlayer):
    """Plays a scripted cycle of moves, legal and illegal, and counts the illegal ones it sent."""

    def __init__(self, moves, tally):
        self.moves, self.tally, self.k = moves, tally, 0

    def declare_action(self, valid_actions, hole_card, round_state):
        move = self.moves[self.k % len(self.moves)]
        self.k += 1
        call, low, high = valid_actions[1]["amount"], valid_actions[2]["amount"]["min"], valid_actions[2]["amount"]["max"]
        can_raise = low != -1
        self.tally[self.uuid_name] += move in ("under", "over", "verb", "junk") or (move in ("min", "max", "mid", "float") and not can_raise)
        return {"fold": ("fold", 0), "call": ("call", call), "min": ("raise", low), "max": ("raise", high),
                "mid": ("raise", (low + high) // 2), "float": ("raise", float(low)), "under": ("raise", low - 1),
                "over": ("raise", high + 1), "verb": ("check", 0), "junk": None}[move]

    def receive_game_start_message(self, game_info): pass
    def receive_round_start_message(self, round_count, hole_card, seats): pass
    def receive_street_start_message(self, street, round_state): pass
    def receive_game_update_message(self, new_action, round_state): pass
    def receive_round_result_message(self, winners, hand_info, round_state): pass


@hsettings(max_examples=25, deadline=None)
@given(seats=st.sampled_from([2, 6]), seed=st.integers(0, 10**6),
       scripts=st.lists(st.lists(st.sampled_from(MOVES), min_size=1, max_size=8), min_size=6, max_size=6))
def test_any_decisions_never_crash_a_match(seats, seed, scripts):
    tally = {f"p{i}": 0 for i in range(seats)}

    def factory(i):
        def make():
            player = Chaos(scripts[i], tally)
            player.uuid_name = f"p{i}"
            return player
        return make

    match = play_match({f"p{i}": factory(i) for i in range(seats)}, quick(hands=seats, players=seats, seed=seed))
    for hand in match.hands:
        assert sum(hand.delta_bb.values()) == pytest.approx(0)  # chips conserved (the arena also checks exactly)
    for name in tally:
        assert metrics.style(match, name)["illegal"] == tally[name]


class _Counting(FishPlayer):
    """A Fish that counts its own decisions per hand (the arena sees the same object every hand)."""

    def __init__(self):
        super().__init__()
        self.per_hand: list[int] = []

    def receive_round_start_message(self, round_count, hole_card, seats):
        self.per_hand.append(0)

    def declare_action(self, valid_actions, hole_card, round_state):
        self.per_hand[-1] += 1
        return super().declare_action(valid_actions, hole_card, round_state)


def test_one_player_object_reused_for_every_hand_is_watched_once_per_hand():
    """An LLM is loaded once and handed out by `lambda: player`: the arena's wrappers must not nest
    (they did: each hand's actions were logged into every earlier hand, and after ~400 hands the nested
    wrappers hit Python's recursion limit)."""
    import sys

    hero = _Counting()
    hands = 2 * (sys.getrecursionlimit() // 2 + 20)  # more hands than the recursion limit allows nesting
    match = play_match({"hero": lambda: hero, "random": RandomPlayer}, ArenaSettings(hands=hands, seed=4, progress=False))
    assert len(match.hands) == hands == len(hero.per_hand)
    logged = [sum(len(a) for a in h.actions["hero"].values()) for h in match.hands]
    assert logged == hero.per_hand and sum(hero.per_hand) > hands / 2
    assert not {"declare_action", "receive_notification"} & set(vars(hero))  # the class's methods again
    assert all(not h.faults["hero"] for h in match.hands)
