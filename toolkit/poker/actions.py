"""The action vocabulary the model speaks, and its mapping both ways to PyPokerEngine.

The model answers with one of ``fold``, ``check``, ``call``, ``raise X`` or ``bet X`` where X is in
big blinds and is the *total* the player has in front of them this street after acting ("raise
to", like PokerBench: ``"raise 2.5"`` opens to 2.5 bb, ``"bet 6"`` bets 6 bb into a fresh street).

PyPokerEngine's ``valid_actions`` look like::

    [{'action': 'fold', 'amount': 0},
     {'action': 'call', 'amount': 20},                      # chips to MATCH this street (a total)
     {'action': 'raise', 'amount': {'min': 40, 'max': 1000}}]  # "raise to" totals, max = all-in

so ``check`` is ``('call', amount)`` when the player has already put ``amount`` in (the big blind's
option, or ``call 0`` postflop), and ``bet`` is a raise on a street where nobody has bet yet.

Upstream bug #72: when a player cannot afford a full min-raise the engine returns
``min = max = -1`` instead of offering the all-in for less. We treat raising as illegal then
(no raise candidate is offered): the player can still call, and a call the player cannot cover
is turned into an all-in call by the engine itself. Offering ``raise <all-in>`` would be accepted
by the engine but records a raise smaller than the last one, which corrupts its own min-raise
arithmetic for the rest of the street.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

VERBS = ("fold", "check", "call", "raise", "bet")  # everything the model may answer
SIZED = ("raise", "bet")  # verbs that carry an amount in bb
STREETS = ("preflop", "flop", "turn", "river")
OPEN_BB = 2.5  # preflop open, raise-to, plus 1 bb per limper
RERAISE_X = 3.0  # 3-bet / re-raise to 3x the bet faced
BET_FRACTIONS = (0.33, 0.66, 1.0)  # postflop bets as a share of the pot


def fmt_bb(x: float) -> str:
    """Compact bb amount like PokerBench: 2.5 -> "2.5", 6.0 -> "6", 99.73 -> "99.73"."""
    return f"{round(x, 2):.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Action:
    verb: str  # one of VERBS
    size: float | None = None  # raise-to / bet total in bb for "raise"/"bet"; None otherwise

    def __post_init__(self):
        if self.verb not in VERBS:
            raise ValueError(f"action verb = {self.verb!r}: must be one of {list(VERBS)}")
        if (self.verb in SIZED) != (self.size is not None):
            need = "needs a size in bb, e.g. 'raise 2.5'" if self.verb in SIZED else "takes no size"
            raise ValueError(f"action {self.verb!r} with size {self.size!r}: {self.verb} {need}")
        if self.size is not None and self.size <= 0:
            raise ValueError(f"action size = {self.size!r}: must be > 0 bb")

    def __str__(self) -> str:
        return self.verb if self.size is None else f"{self.verb} {fmt_bb(self.size)}"


_NUMBER = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)(bb)?$")


def parse_action(text: str) -> Action:
    """Parse a model answer like ``" Raise 2.5bb."`` into an Action.

    Tolerant of case, spacing, trailing punctuation, a ``bb``/``chips`` unit and ``raise to X``;
    strict about everything else: unknown or extra words raise ValueError naming the text.
    """
    if not isinstance(text, str):
        raise ValueError(f"action text = {text!r}: expected a string like 'call' or 'raise 2.5'")
    words = text.strip().lower().rstrip(".!,;:").split()
    if not words or words[0] not in VERBS:
        raise ValueError(f"action text = {text!r}: start with one of {list(VERBS)}, e.g. 'call' or 'bet 6'")
    verb, rest = words[0], words[1:]
    if verb not in SIZED:
        if rest:
            raise ValueError(f"action text = {text!r}: '{verb}' takes no amount or extra words; answer just '{verb}'")
        return Action(verb)
    if rest[:1] == ["to"]:
        rest = rest[1:]
    if rest and rest[-1] in ("bb", "chips", "chip"):
        rest = rest[:-1]
    match = _NUMBER.match(rest[0]) if len(rest) == 1 else None
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"action text = {text!r}: '{verb}' needs one positive amount in bb, e.g. '{verb} 2.5'")
    return Action(verb, round(float(match.group(1)), 2))


# --------------------------------------------------------------------------- engine side
def read_valid_actions(valid_actions: list[dict]) -> tuple[int, int, int]:
    """PyPokerEngine's valid_actions -> (call_total, raise_min, raise_max) in chips; -1/-1 = no raise."""
    try:
        by_name = {a["action"]: a["amount"] for a in valid_actions}
        call_total = int(by_name["call"])
        rmin, rmax = int(by_name["raise"]["min"]), int(by_name["raise"]["max"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"valid_actions = {valid_actions!r}: expected PyPokerEngine's "
                         "[{'action':'fold',...},{'action':'call','amount':N},{'action':'raise','amount':{'min':a,'max':b}}]") from exc
    if call_total < 0:
        raise ValueError(f"valid_actions call amount = {call_total}: must be >= 0 chips")
    return call_total, rmin, rmax


def legal_candidates(valid_actions: list[dict], *, bb: int, hero_paid: int, pot: int,
                     street: str, limpers: int = 0) -> tuple[Action, ...]:
    """The actions the LLM scores and the teacher chooses from, in a fixed order.

    Args:
        valid_actions: PyPokerEngine's list for this decision.
        bb: big blind in chips; hero_paid: chips hero already has in this street;
        pot: chips in the pot (all streets, bets in front of players included);
        street: one of STREETS; limpers: preflop callers of the big blind before any raise.
    Returns:
        fold (only when facing a bet), check or call, then raise/bet sizes from the menu
        (open 2.5 bb + 1 per limper, re-raise to 3x, bet 33/66/100% pot, all-in) clipped to the
        engine's min/max, rounded to whole chips, deduplicated, ascending.
    """
    call_total, rmin, rmax = read_valid_actions(valid_actions)
    facing = call_total > hero_paid
    out = [Action("fold"), Action("call")] if facing else [Action("check")]
    if rmin <= 0 or rmax < rmin:  # bug #72 (min = max = -1): no raise is offered, see module doc
        return tuple(out)
    if street == "preflop":
        wanted = [OPEN_BB * bb + limpers * bb] if call_total <= bb else [RERAISE_X * call_total]
    elif call_total == 0:
        wanted = [f * pot for f in BET_FRACTIONS]
    else:
        wanted = [RERAISE_X * call_total]
    verb = "bet" if street != "preflop" and call_total == 0 else "raise"
    totals = sorted({min(max(round(w), rmin), rmax) for w in wanted} | {rmax})
    return tuple(out + [Action(verb, round(t / bb, 2)) for t in totals])


def to_engine(action: Action, valid_actions: list[dict], *, bb: int, hero_paid: int) -> tuple[str, int]:
    """An Action -> the ``(action, amount)`` pair ``declare_action`` returns; ValueError if illegal here."""
    call_total, rmin, rmax = read_valid_actions(valid_actions)
    facing = call_total > hero_paid
    if action.verb == "fold":
        return "fold", 0
    if action.verb == "check" and facing:
        raise ValueError(f"action 'check': illegal when facing a bet ({(call_total - hero_paid) / bb:g} bb to call); use call or fold")
    if action.verb in ("check", "call"):
        return "call", call_total
    if rmin <= 0:
        raise ValueError(f"action {str(action)!r}: no raise is possible here (engine min/max = -1, bug #72); call or fold")
    if action.verb == "bet" and call_total > 0:
        raise ValueError(f"action {str(action)!r}: someone already bet this street; say 'raise X' instead")
    chips = round(action.size * bb)
    if abs(chips - rmax) <= bb / 100:  # "raise 99.73" written at 2 decimals still means all-in
        chips = rmax
    if not rmin <= chips <= rmax:
        raise ValueError(f"action {str(action)!r}: size must be between {rmin / bb:g} and {rmax / bb:g} bb here")
    return "raise", chips


def from_engine(action: str, amount: int, *, bb: int, call_total: int, hero_paid: int, street: str) -> Action:
    """An engine ``(action, amount)`` -> Action (the inverse of :func:`to_engine`)."""
    if action == "fold":
        return Action("fold")
    if action == "call":
        return Action("check" if call_total <= hero_paid else "call")
    if action == "raise":
        verb = "bet" if street != "preflop" and call_total == 0 else "raise"
        return Action(verb, round(amount / bb, 2))
    raise ValueError(f"engine action = {action!r}: PyPokerEngine only declares 'fold', 'call' or 'raise'")
