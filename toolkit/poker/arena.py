"""Duplicate matches at a PyPokerEngine table: heads-up or 6-max, bots or an LLM player.

Duplicate format: every deal (a seeded deck) is replayed once per seat, the players rotated one seat
each time, so each player holds every seat's cards exactly once. Luck of the cards cancels out of a
player's total for the deal, which is why metrics use these per-deal totals as the unit of variance.

* Stacks are reset to ``stack_bb`` every hand (each hand is its own one-round game), so hands are
  independent and can be spread over worker processes; results do not depend on ``workers``.
* The button never moves: seat 0 is the SB, seat 1 the BB, the last seat the button (heads-up seat 0
  is button and SB). Cards follow the seat: seat k gets the deck's cards 2k and 2k+1.
* ``workers > 1`` forks processes that inherit the players' factories (no pickling). That suits CPU
  bots; a model on a GPU does not survive fork, so play LLM players with ``workers = 1``.
* Each hand runs inside ``shim.patched()`` (PyPokerEngine bug fixes) and ``shim.seeded_global_random``
  seeded with the deal's seed, so bots drawing from ``random`` replay identically and the caller's
  random state is left untouched.

Players are factories, called once per hand: ``{"teacher": TeacherPlayer, "random": RandomPlayer}``.
Opponent bots: PyPokerEngine's examples (``examples.players``): ``FishPlayer`` always calls;
``RandomPlayer`` folds 1/3 and raises a uniform random amount 2/3 of the time (it never calls: its
call branch repeats the fold threshold), and makes an illegal raise (-1) when it cannot raise;
``HonestPlayer`` calls when its Monte Carlo win rate beats 1/players, else folds. Upstream it runs
1000 simulations per decision; ``QuickHonestPlayer(nb_simulation)`` is the same bot, faster.

A player may expose an int attribute ``forced_decisions`` (e.g. an LLM player counting answers it
could not parse and replaced by a default); the arena records how much it grew during each hand.

The table never crashes because of a player. Policy, per decision:

* an **exception** in ``declare_action`` (any ``Exception``) becomes the legal default, **check if it
  is free, else fold**; the decision is logged as that action, counted in ``HandRecord.forced`` (and
  so in ``metrics.style(...)["forced"]``) and described in ``HandRecord.faults``;
* a decision longer than ``decision_timeout_s`` (0 = no limit) gets the same default. When the match
  runs in the main thread of a Unix process (the notebook, the CLI, each worker) the player is
  **interrupted** by ``SIGALRM`` (a ``DecisionTimeout``, a ``BaseException`` so a player's own
  ``except Exception`` cannot swallow it; it lands as soon as Python code runs again, so one long C
  call such as a big matmul finishes first). Elsewhere (another thread, or an outer ``setitimer``
  already running) Python cannot stop a thread: the late answer is **discarded after it returns**;
* an exception in a ``receive_*`` notification is caught and described in ``faults`` (no decision);
* an **illegal answer** is not an error: the shim counts it as ``illegal`` and the engine folds it.

A decision the player already counted in its own ``forced_decisions`` is not counted twice.
``MatchResult.forced`` gives the totals per player.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import signal
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from pypokerengine.engine.card import Card
from pypokerengine.engine.dealer import Dealer
from pypokerengine.engine.table import Table
from examples.players.honest_player import HonestPlayer
from pypokerengine.players import BasePokerPlayer
from pypokerengine.utils.card_utils import estimate_hole_card_win_rate, gen_cards
from tqdm.auto import tqdm

from toolkit.settings import SettingsError, problem

from . import shim

Factory = Callable[[], BasePokerPlayer]
STREETS = ["preflop", "flop", "turn", "river"]
POSITIONS = {2: ["SB", "BB"], 3: ["SB", "BB", "BTN"], 4: ["SB", "BB", "CO", "BTN"],
             5: ["SB", "BB", "HJ", "CO", "BTN"], 6: ["SB", "BB", "UTG", "HJ", "CO", "BTN"]}  # by seat


@dataclass
class ArenaSettings:
    hands: int = 200  # hands played in total; a multiple of `players`, as each deal is replayed from every seat
    seed: int = 0  # seeds every deck (and the global random that bots draw from during a hand)
    players: int = 2  # seats: 2 = heads-up, 6 = 6-max (3-5 also work)
    big_blind: int = 10  # in chips; the small blind is half. Results are reported in big blinds (bb)
    stack_bb: int = 100  # every stack is reset to this many big blinds at the start of each hand
    workers: int = 1  # processes (fork) playing deals in parallel; results are identical for any value
    strict_illegal: bool = False  # raise shim.IllegalActionError on an illegal action instead of counting + folding
    decision_timeout_s: float = 0.0  # seconds a player may think per decision, then check/fold is played for it; 0 = no limit
    progress: bool = True  # show a tqdm bar

    def problems(self, p: str = "arena") -> list[str]:
        out = []
        if self.players not in POSITIONS:
            out.append(problem(f"{p}.players", self.players, "use 2 (heads-up) or 6 (6-max); 3-5 also work"))
        elif self.hands <= 0 or self.hands % self.players:
            out.append(problem(f"{p}.hands", self.hands, f"must be a positive multiple of players = {self.players} "
                               f"(each deal is replayed from every seat), e.g. {self.players * 100}"))
        if self.big_blind < 2 or self.big_blind % 2:
            out.append(problem(f"{p}.big_blind", self.big_blind, "must be an even number of chips >= 2 (the small blind is half), e.g. 10"))
        if self.stack_bb < 1:
            out.append(problem(f"{p}.stack_bb", self.stack_bb, "must be >= 1 big blind; 100 is the usual deep stack"))
        if self.workers < 1:
            out.append(problem(f"{p}.workers", self.workers, "must be >= 1 (1 = play in this process)"))
        elif self.workers > 1 and "fork" not in multiprocessing.get_all_start_methods():
            out.append(problem(f"{p}.workers", self.workers, "needs the 'fork' start method (Linux/macOS); use 1 here"))
        if self.seed < 0:
            out.append(problem(f"{p}.seed", self.seed, "must be >= 0"))
        if self.decision_timeout_s < 0:
            out.append(problem(f"{p}.decision_timeout_s", self.decision_timeout_s, "must be >= 0 seconds (0 = no limit), e.g. 60"))
        return out


@dataclass
class HandRecord:
    deal: int  # deal index; all rotations of a deal use the same deck
    deck_seed: int  # seed of this deal's deck and of the global random during the hand
    rotation: int  # 0..players-1: player i sits in seat (i + rotation) % players
    seats: list[str]  # player name in each seat (positions in MatchResult.positions)
    hole_cards: list[list[str]]  # per seat, PyPokerEngine notation ("SA" = ace of spades)
    board: list[str]  # community cards that were dealt
    delta_bb: dict[str, float]  # chips won (+) or lost (-) per player, in big blinds; sums to 0
    actions: dict[str, dict[str, list[str]]]  # player -> street -> ["check", "call 1", "raise 3", "illegal ..."] (bb)
    seconds: dict[str, float]  # time each player spent deciding during the hand
    forced: dict[str, int]  # decisions replaced by a legal default: by the player itself (its `forced_decisions`) or the arena
    faults: dict[str, list[str]] = field(default_factory=dict)  # player -> what the arena caught, e.g. "flop: ValueError: boom"


@dataclass
class MatchResult:
    players: list[str]  # player names, in their rotation-0 seats
    positions: list[str]  # position of each seat, e.g. ["SB", "BB", "UTG", "HJ", "CO", "BTN"]
    settings: dict  # the ArenaSettings used, saved with the results
    hands: list[HandRecord] = field(default_factory=list)  # ordered by deal, then rotation
    seconds: float = 0.0  # wall-clock time of the whole match

    @property
    def forced(self) -> dict[str, int]:
        """Decisions replaced by the legal default, per player, over the whole match."""
        return {name: sum(h.forced.get(name, 0) for h in self.hands) for name in self.players}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self)) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "MatchResult":
        data = json.loads(Path(path).read_text())
        data["hands"] = [HandRecord(**h) for h in data["hands"]]
        return cls(**data)


class QuickHonestPlayer(HonestPlayer):
    """``HonestPlayer`` with a settable Monte Carlo size (upstream hard-codes 1000 simulations per decision)."""

    def __init__(self, nb_simulation: int = 100):
        super().__init__()
        self.nb_simulation = nb_simulation  # deals simulated per decision

    def declare_action(self, valid_actions, hole_card, round_state):
        win_rate = estimate_hole_card_win_rate(self.nb_simulation, self.nb_player, gen_cards(hole_card),
                                               gen_cards(round_state["community_card"]))
        action = valid_actions[1] if win_rate >= 1.0 / self.nb_player else valid_actions[0]  # call, else fold
        return action["action"], action["amount"]


def deck_seed(seed: int, deal: int) -> int:
    """Seed of one deal, computable by any worker on its own (a hash, so nearby seeds give unrelated decks)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{deal}".encode()).digest()[:4], "little")


