"""Targets, mode coverage, fidelity and plots, in NumPy and matplotlib only."""
