"""Spot -> prompt, in PokerBench's wording.

PokerBench (Zhuang et al., 2025) builds its prompts in ``SFT/poker_csv_to_json.py``; we keep its
sentences word for word (including its "Holdem", "1 chips", singular suits and "Nine Of Spade" on
the board) so that a model trained on our data can be scored on PokerBench's own test set. Where we
differ, it is to be exact about our richer spots, and compact, because this is what a 135M model
trains on at a few hundred tokens/s on a CPU. Two styles share every fact: ``"pokerbench"`` keeps
all of its sentences and ``"compact"`` (the default for training) drops the boilerplate ("Here is a
game summary", "Decide on an action based on ...") and shortens the blinds and positions lines.

``compact`` also states the holding once, at the end, in PokerBench's own reminder sentence ("the
current pot size is X chips, and your holding is [...]"), instead of in the opening lines. Everything
before it is then the same for every hand that reaches the same action sequence, so an ``LLMPlayer``
reuses the cached keys/values of those tokens (``PrefixCache``) and runs only the last ~30 tokens for a
new hand's first decision instead of ~75. Both styles:

* amounts are in big blinds, so the blinds always read 0.5 and 1 "chips" like PokerBench's;
* every action is listed, folds included, instead of PokerBench's "Assume that all other players
  that is not mentioned folded" (wrong for players still to act after hero);
* a street with no action yet ends after the cards ("The turn comes Ace Of Heart.");
* sizes use the answer vocabulary ("HJ raise 2.5", "BB bet 6"); PokerBench adds "chips" postflop;
* heads-up reads "heads-up" and lists only "SB, BB"; unequal starting stacks are listed per position.
"""
from __future__ import annotations

from .actions import fmt_bb
from .cards import board_words, hand_words
from .state import BOARD_SIZE, Move, Spot

STYLES = ("compact", "pokerbench")  # compact: same facts, ~100 fewer tokens
STREET_INTRO = {"flop": "The flop comes", "turn": "The turn comes", "river": "The river comes"}


def join_and(items: list[str]) -> str:
    """PokerBench's list style: "A", "A, and B", "A, B, and C"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + ", and " + items[-1]


def move_text(m: Move) -> str:
    return f"{m.position} {m.verb}" + ("" if m.size is None else f" {fmt_bb(m.size)}")


def render_prompt(spot: Spot, style: str = "compact") -> str:
    """The prompt for one spot, ending in "Your optimal action is:" (no trailing space).

    ``style="pokerbench"`` keeps all of PokerBench's sentences; ``"compact"`` (default) keeps every
    fact in ~85 fewer tokens.
    """
    if style not in STYLES:
        raise ValueError(f"prompt style = {style!r}: must be one of {list(STYLES)}")
    full = style == "pokerbench"
    holding = f"[{hand_words(spot.hole)}]"
    table = "heads-up" if spot.n_players == 2 else f"{spot.n_players}-handed"
    if len(set(spot.start_stacks)) == 1:
        stacks = f"Everyone started with {fmt_bb(spot.start_stacks[0])} chips."
    else:
        stacks = "Starting stacks: " + ", ".join(f"{p} {fmt_bb(s)}" for p, s in zip(spot.positions, spot.start_stacks)) + "."
    intro = f"You are a specialist in playing {table} No Limit Texas Holdem."
    if full:
        lines = [intro + " The following will be a game scenario and you need to make the optimal decision.",
                 "", "Here is a game summary:", "",
                 f"The small blind is 0.5 chips and the big blind is 1 chips. {stacks}",
                 f"The player positions involved in this game are {', '.join(spot.positions)}."]
    else:
        lines = [intro, f"Blinds are 0.5/1 chips. {stacks}", f"Positions: {', '.join(spot.positions)}."]
    if full:
        lines.append(f"In this hand, your position is {spot.position}, and your holding is {holding}.")
    else:  # the holding goes last (below): everything before it is shared across hands and is cached
        lines.append(f"In this hand, your position is {spot.position}.")
    preflop = [move_text(m) for m in spot.moves if m.street == "preflop"]
    lines.append(f"Before the flop, {join_and(preflop) if preflop else 'there has been no action yet'}.")
    for street in ("flop", "turn", "river"):
        if BOARD_SIZE[street] > len(spot.board):
            break
        cards = spot.board[:3] if street == "flop" else spot.board[BOARD_SIZE[street] - 1:BOARD_SIZE[street]]
        acts = [move_text(m) for m in spot.moves if m.street == street]
        lines.append(f"{STREET_INTRO[street]} {board_words(cards)}" + (f", then {join_and(acts)}." if acts else "."))
    if full:
        lines += ["", "Now it is your turn to make a move.",
                  f"To remind you, the current pot size is {spot.pot:.1f} chips, and your holding is {holding}.",
                  "", "Decide on an action based on the strength of your hand on this board, your position, and "
                  "actions before you. Do not explain your answer."]
    else:
        lines += ["Now it is your turn to make a move. Do not explain your answer.",
                  f"The current pot size is {spot.pot:.1f} chips, and your holding is {holding}."]
    return "\n".join(lines + ["Your optimal action is:"])
