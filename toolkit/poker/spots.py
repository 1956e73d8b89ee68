"""Generate labelled decision points by playing seeded PyPokerEngine hands.

Each hand is a fresh one-hand game (``start_poker`` with ``max_round=1``) where everyone starts with
``stack_bb`` big blinds, as in PokerBench. ``heroes`` random seats are played by the teacher and
every decision they face is offered to the collector; the other seats get opponent styles drawn from
``opponents``. A spot is kept while its street's quota (``street_weights``) and its label's quota
(``max_label_share``) have room, so the data is not 70% preflop folds.

Determinism: PyPokerEngine shuffles with the global ``random`` module (and ``RandomPlayer`` and the
Dealer's uuids use it too). We save ``random.getstate()``, seed it, play, and restore it, so the same
seed gives the same spots and the caller's random state is untouched. Every hand runs inside
``shim.patched()``, so the engine follows the same (fixed) rules as the arena: heads-up, the button
posts the small blind, acts first preflop and last postflop (upstream #82). Everything else (seat styles,
our own bots) draws from a private ``random.Random(seed)``; the teacher seeds eval7 per spot.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Callable, Literal

from examples.players.fish_player import FishPlayer
from examples.players.random_player import RandomPlayer
from pypokerengine.api.game import setup_config, start_poker
from pypokerengine.players import BasePokerPlayer
from tqdm.auto import tqdm

from ..settings import problem
from . import shim
from .arena import QuickHonestPlayer  # HonestPlayer with a settable Monte Carlo size
from .actions import STREETS, VERBS, Action, to_engine
from .state import QuietPlayer, Spot, spot_from_engine
from .teacher import TeacherPlayer, TeacherPolicy

BB_CHIPS = 10  # engine chips per big blind: amounts stay whole chips down to 0.1 bb
STYLES = ("teacher", "loose_passive", "aggressive", "fish", "honest", "random")


@dataclass
class SpotSettings:
    """What data to generate, and how to split and write it (used by ``toolkit.poker.dataset``)."""

    # --- what is played
    seed: int = 0  # seeds the decks, seat styles and opponents; same seed -> same bytes
    n_spots: int = 1000  # decision points to keep
    players: int = 6  # 6 (6-max) or 2 (heads-up)
    stack_bb: int = 100  # everyone starts every hand with this many big blinds
    heroes: int = 1  # seats per hand played by the teacher and recorded
    opponents: dict[str, float] = field(default_factory=lambda: {  # style -> weight for the other seats
        "teacher": 0.3, "loose_passive": 0.25, "aggressive": 0.2, "fish": 0.15, "honest": 0.05, "random": 0.05})
    honest_sims: int = 20  # Monte Carlo sims per HonestPlayer decision (upstream's 1000 take ~0.25 s each on 6-max)
    teacher_trials: int = 2000  # eval7 deals per opponent for each teacher label
    # --- what is kept
    street_weights: dict[str, float] = field(default_factory=lambda: {  # target share of spots per street
        "preflop": 0.4, "flop": 0.25, "turn": 0.2, "river": 0.15})
    max_label_share: float = 0.4  # no answer verb (fold/check/call/raise/bet) exceeds this share
    max_hands: int = 0  # give up after this many hands; 0 = 40 x n_spots
    # --- how it is written
    prompt_style: Literal["compact", "pokerbench"] = "compact"  # see toolkit.poker.render
    splits: dict[str, float] = field(default_factory=lambda: {"train": 0.8, "validation": 0.1, "test": 0.1})  # shares, sum 1

    def problems(self, p: str = "spots") -> list[str]:
        out = []
        if self.n_spots <= 0:
            out.append(problem(f"{p}.n_spots", self.n_spots, "must be a positive number of spots, e.g. 300"))
        if self.players not in (2, 6):
            out.append(problem(f"{p}.players", self.players, "must be 6 (6-max) or 2 (heads-up)"))
        if self.stack_bb < 2:
            out.append(problem(f"{p}.stack_bb", self.stack_bb, "must be at least 2 big blinds, e.g. 100"))
        if not 1 <= self.heroes <= self.players:
            out.append(problem(f"{p}.heroes", self.heroes, f"must be between 1 and players ({self.players})"))
        bad = sorted(set(self.opponents) - set(STYLES))
        if bad or any(w < 0 for w in self.opponents.values()) or not any(w > 0 for w in self.opponents.values()):
            out.append(problem(f"{p}.opponents", self.opponents, f"give non-negative weights (some > 0) for styles {list(STYLES)}"))
        bad = sorted(set(self.street_weights) - set(STREETS))
        if bad or any(w < 0 for w in self.street_weights.values()) or not any(w > 0 for w in self.street_weights.values()):
            out.append(problem(f"{p}.street_weights", self.street_weights, f"give non-negative weights (some > 0) for {list(STREETS)}"))
        if not 0.2 <= self.max_label_share <= 1:
            out.append(problem(f"{p}.max_label_share", self.max_label_share, "must be in [0.2, 1]: with 5 verbs a lower cap can never fill"))
        if self.honest_sims <= 0 or self.teacher_trials <= 0:
            out.append(problem(f"{p}.honest_sims/teacher_trials", (self.honest_sims, self.teacher_trials), "must be positive"))
        if set(self.splits) != {"train", "validation", "test"} or abs(sum(self.splits.values()) - 1) > 1e-6 \
                or any(v < 0 for v in self.splits.values()):
            out.append(problem(f"{p}.splits", self.splits, "give train/validation/test shares >= 0 that sum to 1"))
        return out


# --------------------------------------------------------------------------- opponent styles
class StylePlayer(QuietPlayer):
    """A bot that picks among the spot's legal candidates with a simple rule and its own RNG."""

    def __init__(self, rng: random.Random, rule: Callable[[Spot, float], Action]):
        super().__init__()
        self.rng, self.rule = rng, rule

    def declare_action(self, valid_actions, hole_card, round_state):
        spot = spot_from_engine(hole_card, round_state, valid_actions, self.uuid)
        action = self.rule(spot, self.rng.random())
        return to_engine(action, valid_actions, bb=spot.bb_chips, hero_paid=round(spot.hero_in * spot.bb_chips))


