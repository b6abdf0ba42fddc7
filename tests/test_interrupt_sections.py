"""interrupts.deferred: a signal inside a critical section is raised when it ends; a second one at once."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from cls_app.interrupts import Interrupted, deferred, handle_signals


def test_deferred_holds_the_first_signal_and_raises_a_second_at_once() -> None:
    done = []
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN under nohup and some CI runners
    with handle_signals():
        with pytest.raises(Interrupted) as info:
            with deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                done.append("finished the section")
        assert done == ["finished the section"] and info.value.exit_status == 143
        with pytest.raises(Interrupted) as info:
            with deferred():
                os.kill(os.getpid(), signal.SIGINT)  # held
                os.kill(os.getpid(), signal.SIGINT)  # raised here
                done.append("not reached")
        assert done == ["finished the section"] and info.value.message() == "interrupted by SIGINT"
    assert signal.getsignal(signal.SIGINT) is before  # restored to what it was


def test_a_section_in_another_thread_does_not_hold_the_main_threads_signal() -> None:
    errors: list[BaseException] = []
    entered, release = threading.Event(), threading.Event()

    def work() -> None:
        try:
            with deferred():
                entered.set()
                release.wait(10)
        except BaseException as exc:  # the Interrupted meant for the main thread, raised here
            errors.append(exc)

    with handle_signals():
        thread = threading.Thread(target=work)
        thread.start()
        assert entered.wait(10)
        try:
            with pytest.raises(Interrupted):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(2)  # the handler runs in the main thread, here
        finally:
            release.set()
            thread.join()
    assert errors == []
