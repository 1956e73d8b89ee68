"""The teacher: a solid, standard, deterministic poker policy that labels every spot.

Strategy (all choices are made among ``spot.candidates``, so every label is legal by construction):

Preflop
  * Unopened (blinds only, or limpers): raise with the position's opening range (``OPEN`` below:
    UTG ~15% of hands, HJ ~19%, CO ~27%, BTN ~45%, SB ~35%, heads-up SB ~65%; the BB raises limpers
    with ``BB_ISO``), otherwise check if free, else fold. Size: the menu's open (2.5 bb + 1 per limper).
  * Facing one raise: 3-bet ``THREE_BET`` (QQ+, AK, A5s-A4s) to 3x; otherwise call when our
    equity against the raiser's range, discounted by ``REALISE`` (we will not always see the
    showdown), beats the price ``to_call / (pot + to_call)``; otherwise fold.
  * Facing a 3-bet or more: 4-bet/jam ``FOUR_BET`` (KK+, AKs), call by the same equity test
    against the re-raiser's tighter range, else fold.
Postflop
  * Each opponent still in the hand is given a range from what they did before the flop: the opener's
    position range, a 3-bettor's ``THREE_BET_RANGE``, a caller's ``CALL_RANGE``, a limper's or checking
    BB's ``WIDE``. Equity = product of heads-up equities against each (eval7 Monte Carlo; the product
    is the usual independence approximation for multiway pots), then discounted by ``AGGRO``
    (x0.85) for every bet or raise opponents made after the flop, as betting narrows their ranges.
  * Checked to us: very strong (eq >= 0.85) with stack-to-pot <= 1.5 jams; eq >= 0.6 bets 66% pot;
    eq >= 0.5 before the river bets 33% (protection/thin value); the preflop raiser heads-up on the flop
    c-bets 33% with eq >= 0.3; otherwise check.
  * Facing a bet: eq >= 0.8 raises (3x, or all-in when the stack-to-pot is low); eq above the price
    (plus 3 points on the river, where no cards are left to help) calls; otherwise fold.

Monte Carlo uses eval7's own xorshift generator, seeded from the spot's content, so the same spot
always gets the same label whatever ran before it. PyPokerEngine's hand evaluator is never used
(it misranks some hands: upstream bugs #68, #69, #78).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache

import eval7
from eval7 import xorshift_rand
from pypokerengine.players import BasePokerPlayer

from .actions import Action, to_engine
from .cards import hand_class, to_eval7
from .state import Spot, spot_from_engine

OPEN = {  # unopened-pot raising ranges by position (eval7 range syntax)
    "UTG": "77+, ATs+, KTs+, QTs+, JTs, T9s, 98s, AJo+, KQo",
    "HJ": "66+, A8s+, A5s-A4s, K9s+, Q9s+, J9s+, T9s, 98s, 87s, ATo+, KJo+, QJo",
    "CO": "44+, A2s+, K8s+, Q9s+, J9s+, T8s+, 97s+, 87s, 76s, 65s, A9o+, KTo+, QTo+, JTo",
    "BTN": "22+, A2s+, K5s+, Q7s+, J7s+, T7s+, 96s+, 85s+, 75s+, 64s+, 54s, A4o+, K9o+, Q9o+, J9o+, T9o, 98o",
    "SB": "33+, A2s+, K7s+, Q8s+, J8s+, T8s+, 97s+, 86s+, 76s, 65s, A8o+, KTo+, QTo+, JTo",
    "SB_HU": "22+, A2+, K2s+, K5o+, Q4s+, Q8o+, J6s+, J8o+, T6s+, T8o+, 96s+, 98o, 85s+, 75s+, 64s+, 54s",
}
BB_ISO = "88+, ATs+, KQs, AJo+"  # BB raises limpers with these, else checks its option
THREE_BET = "QQ+, AKs, AKo, A5s-A4s"  # re-raise a single open with these
FOUR_BET = "KK+, AKs"  # re-raise a 3-bet or more with these
THREE_BET_RANGE = "TT+, AQs+, AKo, A5s-A4s"  # what we assume a 3-bettor holds
FOUR_BET_RANGE = "QQ+, AKs, AKo"  # ... a 4-bettor
CALL_RANGE = "22-JJ, A2s-AQs, K9s+, Q9s+, J9s+, T8s+, 97s+, 86s+, 75s+, 65s, 54s, ATo-AQo, KTo+, QTo+, JTo"
WIDE = "22+, A2+, K2+, Q2+, J2+, T2+, 92+, 82+, 72+, 62+, 52+, 42+, 32"  # any two cards
REALISE = 0.85  # share of raw preflop equity we expect to realise when calling out of the blinds or in position
AGGRO = 0.85  # equity multiplier per postflop bet/raise by opponents


@lru_cache(maxsize=None)
def hand_range(text: str) -> eval7.HandRange:
    """eval7 range, parsed once (parsing "any two" takes ~17 ms, an equity call ~0.4 ms)."""
    return eval7.HandRange(text)


@lru_cache(maxsize=None)
def range_classes(text: str) -> frozenset[str]:
    """Hand classes ("AKs", "77") in a range string, for membership tests."""
    return frozenset(hand_class((str(a), str(b))) for (a, b), _ in hand_range(text).hands)


def in_range(hole: tuple[str, ...], text: str) -> bool:
    return hand_class(hole) in range_classes(text)


def equity(hole: tuple[str, ...], board: tuple[str, ...], ranges: list[str], trials: int = 2000, seed: int = 0) -> float:
    """Chance that ``hole`` beats every opponent, each holding a hand from their range (ties count half).

    Heads-up this is eval7's exact-in-expectation Monte Carlo; multiway it is the product of the
    heads-up equities (independence approximation). Deterministic for a given ``seed``.
    """
    xorshift_rand.seed(seed & 0xFFFFFFFF or 1)
    hero, cards = to_eval7(hole), to_eval7(board)
    dead = set(hole) | set(board)
    eq = 1.0
    for text in ranges:
        live = any(str(a) not in dead and str(b) not in dead for (a, b), _ in hand_range(text).hands)
        rng = hand_range(text) if live else hand_range(WIDE)  # range fully blocked: assume any two
        eq *= eval7.py_hand_vs_range_monte_carlo(hero, rng, cards, trials)
    return eq


def opponent_range(spot: Spot, pos: str) -> str:
    """Range for an opponent from their preflop line (see module docstring)."""
    raises = [m for m in spot.moves if m.street == "preflop" and m.verb == "raise"]
    mine = [i for i, m in enumerate(raises) if m.position == pos]
    if mine:
        k = mine[-1]
        if k == 0:
            return OPEN["SB_HU"] if spot.n_players == 2 and pos == "SB" else OPEN.get(pos, OPEN["BTN"])
        return THREE_BET_RANGE if k == 1 else FOUR_BET_RANGE
    return CALL_RANGE if raises else WIDE


@dataclass
class TeacherPolicy:
    trials: int = 2000  # Monte Carlo deals per opponent; ~0.4 ms each with eval7
    seed: int = 0  # mixed into every spot's Monte Carlo seed

    def spot_seed(self, spot: Spot) -> int:
        key = repr((spot.hole, spot.board, spot.moves, spot.positions, spot.position, spot.pot, spot.stacks))
        return zlib.crc32(key.encode()) ^ self.seed

    def decide(self, spot: Spot) -> Action:
        """The teacher's label for a spot; always one of ``spot.candidates``."""
        action = self._preflop(spot) if spot.street == "preflop" else self._postflop(spot)
        assert action in spot.candidates, (action, spot.candidates)  # internal invariant, not user input
        return action

    # ------------------------------------------------------------------ helpers
    def _passive(self, spot: Spot, continue_: bool) -> Action:
        """check when free; else call if ``continue_``, otherwise fold."""
        verbs = {a.verb: a for a in spot.candidates}
        if "check" in verbs:
            return verbs["check"]
        return verbs["call"] if continue_ else verbs["fold"]

    def _sized(self, spot: Spot, target: float) -> Action | None:
        """The bet/raise candidate closest to ``target`` bb (None if raising is impossible)."""
        sized = [a for a in spot.candidates if a.size is not None]
        return min(sized, key=lambda a: (abs(a.size - target), a.size)) if sized else None

    def _price(self, spot: Spot) -> float:
        return spot.to_call / (spot.pot + spot.to_call) if spot.to_call > 0 else 0.0

    # ------------------------------------------------------------------ preflop
    def _preflop(self, spot: Spot) -> Action:
        raises = [m for m in spot.moves if m.street == "preflop" and m.verb == "raise"]
        if not raises:
            key = "SB_HU" if spot.n_players == 2 and spot.position == "SB" else spot.position
            chart = BB_ISO if spot.position == "BB" else OPEN[key]
            if in_range(spot.hole, chart):
                return self._sized(spot, 0) or self._passive(spot, True)  # smallest size = the open
            return self._passive(spot, False)
        strong = FOUR_BET if len(raises) >= 2 else THREE_BET
        if in_range(spot.hole, strong):
            return self._sized(spot, spot.call_total * 3) or self._passive(spot, True)
        villain = opponent_range(spot, raises[-1].position)
        eq = equity(spot.hole, (), [villain], self.trials, self.spot_seed(spot))
        return self._passive(spot, eq * REALISE >= self._price(spot))

    # ------------------------------------------------------------------ postflop
    def _postflop(self, spot: Spot) -> Action:
        villains = [opponent_range(spot, p) for p in spot.active if p != spot.position]
        eq = equity(spot.hole, spot.board, villains, self.trials, self.spot_seed(spot))
        aggro = sum(1 for m in spot.moves if m.street != "preflop" and m.verb in ("bet", "raise") and m.position != spot.position)
        eq *= AGGRO ** aggro
        spr = spot.stack / max(spot.pot, 1e-9)
        if spot.to_call == 0:
            pre_raiser = [m.position for m in spot.moves if m.street == "preflop" and m.verb == "raise"][-1:] == [spot.position]
            if eq >= 0.85 and spr <= 1.5:
                return self._sized(spot, spot.stack + spot.hero_in) or self._passive(spot, True)
            if eq >= 0.6:
                return self._sized(spot, 0.66 * spot.pot) or self._passive(spot, True)
            if eq >= 0.5 and spot.street != "river":
                return self._sized(spot, 0.33 * spot.pot) or self._passive(spot, True)
            if pre_raiser and spot.street == "flop" and len(spot.active) == 2 and eq >= 0.3:
                return self._sized(spot, 0.33 * spot.pot) or self._passive(spot, True)
            return self._passive(spot, False)
        if eq >= 0.8:
            target = spot.stack + spot.hero_in if spr <= 2 else spot.call_total * 3
            return self._sized(spot, target) or self._passive(spot, True)
        margin = 0.03 if spot.street == "river" else 0.0
        return self._passive(spot, eq >= self._price(spot) + margin)


class TeacherPlayer(BasePokerPlayer):
    """The teacher seated at a PyPokerEngine table (e.g. as an arena opponent or a data-collection hero)."""

    def __init__(self, policy: TeacherPolicy | None = None):
        super().__init__()
        self.policy = policy or TeacherPolicy()

    def declare_action(self, valid_actions, hole_card, round_state):
        spot = spot_from_engine(hole_card, round_state, valid_actions, self.uuid)
        action = self.policy.decide(spot)
        return to_engine(action, valid_actions, bb=spot.bb_chips, hero_paid=round(spot.hero_in * spot.bb_chips))

    def receive_game_start_message(self, game_info): pass

    def receive_round_start_message(self, round_count, hole_card, seats): pass

    def receive_street_start_message(self, street, round_state): pass

    def receive_game_update_message(self, action, round_state): pass

    def receive_round_result_message(self, winners, hand_info, round_state): pass
