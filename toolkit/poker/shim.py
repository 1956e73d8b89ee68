"""Known PyPokerEngine 1.0.1 bugs, patched or routed around on purpose.

PyPokerEngine is unmaintained and several of its bugs bias match results. This module fixes each one
it knows about through one reversible monkeypatch (``install()`` / ``uninstall()`` or the context
manager ``patched()``); the arena always plays inside ``patched()``. Every item is reproduced on a
concrete hand in ``tests/test_poker_shim.py`` (wrong unpatched, right patched).

### PyPokerEngine 1.0.1: known bugs and what the toolkit does

| Upstream bug | Effect on results | What we do |
| --- | --- | --- |
| #68 ties broken on hole cards | two players playing the same 5 cards (e.g. a straight on the board) do not split: the higher hole card wins the whole pot | **patched**: `HandEvaluator.eval_hand` is replaced by eval7's 7-card evaluator, which ranks the best 5 cards only, so equal hands tie and the pot is split |
| #69 A-2-3-4-5 (wheel) not a straight | the wheel is scored as high card and loses to any pair | **patched** by the same eval7 evaluator |
| #78 flushes compared on the top card only | a Q-J-9-7-6 flush can lose to Q-J-9-6-5 (then the hole cards decide) | **patched** by the same eval7 evaluator; `gen_hand_rank_info` (the hand names in round results) is rebuilt from it too |
| odd chips of a split pot vanish (`int(pot / winners)`) | chips disappear from the table, deltas do not sum to zero | **patched**: `GameEvaluator.judge` gives the odd chips one each to the winners nearest the left of the button |
| #82 heads-up blinds and acting order | heads-up, the button posts the big blind, and the small blind acts first on every street | **patched**: heads-up the button posts the small blind (both `Dealer` and `Emulator` blind code), acts first preflop and last postflop (the first postflop actor is the first player left of the button) |
| #72 raise min/max = -1 when only an all-in raise is possible | bots (and the LLM prompt) are told they cannot raise although an all-in raise is accepted | **patched**: `ActionChecker.legal_actions` offers the raise with min = max = all-in; -1 now only means "no raise possible" (stack does not exceed the call) |
| an illegal action silently becomes a fold | a broken player looks like a tight one | **patched**: `ActionChecker.correct_action` still folds (the engine's rule) but records every illegal action in `illegal_log` and raises `IllegalActionError` in strict mode. Legal means exactly one of the offered `valid_actions` (see `is_legal`) |
| decks come from the global `random`, no seed | matches cannot be replayed and dealing disturbs the caller's random state | **routed around**: `seeded_deck(seed)` builds the engine's own fixed-order ("cheat") deck from `random.Random(seed)`, and `seeded_global_random(seed)` seeds the global `random` (which bots like `RandomPlayer` draw from) for one hand and restores the caller's state afterwards |
"""
from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Any, Iterator

import eval7
import numpy as np
from pypokerengine.api import emulator
from pypokerengine.engine.action_checker import ActionChecker
from pypokerengine.engine.card import Card
from pypokerengine.engine.dealer import Dealer
from pypokerengine.engine.deck import Deck
from pypokerengine.engine.game_evaluator import GameEvaluator
from pypokerengine.engine.hand_evaluator import HandEvaluator
from pypokerengine.engine.poker_constants import PokerConstants as Const
from pypokerengine.engine.round_manager import RoundManager


class IllegalActionError(ValueError):
    """A player answered with something that is not one of its ``valid_actions`` (strict mode only)."""


illegal_log: list[dict] = []  # every illegal action seen while patched: uuid, name, action, amount, valid_actions
_state = {"depth": 0, "strict": False, "saved": []}  # install nesting depth, strict flag, (owner, name, original)


# --------------------------------------------------------------------------- #68 #69 #78 hand evaluation
# PyPokerEngine cards are suit+rank ("SA", "HT"); eval7 wants rank+suit ("As", "Th"). 52 cards, built once.
_EVAL7 = {(c.suit, c.rank): eval7.Card(str(c)[1] + str(c)[0].lower()) for c in map(Card.from_id, range(1, 53))}
# eval7.evaluate returns (hand type << 24) | ranks of the 5 played cards, 4 bits each from bit 16 down.
_TYPE_NAMES = ["HIGHCARD", "ONEPAIR", "TWOPAIR", "THREECARD", "STRAIGHT", "FLASH", "FULLHOUSE", "FOURCARD", "STRAIGHTFLASH"]


def eval_hand(hole: list[Card], community: list[Card]) -> int:
    """Strength of the best 5 of hole + community cards; higher wins, equal values tie (eval7)."""
    return eval7.evaluate([_EVAL7[(c.suit, c.rank)] for c in hole + community])


