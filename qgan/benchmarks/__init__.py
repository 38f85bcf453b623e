"""Timing the engines and the guard side by side, as a run of scripts/benchmark.py."""
