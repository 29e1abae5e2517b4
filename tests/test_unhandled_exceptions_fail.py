"""An exception no one handled, in a thread or in a finalizer, fails the test it happened
in, instead of a line in the warnings summary (tests/conftest.py marks the tests of the
folders checked so far: ``UNHANDLED_EXCEPTIONS_FAIL``, this one's among them).

Why: pytest reports a thread's unhandled exception (``threading.excepthook``) and one
raised where nothing can take it (a ``__del__``, a callback of the garbage collector) as
a warning, and a warning passes: a party's thread that died, a reader left blocked, a
socket closed twice, all went green. These tests check the setting is in force (each
fails where the warning is only recorded): the same filters make pytest's own report of
such an exception fail its test.
"""

from __future__ import annotations

import warnings

import pytest


def test_an_unhandled_exception_in_a_thread_is_an_error() -> None:
    with pytest.raises(pytest.PytestUnhandledThreadExceptionWarning):
        warnings.warn(
            pytest.PytestUnhandledThreadExceptionWarning("Exception in thread t"), stacklevel=1
        )


def test_an_exception_no_one_could_handle_is_an_error() -> None:
    with pytest.raises(pytest.PytestUnraisableExceptionWarning):
        warnings.warn(
            pytest.PytestUnraisableExceptionWarning("Exception ignored in: __del__"), stacklevel=1
        )