def button_seat(n: int) -> int:
    return 0 if n == 2 else n - 1  # heads-up the button is the SB (seat 0); otherwise the last seat


def _street_paid(round_state: dict, uuid: str) -> int:
    """Chips this player already has in on the current street (what a call 'to' amount includes)."""
    paid = [h["amount"] for h in round_state["action_histories"].get(round_state["street"], [])
            if h["uuid"] == uuid and h["action"] not in ("FOLD", "ANTE")]
    return paid[-1] if paid else 0


class DecisionTimeout(BaseException):
    """Raised inside a player's ``declare_action`` when it exceeds ``decision_timeout_s`` (a BaseException,
    so that a player's own ``except Exception`` does not swallow it)."""


_ARMED = [False]  # the SIGALRM handler raises only while a decision is running


def _on_alarm(signum, frame):
    if _ARMED[0]:
        _ARMED[0] = False
        raise DecisionTimeout


def _alarm_usable() -> bool:
    """SIGALRM can interrupt only the main thread, and we must not clobber a timer someone else set."""
    return (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
            and signal.getitimer(signal.ITIMER_REAL)[0] == 0)


def _call_with_budget(fn: Callable, budget: float) -> tuple[object, str | None, float]:
    """``(answer, fault, seconds)``: fault is None, or why the answer must be replaced (exception, timeout)."""
    alarm = budget > 0 and _alarm_usable()
    if alarm:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        _ARMED[0] = True
        signal.setitimer(signal.ITIMER_REAL, budget)
    start = time.perf_counter()
    answer, fault = None, None
    try:
        try:
            answer = fn()
        finally:
            if alarm:  # the alarm is one-shot: once disarmed (or fired) no DecisionTimeout can come later
                signal.setitimer(signal.ITIMER_REAL, 0)
                _ARMED[0] = False
    except DecisionTimeout:
        fault = f"timeout: interrupted after {budget:g} s"
    except Exception as exc:  # noqa: BLE001 - any player bug becomes a forced default, never a crash
        where = traceback.extract_tb(exc.__traceback__)[-1]
        fault = f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})"
    finally:
        if alarm:
            signal.signal(signal.SIGALRM, previous)
    seconds = time.perf_counter() - start
    if fault is None and budget > 0 and seconds > budget:
        fault = f"timeout: answered after {seconds:.2f} s > {budget:g} s; answer discarded"
    return answer, fault, seconds