def _by_verb(spot: Spot) -> dict[str, Action]:
    return {a.verb: a for a in spot.candidates if a.size is None}


def loose_passive(spot: Spot, r: float) -> Action:
    """Calls a lot, folds only to big bets, raises 5% of the time with the smallest size."""
    sized, plain = [a for a in spot.candidates if a.size is not None], _by_verb(spot)
    if sized and r < 0.05:
        return sized[0]
    if "check" in plain:
        return plain["check"]
    return plain["call"] if spot.to_call <= max(0.6 * spot.pot, 3) or r < 0.4 else plain["fold"]


def aggressive(spot: Spot, r: float) -> Action:
    """Bets or raises 45% of the time (all-in rarely), otherwise checks or mostly calls."""
    sized, plain = [a for a in spot.candidates if a.size is not None], _by_verb(spot)
    if sized and r < 0.45:
        menu = sized[:-1] if len(sized) > 1 and r > 0.04 else sized[-1:]  # all-in only ~4% of the time
        return menu[int(r * 1000) % len(menu)]
    if "check" in plain:
        return plain["check"]
    return plain["call"] if r < 0.85 else plain["fold"]


def make_opponent(style: str, rng: random.Random, settings: SpotSettings, policy: TeacherPolicy) -> BasePokerPlayer:
    if style == "teacher":
        return TeacherPlayer(policy)
    if style == "loose_passive":
        return StylePlayer(rng, loose_passive)
    if style == "aggressive":
        return StylePlayer(rng, aggressive)
    if style == "fish":
        return FishPlayer()
    if style == "honest":
        return QuickHonestPlayer(settings.honest_sims)
    if style == "random":
        return RandomPlayer()
    raise ValueError(f"opponent style = {style!r}: must be one of {list(STYLES)}")


