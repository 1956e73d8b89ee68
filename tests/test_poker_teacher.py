"""Teacher: exact-ish equities (eval7, never PyPokerEngine's evaluator) and textbook decisions."""
import pytest

from toolkit.poker.actions import Action, legal_candidates
from toolkit.poker.state import Move, Spot
from toolkit.poker.teacher import TeacherPolicy, equity

SIX = ("UTG", "HJ", "CO", "BTN", "SB", "BB")


# ----------------------------------------------------------------------------- equity
@pytest.mark.parametrize("hero,villain,expected", [
    (("Ah", "Ad"), "KK", 0.82),  # overpair vs underpair preflop: ~82%
    (("As", "Ks"), "QQ", 0.46),  # the classic "coin flip" is slightly in the pair's favour
])
def test_preflop_equity_within_monte_carlo_error(hero, villain, expected):
    assert equity(hero, (), [villain], trials=20000, seed=1) == pytest.approx(expected, abs=0.015)


def test_wheel_beats_trips_on_the_river():
    board = ("3c", "4d", "5h", "7c", "Kd")
    assert equity(("Ah", "2c"), board, ["77"], trials=500) == 1.0  # A-2-3-4-5 straight vs a set of sevens
    assert equity(("7s", "7h"), board, ["A2o"], trials=500) == 0.0


def test_flush_against_flush_is_decided_by_the_kicker():
    assert equity(("Ah", "4h"), ("Kh", "9h", "5h", "2c", "3d"), ["QhJh"], trials=500) == 1.0
    # both play a five-heart board flush: the higher fifth heart (Q over J) wins
    assert equity(("Qh", "3c"), ("Ah", "Kh", "9h", "5h", "2h"), ["JhTd"], trials=500) == 1.0
    assert equity(("Jh", "3c"), ("Ah", "Kh", "9h", "5h", "2h"), ["QhTd"], trials=500) == 0.0


def test_equity_is_deterministic_under_a_seed():
    a = equity(("Td", "9d"), ("8d", "7c", "2h"), ["22+, A2s+, KTo+"], trials=1000, seed=5)
    assert a == equity(("Td", "9d"), ("8d", "7c", "2h"), ["22+, A2s+, KTo+"], trials=1000, seed=5)


# ----------------------------------------------------------------------------- decisions
def preflop_spot(position, hole, moves=(), call_total=1.0, pot=1.5, hero_in=0.0, limpers=0):
    hero_paid = round(hero_in * 10)
    valid = [{"action": "fold", "amount": 0}, {"action": "call", "amount": round(call_total * 10)},
             {"action": "raise", "amount": {"min": round(call_total * 20), "max": 1000}}]
    return Spot(spot_id="t", n_players=6, positions=SIX, position=position, hole=hole, board=(), street="preflop",
                moves=tuple(moves), pot=pot, start_stacks=(100.0,) * 6, stacks=(100.0,) * 6, active=SIX,
                hero_in=hero_in, call_total=call_total, raise_min=call_total * 2, raise_max=100.0,
                candidates=legal_candidates(valid, bb=10, hero_paid=hero_paid, pot=round(pot * 10), street="preflop", limpers=limpers))


def test_teacher_folds_72o_under_the_gun():
    assert TeacherPolicy().decide(preflop_spot("UTG", ("7c", "2d"))) == Action("fold")


@pytest.mark.parametrize("position", SIX)
def test_teacher_raises_aces_from_every_position(position):
    before = SIX[:SIX.index(position)]
    if position == "BB":  # folded to the BB is a walk, so give the BB a limper to raise
        moves = [Move("preflop", p, "fold") for p in before[:-1]] + [Move("preflop", "SB", "call")]
        spot = preflop_spot("BB", ("Ah", "Ad"), moves, pot=2.0, hero_in=1.0, limpers=1)
    else:
        hero_in = 0.5 if position == "SB" else 0.0
        spot = preflop_spot(position, ("Ah", "Ad"), [Move("preflop", p, "fold") for p in before], hero_in=hero_in)
    assert TeacherPolicy().decide(spot).verb == "raise"
    # and facing an open from the seat before, aces re-raise
    if position not in ("UTG",):
        opener = before[-1] if before else "UTG"
        facing = preflop_spot(position, ("Ah", "Ad"), [Move("preflop", opener, "raise", 2.5)], call_total=2.5, pot=4.0,
                              hero_in={"SB": 0.5, "BB": 1.0}.get(position, 0.0))
        assert TeacherPolicy().decide(facing).verb == "raise"


def river_spot(hole, bet, pot_before=20.0):
    """Heads-up river: BTN raised, BB (hero) called; BB checked flop/turn... villain now bets ``bet`` on the river."""
    moves = (Move("preflop", "BTN", "raise", 2.5), Move("preflop", "BB", "call"), Move("flop", "BB", "check"),
             Move("flop", "BTN", "check"), Move("turn", "BB", "check"), Move("turn", "BTN", "check"),
             Move("river", "BB", "check"), Move("river", "BTN", "bet", bet))
    valid = [{"action": "fold", "amount": 0}, {"action": "call", "amount": round(bet * 10)},
             {"action": "raise", "amount": {"min": round(bet * 20), "max": 900}}]
    pot = pot_before + bet
    return Spot(spot_id="r", n_players=6, positions=SIX, position="BB", hole=hole, board=("Kc", "8d", "4s", "Jh", "9c"),
                street="river", moves=moves, pot=pot, start_stacks=(100.0,) * 6, stacks=(100.0, 100.0, 100.0, 90.0 - bet, 99.5, 90.0),
                active=("BTN", "BB"), hero_in=0.0, call_total=bet, raise_min=2 * bet, raise_max=90.0,
                candidates=legal_candidates(valid, bb=10, hero_paid=0, pot=round(pot * 10), street="river"))


def test_teacher_calls_with_clear_pot_odds_and_folds_without_them():
    assert TeacherPolicy().decide(river_spot(("8h", "7h"), bet=1.0)) == Action("call")  # 1 to win 21: ~5% needed
    assert TeacherPolicy().decide(river_spot(("3c", "2d"), bet=20.0)) == Action("fold")  # 3-high vs a pot-sized bet


def test_teacher_labels_are_candidates_and_reproducible():
    spot = river_spot(("Kh", "Kd"), bet=5.0)  # top set: raise
    a, b = TeacherPolicy().decide(spot), TeacherPolicy().decide(spot)
    assert a == b and a in spot.candidates and a.verb == "raise"