def default_action(valid_actions: list[dict], round_state: dict, uuid: str) -> tuple[str, int]:
    """The forced decision: check when it is free (the call costs nothing more), else fold."""
    call = valid_actions[1]["amount"]
    return ("call", call) if call == _street_paid(round_state, uuid) else ("fold", 0)


def _watch(player: BasePokerPlayer, name: str, record: HandRecord, bb: int, timeout: float = 0.0) -> Callable[[], None]:
    """Wrap this player's declare_action to time it, force a legal default on an exception or a timeout,
    and log each decision as the player meant it; wrap its notifications so they cannot crash the table.

    Returns the function that removes the wrappers again: a factory may hand out the same player object
    for every hand (an LLM is loaded once), and wrappers left in place would nest hand after hand (each
    logging into every earlier hand's record, until Python's recursion limit is hit)."""
    inner, notify = player.declare_action, player.receive_notification
    saved = {k: player.__dict__[k] for k in ("declare_action", "receive_notification") if k in player.__dict__}
    faults = record.faults.setdefault(name, [])

    def declare_action(valid_actions, hole_card, round_state):
        before = getattr(player, "forced_decisions", 0)
        answer, fault, seconds = _call_with_budget(lambda: inner(valid_actions, hole_card, round_state), timeout)
        record.seconds[name] += seconds
        if fault is not None:
            faults.append(f"{round_state['street']}: {fault}")
            answer = default_action(valid_actions, round_state, player.uuid)
            if getattr(player, "forced_decisions", 0) == before:  # not already counted by the player itself
                record.forced[name] += 1
        action, amount = answer if isinstance(answer, (tuple, list)) and len(answer) == 2 else (repr(answer), None)
        if not shim.is_legal(valid_actions, action, amount):
            text = f"illegal {action} {amount}"  # the shim counts it and the engine folds (or raises in strict mode)
        elif action == "fold":
            text = "fold"
        elif action == "call" and amount == _street_paid(round_state, player.uuid):
            text = "check"
        else:
            text = f"{action} {amount / bb:g}"
        record.actions[name][round_state["street"]].append(text)
        return action, amount

    def receive_notification(message):
        _, fault, _ = _call_with_budget(lambda: notify(message), 0)
        if fault is not None:
            faults.append(f"{message.get('message_type', 'notification')}: {fault}")

    def unwatch() -> None:
        for key in ("declare_action", "receive_notification"):
            if key in saved:
                setattr(player, key, saved[key])
            else:
                player.__dict__.pop(key, None)  # back to the class's own method

    player.declare_action = declare_action
    player.receive_notification = receive_notification
    return unwatch