def _eval_hand(cls, hole, community):
    return eval_hand(hole, community)


def _gen_hand_rank_info(cls, hole, community):
    # Same dict shape as upstream; "high"/"low" are the first two ranks that decide the hand (2..14).
    value = eval_hand(hole, community)
    ranks = sorted((c.rank for c in hole), reverse=True)
    return {"hand": {"strength": _TYPE_NAMES[value >> 24], "high": ((value >> 16) & 15) + 2, "low": ((value >> 12) & 15) + 2},
            "hole": {"high": ranks[0], "low": ranks[1]}}


# --------------------------------------------------------------------------- split pots: odd chips
def _judge(cls, table):
    players, community = table.seats.players, table.get_community_card()
    find_winners = cls._GameEvaluator__find_winners_from
    winners = find_winners(community, players)
    hand_info = cls._GameEvaluator__gen_hand_info_if_needed(players, community)
    prize_map = {i: 0 for i in range(len(players))}
    n = len(players)
    for pot in cls.create_pot(players):
        if pot["amount"] == 0:
            continue
        # The standard rule: odd chips go to the tied winners nearest the left of the button, one each.
        pot_winners = sorted(find_winners(community, pot["eligibles"]),
                             key=lambda p: (players.index(p) - table.dealer_btn - 1) % n)
        share, odd = divmod(pot["amount"], len(pot_winners))
        for k, winner in enumerate(pot_winners):
            prize_map[players.index(winner)] += share + (1 if k < odd else 0)
    return winners, hand_info, prize_map


# --------------------------------------------------------------------------- #82 heads-up blinds and order
def _steal_money(table, ante, sb_amount):
    """Upstream ``_steal_money_from_poor_player`` with one change: heads-up, the button posts the small blind."""
    players = table.seats.players
    heads_up = sum(p.stack > 0 for p in players) == 2  # counted before antes knock anyone out (as upstream PR #83)
    for player in [p for p in players if p.stack < ante]:
        player.stack = 0
    if players[table.dealer_btn].stack == 0:
        table.shift_dealer_btn()
    first = table.dealer_btn if heads_up else table.dealer_btn + 1  # upstream always starts left of the button
    targets = (players * 3)[first:first + len(players)]
    sb_player = emulator._find_first_elligible_player(targets, sb_amount + ante)
    sb_rel = targets.index(sb_player)
    for player in targets[:sb_rel]:
        player.stack = 0
    targets = targets[sb_rel + 1:sb_rel + len(players)]
    bb_player = emulator._find_first_elligible_player(targets, sb_amount * 2 + ante, sb_player)
    if sb_player == bb_player:  # nobody can pay the big blind
        for player in [p for p in players if p != bb_player]:
            player.stack = 0
    else:
        for player in targets[:targets.index(bb_player)]:
            player.stack = 0
    return players.index(sb_player), players.index(bb_player)


def _dealer_steal_money(self, table, ante, sb_amount):
    return _steal_money(table, ante, sb_amount)


def _start_street(cls, state):
    table, street = state["table"], state["street"]
    if street == Const.Street.PREFLOP:
        # Upstream rule kept: start at the SB, and __preflop skips two players (SB, BB) -> UTG.
        # Heads-up the SB is now the button, so this makes the button act first preflop.
        start = table.sb_pos() - 1
    else:
        start = table.dealer_btn  # postflop the first player left of the button acts first (heads-up: the BB)
    state["next_player"] = table.next_ask_waiting_player_pos(start)
    streets = {Const.Street.PREFLOP: cls._RoundManager__preflop, Const.Street.FLOP: cls._RoundManager__flop,
               Const.Street.TURN: cls._RoundManager__turn, Const.Street.RIVER: cls._RoundManager__river,
               Const.Street.SHOWDOWN: cls._RoundManager__showdown}
    if street not in streets:
        raise ValueError(f"Street is already finished [street = {street}]")
    return streets[street](state)


# --------------------------------------------------------------------------- #72 all-in raise, illegal actions
def _legal_actions(cls, players, player_pos, sb_amount):
    valid = _original(ActionChecker, "legal_actions")(players, player_pos, sb_amount)
    all_in = players[player_pos].stack + players[player_pos].paid_sum()
    if valid[2]["amount"]["min"] == -1 and all_in > valid[1]["amount"]:
        valid[2]["amount"] = {"min": all_in, "max": all_in}  # the engine accepts this raise; say so
    return valid


