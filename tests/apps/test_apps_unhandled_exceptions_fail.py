"""tests/apps is checked like every other test folder (tests/conftest.py's
``UNHANDLED_EXCEPTIONS_FAIL``): an exception no one handled, in a simulation's thread or
in a finalizer, fails the test it happened in instead of passing as a line in the
warnings summary. Each test fails where the warning is only recorded."""

from __future__ import annotations

import warnings

import pytest


def test_an_unhandled_exception_in_an_apps_thread_is_an_error() -> None:
    with pytest.raises(pytest.PytestUnhandledThreadExceptionWarning):
        warnings.warn(
            pytest.PytestUnhandledThreadExceptionWarning("Exception in thread branch-01"),
            stacklevel=1,
        )


def test_an_exception_no_one_could_handle_in_apps_is_an_error() -> None:
    with pytest.raises(pytest.PytestUnraisableExceptionWarning):
        warnings.warn(
            pytest.PytestUnraisableExceptionWarning("Exception ignored in: __del__"),
            stacklevel=1,
        )