# --------------------------------------------------------------------------- collection
class HeroPlayer(TeacherPlayer):
    """The teacher in a recorded seat: labels each decision, offers it to ``keep``, plays the label."""

    def __init__(self, policy: TeacherPolicy, keep: Callable[[Spot, Action], None], hand: int, seat: int):
        super().__init__(policy)
        self.keep, self.hand, self.seat, self.n = keep, hand, seat, 0

    def declare_action(self, valid_actions, hole_card, round_state):
        spot_id = f"s{self.policy.seed}-h{self.hand}-p{self.seat}-d{self.n}"
        self.n += 1
        spot = spot_from_engine(hole_card, round_state, valid_actions, self.uuid, spot_id)
        label = self.policy.decide(spot)
        self.keep(spot, label)
        return to_engine(label, valid_actions, bb=spot.bb_chips, hero_paid=round(spot.hero_in * spot.bb_chips))


def generate_spots(settings: SpotSettings, progress: bool = True) -> list[tuple[Spot, Action]]:
    """Play seeded hands until ``n_spots`` labelled spots fill the street and label quotas.

    Returns [(spot, teacher label)] in the order they were played. Raises ValueError naming the
    setting to relax when ``max_hands`` hands could not fill the quotas.
    """
    s = settings
    total_w = sum(s.street_weights.values())
    street_quota = {st: math.ceil(s.n_spots * s.street_weights.get(st, 0) / total_w) for st in STREETS}
    label_quota = math.ceil(s.n_spots * s.max_label_share)
    street_n, label_n = {st: 0 for st in STREETS}, {v: 0 for v in VERBS}
    kept: list[tuple[Spot, Action]] = []
    bar = tqdm(total=s.n_spots, desc="spots", disable=not progress)

    def keep(spot: Spot, label: Action) -> None:
        if len(kept) < s.n_spots and street_n[spot.street] < street_quota[spot.street] and label_n[label.verb] < label_quota:
            kept.append((spot, label))
            street_n[spot.street] += 1
            label_n[label.verb] += 1
            bar.update(1)

    policy = TeacherPolicy(trials=s.teacher_trials, seed=s.seed)
    rng = random.Random(s.seed)
    styles = sorted(s.opponents)  # sorted: dict order must not change the draw
    weights = [s.opponents[k] for k in styles]
    max_hands = s.max_hands or 40 * s.n_spots
    saved = random.getstate()
    random.seed(s.seed)
    try:
        hand = 0
        while len(kept) < s.n_spots:
            if hand >= max_hands:
                short = {st: street_quota[st] - street_n[st] for st in STREETS if street_n[st] < street_quota[st]}
                raise ValueError(f"spots.max_hands = {max_hands}: kept only {len(kept)}/{s.n_spots} spots "
                                 f"(unfilled street quotas {short}); raise max_hands, lower street_weights "
                                 "for those streets, or raise max_label_share")
            heroes = set(rng.sample(range(s.players), s.heroes))
            config = setup_config(max_round=1, initial_stack=s.stack_bb * BB_CHIPS, small_blind_amount=BB_CHIPS // 2)
            for seat in range(s.players):
                if seat in heroes:
                    player = HeroPlayer(policy, keep, hand, seat)
                else:
                    player = make_opponent(rng.choices(styles, weights)[0], random.Random(rng.random()), s, policy)
                config.register_player(f"seat{seat}", player)
            with shim.patched():  # same engine rules as the arena: HU button posts SB, acts last postflop
                start_poker(config, verbose=0)
            hand += 1
    finally:
        random.setstate(saved)
        bar.close()
    return kept
