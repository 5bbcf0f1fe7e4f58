"""Experiment runners (``gnnagg run NAME``); see ``gnnagg.cli.EXPERIMENTS``."""