def is_legal(valid_actions: list[dict], action: Any, amount: Any) -> bool:
    """True if (action, amount) is exactly one of ``valid_actions``: a fold, a call of the offered
    amount, or a raise to an integer in [min, max] (min = -1 means no raise is possible)."""
    offered = {a["action"]: a["amount"] for a in valid_actions}
    if action == "fold":
        return True
    integral = isinstance(amount, (int, float, np.integer, np.floating)) and not isinstance(amount, bool) \
        and float(amount).is_integer()
    if action == "call":
        return integral and amount == offered["call"]
    if action == "raise":
        low, high = offered["raise"]["min"], offered["raise"]["max"]
        return integral and low != -1 and low <= amount <= high
    return False


def _correct_action(cls, players, player_pos, sb_amount, action, amount=None):
    valid = cls.legal_actions(players, player_pos, sb_amount)
    if is_legal(valid, action, amount):
        amount = 0 if action == "fold" else int(amount)
        return _original(ActionChecker, "correct_action")(players, player_pos, sb_amount, action, amount)
    player = players[player_pos]
    illegal_log.append({"uuid": player.uuid, "name": player.name, "action": action, "amount": amount, "valid_actions": valid})
    if _state["strict"]:
        raise IllegalActionError(
            f"player {player.name!r} answered (action={action!r}, amount={amount!r}) but valid_actions were {valid}: "
            "return one of them exactly (a raise amount is an integer in [min, max]), or play with "
            "strict_illegal=False to count illegal actions and fold them as the engine does")
    return "fold", 0


# --------------------------------------------------------------------------- decks and global random (routed around)
def deck_order(seed: int) -> list[int]:
    """The 52 PyPokerEngine card ids (1..52) in dealing order for ``seed``; the global ``random`` is untouched."""
    return random.Random(seed).sample(range(1, 53), 52)


def seeded_deck(seed: int) -> Deck:
    """A deck that deals ``deck_order(seed)``: seat 0 gets ids[0:2], seat 1 ids[2:4]…, then 3+1+1 board cards.

    It is the engine's own fixed-order ("cheat") deck, so shuffling does nothing and every copy the
    engine makes keeps the order; pass it as ``Table(cheat_deck=seeded_deck(seed))``."""
    return Deck(cheat=True, cheat_card_ids=deck_order(seed))


@contextmanager
def seeded_global_random(seed: int) -> Iterator[None]:
    """Seed the global ``random`` and ``numpy.random`` for one hand, then put the caller's state back.

    Bots such as ``RandomPlayer`` and ``HonestPlayer`` (Monte Carlo) draw from the global ``random``,
    and the engine draws player uuids from it, so this makes a hand replayable."""
    saved, saved_np = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        random.setstate(saved)
        np.random.set_state(saved_np)


# --------------------------------------------------------------------------- install / uninstall
def _original(owner: type, name: str):
    for o, n, original in _state["saved"]:
        if o is owner and n == name:
            return original.__get__(None, owner)
    return getattr(owner, name)


_PATCHES = [  # (owner, attribute, replacement); classmethods stay classmethods
    (HandEvaluator, "eval_hand", classmethod(_eval_hand)),
    (HandEvaluator, "gen_hand_rank_info", classmethod(_gen_hand_rank_info)),
    (GameEvaluator, "judge", classmethod(_judge)),
    (Dealer, "_Dealer__steal_money_from_poor_player", _dealer_steal_money),
    (emulator, "_steal_money_from_poor_player", _steal_money),
    (RoundManager, "_RoundManager__start_street", classmethod(_start_street)),
    (ActionChecker, "legal_actions", classmethod(_legal_actions)),
    (ActionChecker, "correct_action", classmethod(_correct_action)),
]


def install(strict_illegal: bool = False) -> None:
    """Apply every patch above (nested calls only count up). ``strict_illegal`` raises on illegal actions."""
    if _state["depth"] == 0:
        for owner, name, replacement in _PATCHES:
            _state["saved"].append((owner, name, vars(owner)[name]))  # raw attribute, so classmethods restore as such
            setattr(owner, name, replacement)
    _state["depth"] += 1
    _state["strict"] = strict_illegal


def uninstall() -> None:
    """Undo ``install()``; the engine is upstream PyPokerEngine again once every install is undone."""
    if _state["depth"] == 0:
        return
    _state["depth"] -= 1
    if _state["depth"] == 0:
        for owner, name, original in reversed(_state["saved"]):
            setattr(owner, name, original)
        _state["saved"].clear()
        _state["strict"] = False


def installed() -> bool:
    return _state["depth"] > 0


@contextmanager
def patched(strict_illegal: bool = False) -> Iterator[None]:
    """``with patched(): start_poker(...)`` plays with every fix above and undoes them afterwards."""
    strict_before = _state["strict"]
    install(strict_illegal)
    try:
        yield
    finally:
        uninstall()
        if installed():
            _state["strict"] = strict_before
