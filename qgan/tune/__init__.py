"""Optuna studies of training flags: search space, one process per run, shared storage, reports."""
