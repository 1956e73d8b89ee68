"""Cards and their three spellings: eval7 ("As"), PyPokerEngine ("SA") and words ("Ace of Spade").

Inside the toolkit a card is always a 2-character eval7 string, rank then lower-case suit:
``"As"``, ``"Th"``, ``"2c"``. PyPokerEngine writes suit first in upper case (``"SA"``, ``"HT"``,
``"C2"``); :func:`parse_card` accepts both and returns the eval7 form, so the rest of the package
never has to ask which one it holds.

Words follow PokerBench's prompts exactly (singular suits): hole cards read
``"King of Diamond and Jack of Spade"`` and board cards ``"Nine Of Spade"`` (PokerBench's
capital "Of"), so a model trained here reads PokerBench's benchmark prompts without surprise.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Iterable

import eval7

RANKS = "23456789TJQKA"  # low to high; index = strength order
SUITS = "cdhs"  # eval7 suit letters
RANK_WORDS = {"2": "Two", "3": "Three", "4": "Four", "5": "Five", "6": "Six", "7": "Seven", "8": "Eight",
              "9": "Nine", "T": "Ten", "J": "Jack", "Q": "Queen", "K": "King", "A": "Ace"}
SUIT_WORDS = {"c": "Club", "d": "Diamond", "h": "Heart", "s": "Spade"}
DECK = tuple(r + s for s in SUITS for r in RANKS)  # the 52 cards in eval7 notation


def parse_card(text: str, field: str = "card") -> str:
    """Return the eval7 spelling of one card given as eval7 (``"As"``) or PyPokerEngine (``"SA"``).

    Raises ValueError naming ``field`` when the text is not a card (``"10h"``, ``"Ax"``, ``""``).
    """
    if not isinstance(text, str) or len(text.strip()) != 2:
        raise ValueError(f"{field} = {text!r}: a card is 2 characters, rank+suit like 'As' or suit+rank like 'SA'")
    a, b = text.strip()
    if a.upper() in RANKS and b.lower() in SUITS:  # eval7: "As", "th" (rank letters are upper-cased)
        return a.upper() + b.lower()
    if a.lower() in SUITS and b.upper() in RANKS:  # PyPokerEngine: "SA", "C9"
        return b.upper() + a.lower()
    raise ValueError(f"{field} = {text!r}: not a card; ranks are {RANKS} (T for ten), suits are c d h s, e.g. 'Th' or 'HT'")


def parse_cards(cards: Iterable[str], field: str = "cards") -> tuple[str, ...]:
    """Parse several cards and reject duplicates (an impossible deal) with the field name."""
    if isinstance(cards, str):
        raise ValueError(f"{field} = {cards!r}: give a list of cards like ['As', 'Kd'], not one string")
    out = tuple(parse_card(c, f"{field}[{i}]") for i, c in enumerate(cards))
    check_distinct(out, field)
    return out


def check_distinct(cards: Iterable[str], field: str = "cards") -> None:
    """Raise ValueError when a card appears twice: no real deal can produce it."""
    seen: set[str] = set()
    for c in cards:
        if c in seen:
            raise ValueError(f"{field}: card {c!r} appears twice; every card in a deal must be different")
        seen.add(c)


def to_engine(card: str) -> str:
    """eval7 ``"As"`` -> PyPokerEngine ``"SA"``."""
    card = parse_card(card)
    return card[1].upper() + card[0]


def card_words(card: str, board: bool = False) -> str:
    """``"Kh"`` -> ``"King of Heart"`` (``"King Of Heart"`` on the board, as PokerBench writes it)."""
    card = parse_card(card)
    return f"{RANK_WORDS[card[0]]} {'Of' if board else 'of'} {SUIT_WORDS[card[1]]}"


def hand_words(hole: Iterable[str]) -> str:
    """Two hole cards in words: ``"King of Diamond and Jack of Spade"``."""
    return " and ".join(card_words(c) for c in hole)


def board_words(board: Iterable[str]) -> str:
    """Board cards as a PokerBench list: ``"Nine Of Spade, Seven Of Spade, and Four Of Club"``."""
    words = [card_words(c, board=True) for c in board]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + ", and " + words[-1]


def hand_class(hole: Iterable[str]) -> str:
    """Starting-hand class used by range charts: ``"AKs"``, ``"T9o"``, ``"QQ"`` (high rank first)."""
    a, b = sorted(hole, key=lambda c: RANKS.index(c[0]), reverse=True)
    if a[0] == b[0]:
        return a[0] + b[0]
    return a[0] + b[0] + ("s" if a[1] == b[1] else "o")


@lru_cache(maxsize=None)
def _e7(card: str) -> eval7.Card:
    return eval7.Card(card)


def to_eval7(cards: Iterable[str]) -> list[eval7.Card]:
    """eval7 Card objects (cached: building them is a measurable share of a fast equity call)."""
    return [_e7(c) for c in cards]
