"""One decision point (a ``Spot``) and its conversion from PyPokerEngine's ``declare_action`` arguments.

Everything in a Spot is in big blinds and named by position, so the renderer, the teacher and the
dataset never see chips, seats or uuids.

Positions come from the blinds and who was dealt in: the engine's ``small_blind_pos`` is SB, the
next dealt-in seat is BB, the seats after it are UTG, HJ, CO, BTN (the last of these is the
button; 5-handed drops UTG, 4-handed also HJ...). Heads-up there are only SB and BB. PyPokerEngine
quirk: heads-up its ``dealer_btn`` points at the *big* blind and the small blind acts first on
every street (real rules: the button is the small blind and acts last after the flop), so we name
heads-up seats by the blind they posted, never by ``dealer_btn``.

PyPokerEngine's ``action_histories`` interleave each player's k-th action starting from the SB;
because players act in seat order (blinds counting as the SB's/BB's first preflop actions) that
is the chronological order, which :func:`spot_from_engine` relies on.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from pypokerengine.players import BasePokerPlayer

from .actions import STREETS, Action, legal_candidates, parse_action
from .cards import check_distinct, parse_card, parse_cards

LATE_NAMES = ("UTG", "HJ", "CO", "BTN")  # seats after the BB, the last one is the button
BOARD_SIZE = {"preflop": 0, "flop": 3, "turn": 4, "river": 5}


@dataclass(frozen=True)
class Move:
    street: str  # one of STREETS
    position: str  # who acted, e.g. "HJ"
    verb: str  # fold / check / call / raise / bet (posting a blind is not a move)
    size: float | None = None  # raise-to / bet total in bb; None for fold/check/call


@dataclass(frozen=True)
class Spot:
    spot_id: str  # unique id, e.g. "s0-h12-d3" (seed, hand, decision)
    n_players: int  # players dealt into this hand (2-6)
    positions: tuple[str, ...]  # dealt-in positions in preflop acting order, e.g. ("UTG", ..., "SB", "BB")
    position: str  # hero's position, one of positions
    hole: tuple[str, ...]  # hero's 2 cards, eval7 notation ("As", "Kd")
    board: tuple[str, ...]  # 0, 3, 4 or 5 community cards matching street
    street: str  # "preflop" | "flop" | "turn" | "river"
    moves: tuple[Move, ...]  # every voluntary action this hand so far, oldest first
    pot: float  # bb in the middle, bets in front of players included
    start_stacks: tuple[float, ...]  # bb each of `positions` had when the hand began
    stacks: tuple[float, ...]  # bb each of `positions` has behind now
    active: tuple[str, ...]  # positions not folded (hero included)
    hero_in: float  # bb hero has put in on this street already
    call_total: float  # bb everyone must have in on this street to continue (engine's call amount)
    raise_min: float | None  # smallest legal raise-to in bb; None when no raise is possible (bug #72)
    raise_max: float | None  # largest legal raise-to (all-in) in bb; None with raise_min
    candidates: tuple[Action, ...]  # legal answers the model scores and the teacher picks from
    bb_chips: int = 10  # chips in one big blind at the engine table

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: normalise once here, then never change
        set_(self, "hole", parse_cards(self.hole, "hole"))
        set_(self, "board", parse_cards(self.board, "board"))
        if len(self.hole) != 2:
            raise ValueError(f"hole = {list(self.hole)!r}: hero holds exactly 2 cards")
        if self.street not in STREETS:
            raise ValueError(f"street = {self.street!r}: must be one of {list(STREETS)}")
        if len(self.board) != BOARD_SIZE[self.street]:
            raise ValueError(f"board = {list(self.board)!r}: the {self.street} has {BOARD_SIZE[self.street]} board cards")
        check_distinct(self.hole + self.board, "hole+board")
        if self.pot < 0:
            raise ValueError(f"pot = {self.pot!r}: a pot cannot be negative")
        if self.position not in self.positions:
            raise ValueError(f"position = {self.position!r}: must be one of positions {list(self.positions)}")
        if not 2 <= self.n_players <= 6 or len(self.positions) != self.n_players:
            raise ValueError(f"n_players = {self.n_players!r}: must be 2-6 and match positions {list(self.positions)}")
        if not self.candidates:
            raise ValueError(f"candidates of spot {self.spot_id!r}: empty; every spot has at least check or fold/call")
        if self.call_total < self.hero_in:
            raise ValueError(f"call_total = {self.call_total}: cannot be below hero_in = {self.hero_in}")

    @property
    def stack(self) -> float:
        """bb hero has behind."""
        return self.stacks[self.positions.index(self.position)]

    @property
    def to_call(self) -> float:
        """bb hero must add to continue (capped at the stack: a short call is all-in); 0 = may check."""
        return round(min(self.call_total - self.hero_in, self.stack), 2)

    def valid_actions(self) -> list[dict]:
        """Rebuild PyPokerEngine's valid_actions for this spot (chips), e.g. to map an answer back."""
        c = lambda x: -1 if x is None else round(x * self.bb_chips)  # noqa: E731
        return [{"action": "fold", "amount": 0}, {"action": "call", "amount": c(self.call_total)},
                {"action": "raise", "amount": {"min": c(self.raise_min), "max": c(self.raise_max)}}]

    def to_dict(self) -> dict:
        """Plain JSON types; candidates as answer strings, moves as dicts."""
        d = asdict(self)
        d["candidates"] = [str(a) for a in self.candidates]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Spot":
        missing = [f.name for f in fields(cls) if f.name not in d and f.name != "bb_chips"]
        if missing:
            raise ValueError(f"spot {d.get('spot_id', '?')!r} is missing fields {missing}; write spots with Spot.to_dict()")
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        for name in ("positions", "hole", "board", "start_stacks", "stacks", "active"):
            kw[name] = tuple(kw[name])
        kw["moves"] = tuple(Move(**m) for m in kw["moves"])
        kw["candidates"] = tuple(parse_action(a) for a in kw["candidates"])
        return cls(**kw)


