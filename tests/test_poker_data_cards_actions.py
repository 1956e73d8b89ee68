"""Cards, the action vocabulary, legal candidates and the engine mapping (incl. upstream bug #72)."""
import pytest

from toolkit.poker.actions import Action, fmt_bb, from_engine, legal_candidates, parse_action, to_engine
from toolkit.poker.cards import board_words, card_words, hand_class, hand_words, parse_card, parse_cards, to_engine as card_to_engine


def va(call, rmin, rmax):
    return [{"action": "fold", "amount": 0}, {"action": "call", "amount": call},
            {"action": "raise", "amount": {"min": rmin, "max": rmax}}]


# ----------------------------------------------------------------------------- cards
def test_card_spellings_agree():
    assert parse_card("SA") == parse_card("As") == "As"
    assert parse_card("HT") == "Th" and parse_card("C9") == "9c" and parse_card("d2") == "2d"
    assert card_to_engine("Th") == "HT"
    assert card_words("Kh") == "King of Heart" and card_words("Kh", board=True) == "King Of Heart"
    assert hand_words(["Kd", "Js"]) == "King of Diamond and Jack of Spade"
    assert board_words(["9s", "7s", "4c"]) == "Nine Of Spade, Seven Of Spade, and Four Of Club"
    assert hand_class(["7c", "2d"]) == "72o" and hand_class(["Ks", "As"]) == "AKs" and hand_class(["Qh", "Qc"]) == "QQ"


@pytest.mark.parametrize("bad", ["10h", "Ax", "", "AsK", "S1"])
def test_malformed_card_names_the_field(bad):
    with pytest.raises(ValueError, match=r"hole\[1\]"):
        parse_cards(["Kd", bad], "hole")


def test_duplicate_cards_rejected():
    with pytest.raises(ValueError, match="'As' appears twice"):
        parse_cards(["As", "SA"], "hole")


# ----------------------------------------------------------------------------- parser
@pytest.mark.parametrize("text,expected", [
    ("fold", Action("fold")), (" CHECK. ", Action("check")), ("Call!", Action("call")),
    ("raise 2.5", Action("raise", 2.5)), ("Raise   2.5bb", Action("raise", 2.5)), ("raise to 7", Action("raise", 7.0)),
    ("bet 6 chips", Action("bet", 6.0)), ("bet .5", Action("bet", 0.5)),
])
def test_parser_is_tolerant_of_form(text, expected):
    assert parse_action(text) == expected


@pytest.mark.parametrize("text", ["shove", "all in", "raise", "raise big", "call 3", "fold now", "bet -2", "", "bet 0"])
def test_parser_is_strict_about_words(text):
    with pytest.raises(ValueError, match=repr(text).replace("\\", "\\\\").replace("(", r"\(").replace(".", r"\.")):
        parse_action(text)


def test_formatting_is_compact_and_inverts():
    assert fmt_bb(2.5) == "2.5" and fmt_bb(6.0) == "6" and fmt_bb(99.73) == "99.73"
    for a in [Action("raise", 2.5), Action("bet", 6.0), Action("check"), Action("raise", 99.73)]:
        assert parse_action(str(a)) == a
    assert str(Action("bet", 6.0)) == "bet 6"


# ----------------------------------------------------------------------------- candidates
def test_unopened_preflop_candidates():
    # UTG, blinds 5/10: fold, call (limp), open to 2.5 bb, all-in 100 bb
    c = legal_candidates(va(10, 20, 1000), bb=10, hero_paid=0, pot=15, street="preflop")
    assert [str(a) for a in c] == ["fold", "call", "raise 2.5", "raise 100"]


def test_big_blind_option_is_check_not_fold():
    c = legal_candidates(va(10, 20, 1000), bb=10, hero_paid=10, pot=30, street="preflop", limpers=1)
    assert [str(a) for a in c] == ["check", "raise 3.5", "raise 100"]  # iso-raise 2.5 + 1 per limper


def test_postflop_bets_are_pot_fractions_and_raises_3x():
    c = legal_candidates(va(0, 10, 950), bb=10, hero_paid=0, pot=100, street="flop")
    assert [str(a) for a in c] == ["check", "bet 3.3", "bet 6.6", "bet 10", "bet 95"]
    c = legal_candidates(va(60, 120, 950), bb=10, hero_paid=0, pot=160, street="turn")
    assert [str(a) for a in c] == ["fold", "call", "raise 18", "raise 95"]


def test_sizes_clip_to_engine_range_and_dedupe():
    # short stack: every menu size is above the all-in, so only the all-in survives
    c = legal_candidates(va(0, 10, 40), bb=10, hero_paid=0, pot=100, street="river")
    assert [str(a) for a in c] == ["check", "bet 3.3", "bet 4"]


def test_bug_72_offers_no_raise():
    # engine says min = max = -1: hero cannot afford a full raise; calling (all-in) and folding remain
    c = legal_candidates(va(300, -1, -1), bb=10, hero_paid=0, pot=400, street="flop")
    assert [str(a) for a in c] == ["fold", "call"]
    with pytest.raises(ValueError, match="bug #72"):
        to_engine(Action("raise", 30), va(300, -1, -1), bb=10, hero_paid=0)


# ----------------------------------------------------------------------------- engine mapping
def test_engine_mapping_both_ways():
    v = va(0, 10, 950)
    assert to_engine(Action("check"), v, bb=10, hero_paid=0) == ("call", 0)
    assert to_engine(Action("bet", 6.6), v, bb=10, hero_paid=0) == ("raise", 66)
    assert from_engine("raise", 66, bb=10, call_total=0, hero_paid=0, street="flop") == Action("bet", 6.6)
    assert from_engine("call", 0, bb=10, call_total=0, hero_paid=0, street="flop") == Action("check")
    v = va(25, 40, 1000)
    assert to_engine(Action("call"), v, bb=10, hero_paid=10) == ("call", 25)  # call amount is a street total
    assert from_engine("raise", 75, bb=10, call_total=25, hero_paid=10, street="preflop") == Action("raise", 7.5)


def test_illegal_answers_say_why():
    with pytest.raises(ValueError, match="facing a bet"):
        to_engine(Action("check"), va(20, 40, 1000), bb=10, hero_paid=0)
    with pytest.raises(ValueError, match="between 4 and 100 bb"):
        to_engine(Action("raise", 3), va(20, 40, 1000), bb=10, hero_paid=0)
    with pytest.raises(ValueError, match="already bet"):
        to_engine(Action("bet", 9), va(20, 40, 1000), bb=10, hero_paid=0)
