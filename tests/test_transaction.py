"""ipyexecmod.cells.transaction and .locks on their own: undo steps, nesting, waiting."""

from __future__ import annotations

import signal
import sys
import threading

import pytest

from ipyexecmod.cells import locks
from ipyexecmod.cells.transaction import Transaction, interrupts_held


def test_undo_steps_run_newest_first_and_only_on_failure():
    calls: list[str] = []
    stack: list[Transaction] = []
    with Transaction(stack) as steps:
        steps.undo(calls.append, "first")
        steps.after(calls.append, "after")
    assert calls == ["after"] and stack == []
    calls.clear()
    with pytest.raises(KeyError), Transaction(stack) as steps:
        steps.undo(calls.append, "first")
        steps.undo(calls.append, "second")
        steps.after(calls.append, "never")
        raise KeyError("boom")
    assert calls == ["second", "first"] and stack == []


def test_an_undo_step_that_fails_shows_its_name():
    def put_back_something() -> None:
        raise RuntimeError("undo failed")

    with pytest.raises(RuntimeError) as info, Transaction([]) as steps:
        steps.undo(put_back_something)
        raise ValueError("the definition failed")
    assert any(entry.name == "put_back_something" for entry in info.traceback)
    assert isinstance(info.value.__context__, ValueError)


def test_a_nested_transaction_joins_the_outer_one():
    calls: list[str] = []
    stack: list[Transaction] = []
    with pytest.raises(ZeroDivisionError), Transaction(stack) as outer:
        outer.undo(calls.append, "outer")
        with Transaction(stack) as inner:
            assert inner.lock is outer.lock and not inner.outermost
            inner.undo(calls.append, "inner")
            inner.after(calls.append, "inner after")
        assert calls == []  # the inner one committed into the outer one
        1 / 0
    assert calls == ["inner", "outer"]


def test_a_nested_failure_undoes_its_own_steps_and_the_outer_may_go_on():
    calls: list[str] = []
    stack: list[Transaction] = []
    with Transaction(stack) as outer:
        outer.after(calls.append, "outer after")
        with pytest.raises(KeyError), Transaction(stack) as inner:
            inner.undo(calls.append, "inner undone")
            inner.after(calls.append, "inner after, never")
            raise KeyError
    assert calls == ["inner undone", "outer after"]


def test_a_failed_transaction_puts_sys_path_and_meta_path_back():
    path, meta_path = sys.path, sys.meta_path
    before = list(sys.path), list(sys.meta_path)
    with pytest.raises(RuntimeError), Transaction([]):
        sys.path = ["elsewhere"]
        meta_path.clear()
        path.append("junk")
        raise RuntimeError
    assert sys.path is path and sys.meta_path is meta_path
    assert (sys.path, sys.meta_path) == before


def test_claimed_names_make_other_threads_wait_until_the_end():
    stack: list[Transaction] = []
    seen: list[bool] = []
    with Transaction(stack) as steps:
        steps.claim("_tx_claimed")
        assert locks.in_progress["_tx_claimed"] is steps.lock
        spec = locks.CellSpec("_tx_claimed", None)
        assert spec._initializing  # the defining thread: a circular import
        waiter = threading.Thread(target=lambda: seen.append(spec._initializing))
        waiter.start()
        assert seen == []
    waiter.join()
    assert seen == [False] and "_tx_claimed" not in locks.in_progress


def test_ctrl_c_during_an_undo_is_delivered_after_it():
    order: list[str] = []

    def handler(signum, frame):
        order.append("interrupt")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        with interrupts_held():
            signal.raise_signal(signal.SIGINT)
            order.append("undo finished")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert order == ["undo finished", "interrupt"]


def test_every_undo_step_runs_and_the_names_are_released_when_one_fails():
    calls: list[str] = []

    def fails() -> None:
        raise RuntimeError("this undo failed")

    stack: list[Transaction] = []
    with pytest.raises(RuntimeError, match="this undo failed"), Transaction(stack) as steps:
        steps.claim("_tx_undo_fails")
        steps.undo(calls.append, "first")
        steps.undo(fails)
        steps.undo(calls.append, "last")
        raise ValueError
    assert calls == ["last", "first"]
    assert "_tx_undo_fails" not in locks.in_progress and stack == []


def test_ctrl_c_during_a_rollback_still_releases_the_names(request):
    interrupted: list[bool] = []

    def ctrl_c() -> None:
        signal.raise_signal(signal.SIGINT)  # as a user's Ctrl-C arriving during the undo

    # Python's own handler, whatever an earlier test (a shell, a kernel) left installed.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    with pytest.raises(KeyboardInterrupt):
        try:
            with Transaction([]) as steps:
                steps.claim("_tx_ctrl_c")
                steps.undo(ctrl_c)
                raise ValueError
        except ValueError:
            interrupted.append(False)
    assert interrupted == []  # the interrupt came after the ValueError was raised
    assert "_tx_ctrl_c" not in locks.in_progress
    seen: list[bool] = []
    spec = locks.CellSpec("_tx_ctrl_c", None)
    waiter = threading.Thread(target=lambda: seen.append(spec._initializing))
    waiter.start()
    waiter.join(timeout=600)
    assert seen == [False]


def test_every_later_step_runs_when_one_fails():
    calls: list[str] = []

    def fails() -> None:
        raise KeyboardInterrupt  # a Ctrl-C while the copy on disk is written

    with pytest.raises(KeyboardInterrupt), Transaction([]) as steps:
        steps.after(fails)
        steps.after(calls.append, "listeners told")
    assert calls == ["listeners told"]
