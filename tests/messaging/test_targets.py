"""Commands name consumers that exist: a live one naming any other is refused and never enters the script, a link
naming one the run never has is refused, and a scripted command on a consumer gone by then is ignored with an
event saying why."""

from __future__ import annotations

import re

import pytest

from patterns.core.player import Player
from patterns.core.scenario import ScenarioError, decode
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


@pytest.mark.parametrize(
    ("pairs", "problem"),
    [
        ([("consumers", "2"), ("do", "1:crash_consumer:consumer=W5")], "do 1: crash_consumer names consumer W5"),
        ([("view", "pubsub"), ("do", "1:slow_consumer:consumer=W1")], "by then it has S1, S2, S3"),
        ([("do", "1:add_consumer"), ("do", "0.5:cut_consumer:consumer=W4")], "by then it has W1, W2, W3)"),
    ],
)
def test_a_link_naming_a_consumer_the_run_never_has_is_refused(pairs: list, problem: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(problem)):
        decode(PATTERN, pairs)
    decode(PATTERN, [("do", "1:add_consumer"), ("do", "2:cut_consumer:consumer=W4")])  # W4 was added by then


def test_a_scripted_command_on_a_consumer_gone_by_then_is_ignored_with_a_reason() -> None:
    run = player(("consumers", "2"), ("do", "1:remove_consumer:consumer=W2"), ("do", "3:crash_consumer:consumer=W2"))
    run.advance_to(4.0)
    (ignored,) = of_type([e.as_dict() for e in run.drain()], "command.ignored")
    assert (ignored["command"], ignored["reason"]) == ("crash_consumer", "there is no consumer W2 here")
