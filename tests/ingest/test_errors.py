from __future__ import annotations

from citekb.ingest.errors import reason


def test_reason_is_the_last_line_of_a_message_that_holds_a_traceback() -> None:
    exc = RuntimeError('Traceback (most recent call last):\n  File "x.py", line 1, in f\n    run()\nValueError: bad input\n')
    assert reason(exc) == "ValueError: bad input"


def test_reason_of_an_empty_message_is_the_type_and_long_ones_are_cut() -> None:
    assert reason(KeyError()) == "KeyError"
    assert reason(ValueError("x" * 500), limit=10) == "x" * 10
