"""Commands name consumers that exist now: a live one naming any other is refused and never enters the script; a
scripted one (from a link) is ignored with an event saying why."""

from __future__ import annotations

import pytest

from patterns.core.player import Player
from patterns.core.scenario import decode
from patterns.messaging.pattern import PATTERN

from ..core.toy import LIMITS
from .test_ledger import of_type


def player(*pairs: tuple[str, str]) -> Player:
    return Player(PATTERN, decode(PATTERN, list(pairs)), LIMITS)


@pytest.mark.parametrize(
    ("view", "absent", "present"),
    [("work_queue", "W4", "W3"), ("work_queue", "S1", "W1"), ("pubsub", "W1", "S3"), ("request_reply", "S2", "W2")],
)
def test_a_live_command_on_a_consumer_that_is_not_there_is_refused(view: str, absent: str, present: str) -> None:
    run = player(("view", view), ("consumers", "3"))
    run.advance_to(1.0)
    with pytest.raises(ValueError, match=f"crash_consumer: there is no consumer {absent} now"):
        run.act("crash_consumer", (("consumer", absent),))
    assert run.scenario.script == () and not of_type([e.as_dict() for e in run.drain()], "command")
    run.act("crash_consumer", (("consumer", present),))
    assert [a.command for a in run.scenario.script] == ["crash_consumer"]


def test_a_removed_consumer_can_no_longer_be_crashed_but_its_link_can_still_be_restored() -> None:
    run = player(("consumers", "2"))
    run.advance_to(1.0)
    run.act("cut_consumer", (("consumer", "W2"),))
    run.act("remove_consumer", (("consumer", "W2"),))
    run.advance_to(3.0)  # W2 had nothing to finish: it has left
    with pytest.raises(ValueError, match="there is no consumer W2 now"):
        run.act("crash_consumer", (("consumer", "W2"),))
    run.act("restore_consumer", (("consumer", "W2"),))
    run.act("add_consumer", ())  # W3 joins
    run.act("crash_consumer", (("consumer", "W3"),))
    assert [a.command for a in run.scenario.script] == [
        "cut_consumer",
        "remove_consumer",
        "restore_consumer",
        "add_consumer",
        "crash_consumer",
    ]


def test_a_scripted_command_on_an_absent_consumer_is_ignored_with_a_reason() -> None:
    run = player(("consumers", "2"), ("do", "1:crash_consumer:consumer=W5"))
    run.advance_to(2.0)
    (ignored,) = of_type([e.as_dict() for e in run.drain()], "ignored")
    assert (ignored["command"], ignored["reason"]) == ("crash_consumer", "there is no consumer W5 here")
