"""Poker as the worked task: cards, PokerBench-style prompts, a teacher, spot data and a PyPokerEngine arena."""
