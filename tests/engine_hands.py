"""Shared by the property tests: walk one PyPokerEngine hand whose moves follow a list of choices."""
import random

from pypokerengine.api.emulator import Emulator
from pypokerengine.engine.message_builder import MessageBuilder
from pypokerengine.engine.poker_constants import PokerConstants as Const
from pypokerengine.engine.round_manager import RoundManager

from toolkit.poker.actions import to_engine
from toolkit.poker.state import spot_from_engine


def play_random_hand(n, stacks, choices, seed):
    """Yield ``(spot, ask_message, state, pos)`` at each decision of one hand; the move played is the
    ``choice``-th legal candidate (mod their number). The deal is seeded; the global random is restored."""
    saved = random.getstate()
    random.seed(seed)
    try:
        em = Emulator()
        em.set_game_rule(n, 1, 5, 0)
        state = em.generate_initial_game_state({f"u{i}": {"name": f"p{i}", "stack": stacks[i]} for i in range(n)})
        state, _ = em.start_new_round(state)
    finally:
        random.setstate(saved)
    for choice in choices:
        if state["street"] in (Const.Street.SHOWDOWN, Const.Street.FINISHED):
            return
        pos = state["next_player"]
        msg = MessageBuilder.build_ask_message(pos, state)["message"]
        player = state["table"].seats.players[pos]
        spot = spot_from_engine(msg["hole_card"], msg["round_state"], msg["valid_actions"], player.uuid)
        yield spot, msg, state, pos
        pick = spot.candidates[choice % len(spot.candidates)]
        action, amount = to_engine(pick, msg["valid_actions"], bb=10, hero_paid=round(spot.hero_in * 10))
        state, _ = RoundManager.apply_action(state, action, amount)
