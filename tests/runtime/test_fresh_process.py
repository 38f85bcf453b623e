"""in_fresh_process: the call runs in another, newly started interpreter and its result comes back."""

import os

import pytest

from qgan.runtime.fresh_process import in_fresh_process

# changed by a test in this process; a fresh interpreter imports this module anew
STATE = {"changed_here": False}


def state_and_process() -> tuple:
    return STATE["changed_here"], os.getpid()


def environment_value(name: str):
    return os.environ.get(name)


def test_the_call_runs_in_a_new_interpreter_that_shares_nothing_with_this_one(monkeypatch):
    monkeypatch.setitem(STATE, "changed_here", True)
    changed_there, child = in_fresh_process(state_and_process)
    assert child != os.getpid()
    # spawned, not forked: the change made here is not there
    assert changed_there is False


def test_arguments_go_in_and_the_result_comes_back():
    assert in_fresh_process(divmod, 17, 5) == (3, 2)


def test_tensorflow_logging_is_quiet_there_unless_set(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert in_fresh_process(environment_value, "TF_CPP_MIN_LOG_LEVEL") == "2"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    assert in_fresh_process(environment_value, "TF_CPP_MIN_LOG_LEVEL") == "0"


def test_an_exception_in_the_call_is_raised_here():
    with pytest.raises(ValueError, match="invalid literal for int"):
        in_fresh_process(int, "eight")
