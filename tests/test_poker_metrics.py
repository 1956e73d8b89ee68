"""bb/100 confidence intervals, p-values and style numbers on data whose answer is known; plots render."""
import json
import math

import numpy as np
import pytest

from toolkit.poker import metrics, plots
from toolkit.poker.arena import HandRecord, MatchResult
from toolkit.poker.metrics import mean_ci, t_p_value, t_quantile


@pytest.mark.parametrize("df, t", [(1, 12.706204736), (3, 3.182446305), (10, 2.228138852), (30, 2.042272456), (10**6, 1.959966)])
def test_t_quantile_matches_tables(df, t):
    assert t_quantile(0.95, df) == pytest.approx(t, abs=1e-6)
    assert t_p_value(t, df) == pytest.approx(0.05, abs=1e-7)


def test_ci_on_a_hand_computed_example():
    est = mean_ci([1, 2, 3, 4])
    sd = math.sqrt(((1.5**2) * 2 + (0.5**2) * 2) / 3)  # sample sd of 1..4 = 1.2910
    assert est.value == 2.5
    assert est.half_width == pytest.approx(3.182446305 * sd / 2)
    assert (est.low, est.high) == pytest.approx((2.5 - est.half_width, 2.5 + est.half_width))
    assert est.p_value == pytest.approx(0.030466, abs=1e-6)  # t = 2.5 / 0.6455 = 3.873 on 3 df


def test_ci_covers_a_known_mean_95_percent_of_the_time_and_p_values_are_calibrated():
    rng = np.random.default_rng(0)
    mu, n, trials = 1.3, 8, 4000  # small n: a normal (z) interval would cover only ~92%
    covered = rejected_true = rejected_null = 0
    for _ in range(trials):
        x = rng.normal(mu, 2.0, n)
        est = mean_ci(x)
        covered += est.low <= mu <= est.high
        rejected_null += mean_ci(x - mu).p_value < 0.05  # the null is true for x - mu
    assert covered / trials == pytest.approx(0.95, abs=0.012)
    assert rejected_null / trials == pytest.approx(0.05, abs=0.012)


def hand(deal, rotation, seats, deltas, actions, seconds=0.01):
    return HandRecord(deal, 100 + deal, rotation, seats, [["SA", "SK"], ["D2", "H3"]], [], dict(zip(seats, deltas)),
                      {s: {st: list(actions.get(s, {}).get(st, [])) for st in ("preflop", "flop", "turn", "river")} for s in seats},
                      dict.fromkeys(seats, seconds), dict.fromkeys(seats, 0))


def toy_match():
    # Two deals, each played from both seats. hero: +3, -1 in deal 0 (mean +1); +2, +2 in deal 1 (mean +2).
    hero_actions = {"preflop": ["raise 3"], "flop": ["raise 2", "call 6"], "turn": ["check"]}
    return MatchResult(["hero", "villain"], ["SB", "BB"], {}, [
        hand(0, 0, ["hero", "villain"], [3, -3], {"hero": hero_actions, "villain": {"preflop": ["call 3"]}}),
        hand(0, 1, ["villain", "hero"], [1, -1], {"hero": {"preflop": ["check"]}, "villain": {"preflop": ["call 1"]}}),
        hand(1, 0, ["hero", "villain"], [2, -2], {"hero": {"preflop": ["fold"]}}),
        hand(1, 1, ["villain", "hero"], [-2, 2], {"hero": {"preflop": ["illegal raise 0"]}, "villain": {"preflop": ["fold"]}}),
    ])


def test_bb_per_100_uses_per_deal_duplicate_means_as_units():
    match = toy_match()
    assert list(metrics.deal_units(match, "hero")) == [1.0, 2.0]
    est = metrics.bb_per_100(match, "hero")
    assert est.n == 2 and est.value == 150.0
    assert est.half_width == pytest.approx(12.706204736 * 100 * (math.sqrt(0.5) / math.sqrt(2)))
    assert metrics.bb_per_100(match, "villain").value == -150.0
    seats = metrics.bb_per_100_by_seat(match, "hero")
    assert seats["SB"].value == 250.0 and seats["BB"].value == 50.0 and seats["SB"].unit == "hand"
    assert metrics.by_opponent([match], "hero")["villain"].value == 150.0


def test_style_numbers_on_a_known_log():
    stats = metrics.style(toy_match(), "hero")
    assert stats["hands"] == 4 and stats["decisions"] == 7
    assert stats["vpip"] == 0.25 and stats["pfr"] == 0.25  # only deal 0 / rotation 0 puts money in voluntarily
    assert stats["af"] == 1.0  # one postflop raise, one postflop call
    assert stats["action_share"] == {"fold": 1 / 7, "check": 2 / 7, "call": 1 / 7, "raise": 2 / 7, "illegal": 1 / 7}
    assert stats["illegal"] == 1
    assert stats["decisions_per_second"] == pytest.approx(7 / 0.04)
    summary = metrics.summarize(toy_match())
    assert json.loads(json.dumps(summary))["players"]["hero"]["bb100"]["value"] == 150.0


def test_single_deal_has_no_interval_and_missing_player_is_named():
    match = toy_match()
    match.hands = match.hands[:2]
    assert metrics.bb_per_100(match, "hero").half_width is None
    with pytest.raises(ValueError, match="'nobody' is not in this match"):
        metrics.bb_per_100(match, "nobody")


def test_plots_render_to_png(tmp_path):
    match = toy_match()
    summary = metrics.summarize(match)
    est = metrics.by_opponent([match], "hero")
    figures = {
        "cumulative": plots.cumulative(match, "hero", path=tmp_path / "cumulative.png"),
        "bars": plots.bb100_bars(est, path=tmp_path / "bars.png"),
        "mix": plots.action_mix(summary, path=tmp_path / "mix.png"),
        "compare": plots.compare(est, {"villain": metrics.bb_per_100(match, "villain")}, path=tmp_path / "compare.png"),
    }
    for name, fig in figures.items():
        png = (tmp_path / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000, name
        assert fig.axes[0].get_title() and fig.axes[0].get_ylabel(), name