def position_names(n: int) -> list[str]:
    """Names of n dealt-in seats counted from the SB: 6 -> SB BB UTG HJ CO BTN; 2 -> SB BB."""
    if not 2 <= n <= 6:
        raise ValueError(f"n_players = {n}: positions are defined for 2-6 players")
    return ["SB", "BB"] + list(LATE_NAMES[len(LATE_NAMES) - (n - 2):]) if n > 2 else ["SB", "BB"]


def _bb(chips: float, bb: int) -> float:
    return round(chips / bb, 2)


def spot_from_engine(hole_card: list[str], round_state: dict, valid_actions: list[dict],
                     hero_uuid: str, spot_id: str | None = None) -> Spot:
    """Convert PyPokerEngine's ``declare_action(valid_actions, hole_card, round_state)`` into a Spot."""
    seats = round_state["seats"]
    uuids = [s["uuid"] for s in seats]
    if hero_uuid not in uuids:
        raise ValueError(f"hero_uuid = {hero_uuid!r}: not seated at this table (seats: {uuids})")
    bb = int(round(2 * round_state["small_blind_amount"]))
    histories = round_state["action_histories"]
    acted = {h["uuid"] for street in histories.values() for h in street}
    dealt = [i for i, s in enumerate(seats) if s["uuid"] in acted or s["state"] != "folded"]
    sb = round_state["small_blind_pos"]
    order = sorted(dealt, key=lambda i: (i - sb) % len(seats))  # from the SB, clockwise
    names = dict(zip(order, position_names(len(order))))
    pos_of = {seats[i]["uuid"]: names[i] for i in order}
    positions = tuple(names[i] for i in order[2:] + order[:2])  # PokerBench order: UTG .. BTN, SB, BB

    street = round_state["street"]
    moves, paid_total, paid_street, limpers = [], {u: 0 for u in uuids}, {}, 0
    for st in STREETS:
        paid_street = {u: 0 for u in uuids}
        raised = False
        for h in histories.get(st, []):
            u, kind = h["uuid"], h["action"]
            if kind == "ANTE":
                paid_total[u] += h["amount"]
                continue
            if kind in ("SMALLBLIND", "BIGBLIND"):
                paid_street[u] = h["amount"]
                continue
            if kind == "FOLD":
                moves.append(Move(st, pos_of[u], "fold"))
            elif kind == "CALL":
                moves.append(Move(st, pos_of[u], "check" if h["paid"] == 0 else "call"))
                limpers += st == "preflop" and not raised and h["paid"] > 0
                paid_street[u] = h["amount"]
            elif kind == "RAISE":
                verb = "bet" if st != "preflop" and not raised else "raise"
                moves.append(Move(st, pos_of[u], verb, _bb(h["amount"], bb)))
                raised, paid_street[u] = True, h["amount"]
            else:
                raise ValueError(f"round_state action_histories[{st!r}] has unknown action {kind!r}")
        for u in uuids:
            paid_total[u] += paid_street[u]
        if st == street:
            break

    pot_chips = round_state["pot"]["main"]["amount"] + sum(p["amount"] for p in round_state["pot"]["side"])
    by_pos = {pos_of[s["uuid"]]: s for s in seats if s["uuid"] in pos_of}
    call_total, rmin, rmax = (valid_actions[1]["amount"], valid_actions[2]["amount"]["min"],
                              valid_actions[2]["amount"]["max"])
    hero_paid = paid_street[hero_uuid]
    candidates = legal_candidates(valid_actions, bb=bb, hero_paid=hero_paid, pot=pot_chips,
                                  street=street, limpers=limpers)
    no_raise = rmin <= 0 or rmax < rmin
    return Spot(
        spot_id=spot_id or f"r{round_state.get('round_count', 0)}-{street}-{len(moves)}",
        n_players=len(order), positions=positions, position=pos_of[hero_uuid],
        hole=tuple(parse_card(c, "hole_card") for c in hole_card),
        board=tuple(parse_card(c, "community_card") for c in round_state["community_card"]),
        street=street, moves=tuple(moves), pot=_bb(pot_chips, bb),
        start_stacks=tuple(_bb(by_pos[p]["stack"] + paid_total[by_pos[p]["uuid"]], bb) for p in positions),
        stacks=tuple(_bb(by_pos[p]["stack"], bb) for p in positions),
        active=tuple(p for p in positions if by_pos[p]["state"] != "folded"),
        hero_in=_bb(hero_paid, bb), call_total=_bb(call_total, bb),
        raise_min=None if no_raise else _bb(rmin, bb), raise_max=None if no_raise else _bb(rmax, bb),
        candidates=candidates, bb_chips=bb)


class QuietPlayer(BasePokerPlayer):
    """A BasePokerPlayer that ignores the engine's notifications; subclasses only write ``declare_action``."""

    def receive_game_start_message(self, game_info): pass

    def receive_round_start_message(self, round_count, hole_card, seats): pass

    def receive_street_start_message(self, street, round_state): pass

    def receive_game_update_message(self, action, round_state): pass

    def receive_round_result_message(self, winners, hand_info, round_state): pass
