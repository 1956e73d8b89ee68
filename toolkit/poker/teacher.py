"""The teacher: a solid, standard, deterministic poker policy that labels every spot.

Strategy (all choices are made among ``spot.candidates``, so every label is legal by construction).
Every range comes from the table size's charts, ``SIX_MAX`` (3-6 players) or ``HEADS_UP``: heads-up
every hand is a blind battle, so opens, calls and re-raises are several times wider, and a player
who assumed 6-max ranges there would fold far too often to anyone who keeps raising.

Preflop
  * Unopened (blinds only, or limpers): raise with the position's opening range (``open``: UTG ~11%
    of hands, HJ ~16%, CO ~24%, BTN ~38%, SB ~26%; heads-up SB ~78%; the BB raises limpers with
    ``iso``: ~7% 6-max, ~41% heads-up), otherwise check if free, else fold. Size: the menu's open
    (2.5 bb + 1 per limper).
  * Facing one raise: 3-bet ``three_bet`` (6-max QQ+, AK, A5s-A4s; heads-up ~11%: 77+, AJo+, A9s+,
    A5s-A2s...) to 3x; otherwise call when our equity against the raiser's range, times a
    realisation factor, beats the price ``to_call / (pot + to_call)``; otherwise fold. The factor is
    ``REALISE`` (0.85: deep, we will not always see the showdown) rising to 1 as the stack-to-pot
    ratio after calling falls from 4 to 1 (a near all-in call realises all its equity). Heads-up this
    defends the BB with ~85% of hands against a 2.5 bb open and calls a jam with any hand that has
    the price against a 3-bettor's ~35% range.
  * Facing a 3-bet or more: 4-bet/jam ``four_bet`` (6-max KK+, AKs; heads-up ~6%: 99+, AJs+, AQo+,
    KQs), else call by the same equity test against the re-raiser's range, else fold.
Postflop
  * Each opponent still in the hand is given a range from what they did before the flop: the opener's
    position range (a BB that raised limpers: ``iso``), a 3-bettor's ``three_bettor`` (6-max ~4%,
    heads-up ~35%), a 4-bettor's ``four_bettor``, a caller's ``caller`` (6-max ~22%, heads-up ~61%)
    or ``three_bet_caller``, a limper's or checking BB's ``WIDE`` (any two). Equity = product of heads-up equities against each
    (eval7 Monte Carlo; the product is the usual independence approximation for multiway pots),
    then multiplied by ``aggro`` (6-max 0.85, heads-up 0.9, where players bet wider) for every bet or
    raise opponents made after the flop, as betting narrows their ranges.
  * Checked to us: very strong (eq >= 0.85) with stack-to-pot <= 1.5 jams; eq >= 0.75 bets the pot;
    eq >= 0.6 bets 66% pot; eq >= 0.5 before the river bets 33% (protection/thin value); the preflop
    raiser heads-up on the flop c-bets 33% with eq >= 0.3; otherwise check.
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

from .actions import Action, to_engine
from .cards import hand_class, to_eval7
from .state import QuietPlayer, Spot, spot_from_engine

CALL_6MAX = "22-JJ, A2s-AQs, K9s+, Q9s+, J9s+, T8s+, 97s+, 86s+, 75s+, 65s, 54s, ATo-AQo, KTo+, QTo+, JTo"  # ~22%


@dataclass(frozen=True)
class Ranges:
    """Preflop charts for one table size, in eval7 range syntax (percentages are of the 1326 hands)."""

    open: dict[str, str]  # position -> raise first in; also what we assume an opener holds
    iso: str  # the BB raises limpers with these, else checks its option
    three_bet: str  # we re-raise a single open with these (value plus a few suited-ace bluffs)
    four_bet: str  # we re-raise (or jam over) a 3-bet or more with these
    caller: str  # what we assume a player who called one raise holds
    three_bet_caller: str  # ... a player who called a 3-bet or more
    three_bettor: str  # ... a 3-bettor
    four_bettor: str  # ... a 4-bettor or more
    aggro: float  # equity multiplier per postflop bet/raise by an opponent (betting narrows ranges)


SIX_MAX = Ranges(  # 3-6 players; the positions of 3-5 handed tables are a subset of these
    open={
        "UTG": "77+, ATs+, KTs+, QTs+, JTs, T9s, 98s, AJo+, KQo",  # ~11%
        "HJ": "66+, A8s+, A5s-A4s, K9s+, Q9s+, J9s+, T9s, 98s, 87s, ATo+, KJo+, QJo",  # ~16%
        "CO": "44+, A2s+, K8s+, Q9s+, J9s+, T8s+, 97s+, 87s, 76s, 65s, A9o+, KTo+, QTo+, JTo",  # ~24%
        "BTN": "22+, A2s+, K5s+, Q7s+, J7s+, T7s+, 96s+, 85s+, 75s+, 64s+, 54s, A4o+, K9o+, Q9o+, J9o+, T9o, 98o",  # ~38%
        "SB": "33+, A2s+, K7s+, Q8s+, J8s+, T8s+, 97s+, 86s+, 76s, 65s, A8o+, KTo+, QTo+, JTo",  # ~26%
    },
    iso="88+, ATs+, KQs, AJo+",  # ~7%
    three_bet="QQ+, AKs, AKo, A5s-A4s",  # ~3%
    four_bet="KK+, AKs",  # ~1%
    caller=CALL_6MAX,
    three_bet_caller=CALL_6MAX,
    three_bettor="TT+, AQs+, AKo, A5s-A4s",  # ~4%
    four_bettor="QQ+, AKs, AKo",  # ~3%
    aggro=0.85,
)
HEADS_UP = Ranges(  # heads-up every hand is a blind battle: ranges are several times wider than 6-max
    open={"SB": "22+, A2+, K2+, Q2+, J2+, T2s+, T5o+, 92s+, 96o+, 82s+, 86o+, 72s+, 76o, 62s+, 65o, 52s+, 42s+, 32s"},  # ~78%
    iso="22+, A2+, K2s+, K7o+, Q5s+, Q9o+, J7s+, J9o+, T7s+, T9o, 97s+, 86s+, 76s, 65s",  # ~41%
    three_bet="77+, A9s+, A5s-A2s, KTs+, QJs, AJo+, KQo",  # ~11%
    four_bet="99+, AJs+, AQo+, KQs",  # ~6%
    caller="22+, A2+, K2+, Q2s+, Q5o+, J4s+, J7o+, T5s+, T7o+, 95s+, 97o+, 85s+, 87o, 74s+, 76o, 64s+, 53s+, 43s",  # ~61%
    three_bet_caller="22+, A2s+, A7o+, K8s+, KTo+, Q9s+, QTo+, J9s+, JTo, T8s+, 98s, 87s",  # ~26%
    three_bettor="22+, A2+, K2s+, K7o+, Q8s+, QTo+, J8s+, JTo, T8s+, 98s, 87s",  # ~35%
    four_bettor="55+, A2s+, A8o+, K9s+, KJo+, QTs+, JTs",  # ~18%
    aggro=0.9,
)
WIDE = "22+, A2+, K2+, Q2+, J2+, T2+, 92+, 82+, 72+, 62+, 52+, 42+, 32"  # any two: limpers, a checking BB
REALISE = 0.85  # share of preflop equity a caller realises when stacks stay deep (not all-in or close)


def ranges_for(n_players: int) -> Ranges:
    """The charts for a table of ``n_players`` dealt in."""
    return HEADS_UP if n_players == 2 else SIX_MAX


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
    """Range for an opponent from their preflop line and the table size (see module docstring)."""
    r = ranges_for(spot.n_players)
    preflop = [m for m in spot.moves if m.street == "preflop"]
    raises = [m for m in preflop if m.verb == "raise"]
    mine = [k for k, m in enumerate(raises) if m.position == pos]
    if mine:
        k = mine[-1]  # their last raise was the k-th of the hand: 0 = the open, 1 = a 3-bet...
        if k == 0:  # the first raise: an open, or the BB raising limpers
            return r.iso if pos == "BB" else r.open.get(pos, r.open.get("BTN", WIDE))
        return r.three_bettor if k == 1 else r.four_bettor
    calls = [i for i, m in enumerate(preflop) if m.position == pos and m.verb == "call"]
    faced = sum(1 for m in preflop[:calls[-1]] if m.verb == "raise") if calls else 0  # raises before their last call
    return WIDE if faced == 0 else r.caller if faced == 1 else r.three_bet_caller


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
        """Equity a call needs to break even: to_call / (pot after calling)."""
        return spot.to_call / (spot.pot + spot.to_call) if spot.to_call > 0 else 0.0

    def _realise(self, spot: Spot) -> float:
        """Share of preflop equity a call realises: REALISE when deep, rising to 1 as the stack-to-pot
        ratio after calling falls from 4 to 1 (shallow pots go all-in or to showdown without folds)."""
        spr = (spot.stack - spot.to_call) / (spot.pot + spot.to_call)
        return REALISE + (1 - REALISE) * min(max((4 - spr) / 3, 0.0), 1.0)

    # ------------------------------------------------------------------ preflop
    def _preflop(self, spot: Spot) -> Action:
        r = ranges_for(spot.n_players)
        raises = [m for m in spot.moves if m.street == "preflop" and m.verb == "raise"]
        if not raises:
            chart = r.iso if spot.position == "BB" else r.open.get(spot.position, r.open.get("BTN", WIDE))
            if in_range(spot.hole, chart):
                return self._sized(spot, 0) or self._passive(spot, True)  # smallest size = the open
            return self._passive(spot, False)
        if in_range(spot.hole, r.four_bet if len(raises) >= 2 else r.three_bet):
            return self._sized(spot, spot.call_total * 3) or self._passive(spot, True)
        villain = opponent_range(spot, raises[-1].position)
        eq = equity(spot.hole, (), [villain], self.trials, self.spot_seed(spot))
        return self._passive(spot, eq * self._realise(spot) >= self._price(spot))

    # ------------------------------------------------------------------ postflop
    def _postflop(self, spot: Spot) -> Action:
        villains = [opponent_range(spot, p) for p in spot.active if p != spot.position]
        eq = equity(spot.hole, spot.board, villains, self.trials, self.spot_seed(spot))
        aggro = sum(1 for m in spot.moves if m.street != "preflop" and m.verb in ("bet", "raise") and m.position != spot.position)
        eq *= ranges_for(spot.n_players).aggro ** aggro
        spr = spot.stack / max(spot.pot, 1e-9)
        if spot.to_call == 0:
            pre_raiser = [m.position for m in spot.moves if m.street == "preflop" and m.verb == "raise"][-1:] == [spot.position]
            if eq >= 0.85 and spr <= 1.5:
                return self._sized(spot, spot.stack + spot.hero_in) or self._passive(spot, True)
            if eq >= 0.75:
                return self._sized(spot, spot.pot) or self._passive(spot, True)
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


class TeacherPlayer(QuietPlayer):
    """The teacher seated at a PyPokerEngine table (e.g. as an arena opponent or a data-collection hero)."""

    def __init__(self, policy: TeacherPolicy | None = None):
        super().__init__()
        self.policy = policy or TeacherPolicy()

    def declare_action(self, valid_actions, hole_card, round_state):
        spot = spot_from_engine(hole_card, round_state, valid_actions, self.uuid)
        action = self.policy.decide(spot)
        return to_engine(action, valid_actions, bb=spot.bb_chips, hero_paid=round(spot.hero_in * spot.bb_chips))