class _Dealer(Dealer):
    """Upstream Dealer, except player uuids are seat numbers ("seat0"...): upstream draws 100 random
    22-letter uuids per game, which was half the time of a bot hand. Seat uuids are also the same in
    every rotation of a deal, like the cards."""

    def _Dealer__generate_uuid_list(self):
        return [f"seat{k}" for k in reversed(range(10))]  # register_player pops from the end


def play_hand(names: list[str], factories: list[Factory], settings: ArenaSettings, deal: int, rotation: int) -> HandRecord:
    """One hand of deal ``deal`` with players rotated ``rotation`` seats; the stacks start at stack_bb."""
    n, bb = settings.players, settings.big_blind
    seed = deck_seed(settings.seed, deal)
    order = shim.deck_order(seed)
    card = lambda i: str(Card.from_id(i))
    seat_of = {name: (i + rotation) % n for i, name in enumerate(names)}
    seats = sorted(names, key=seat_of.get)
    record = HandRecord(deal, seed, rotation, seats, [[card(i) for i in order[2 * s:2 * s + 2]] for s in range(n)], [],
                        {}, {name: {s: [] for s in STREETS} for name in names}, dict.fromkeys(names, 0.0), dict.fromkeys(names, 0),
                        {name: [] for name in names})
    unwatch = []
    with shim.patched(settings.strict_illegal), shim.seeded_global_random(seed):
        try:
            dealer = _Dealer(bb // 2, bb * settings.stack_bb, 0)
            dealer.table = Table(cheat_deck=shim.seeded_deck(seed))
            dealer.table.dealer_btn = button_seat(n)
            players = {}
            for name in seats:
                players[name] = factories[names.index(name)]()
                unwatch.append(_watch(players[name], name, record, bb, settings.decision_timeout_s))
                dealer.register_player(name, players[name])
            board = _Board()
            dealer.message_handler.algo_owner_map["arena-board"] = board  # receives every public message
            forced_before = {name: getattr(p, "forced_decisions", 0) for name, p in players.items()}
            result = dealer.start_game(1)
        finally:
            for undo in reversed(unwatch):
                undo()
    final = {s["name"]: s["stack"] for s in result["message"]["game_information"]["seats"]}
    record.delta_bb = {name: (final[name] - bb * settings.stack_bb) / bb for name in names}
    for name, p in players.items():  # decisions the players forced themselves (the arena's own are already in)
        record.forced[name] += getattr(p, "forced_decisions", 0) - forced_before[name]
    record.board = board.cards
    if sum(final.values()) != n * bb * settings.stack_bb:  # the shim's split-pot fix makes this exact
        raise RuntimeError(f"chips not conserved in deal {deal} rotation {rotation}: final stacks {final}")
    return record


class _Board(BasePokerPlayer):
    """Listens to public messages only, to keep the community cards dealt by the end of the hand."""

    cards: list[str] = []

    def receive_notification(self, message):
        if message["message_type"] == "round_result_message":
            self.cards = message["round_state"]["community_card"]


_JOB: tuple | None = None  # (names, factories, settings) inherited by forked workers: factories need not pickle


def _play_deal(deal: int) -> list[HandRecord]:
    names, factories, settings = _JOB
    return [play_hand(names, factories, settings, deal, r) for r in range(settings.players)]


def play_match(players: dict[str, Factory], settings: ArenaSettings | None = None) -> MatchResult:
    """Play ``settings.hands`` duplicate hands between ``players`` (name -> factory, one per seat).

    Returns a MatchResult; ``toolkit.poker.metrics.summarize(result)`` turns it into bb/100 ± CI etc."""
    global _JOB
    settings = settings or ArenaSettings()
    errors = settings.problems()
    if len(players) != settings.players:
        errors.append(problem("players", list(players), f"give exactly arena.players = {settings.players} name -> factory entries"))
    if errors:
        raise SettingsError(errors)
    names, factories = list(players), list(players.values())
    _JOB = (names, factories, settings)
    deals = range(settings.hands // settings.players)
    start = time.perf_counter()
    result = MatchResult(names, POSITIONS[settings.players], asdict(settings))
    bar = tqdm(total=settings.hands, unit="hand", disable=not settings.progress, desc=" vs ".join(names))
    if settings.workers == 1:
        batches = map(_play_deal, deals)
        pool = None
    else:  # fork: workers inherit _JOB (and any loaded model) without pickling; imap keeps deal order
        pool = multiprocessing.get_context("fork").Pool(settings.workers)
        batches = pool.imap(_play_deal, deals, chunksize=max(1, len(deals) // (settings.workers * 8)))
    try:
        for batch in batches:
            result.hands.extend(batch)
            bar.update(len(batch))
            if any(sum(h.forced.values()) for h in batch):
                bar.set_postfix(forced=sum(result.forced.values()))
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    result.seconds = time.perf_counter() - start
    return result
