"""A command naming a node that is not there now is refused with a message naming the node and what there is, in
every pattern, and never enters the script; one naming a node that is there is applied and recorded. The check is
the kernel's (`Pattern.check_targets`, from the commands' `Param.target` and the pattern's `targets`). A scripted
step runs at its time whatever is there: the engine ignores it, with a reason."""

from __future__ import annotations

import pytest

from patterns.core.player import Player
from patterns.core.registry import get_pattern
from patterns.core.scenario import ScenarioError, decode, decode_query, parse_command

from .toy import LIMITS

# pattern, its parameters, a refused command and its arguments, the message, the arguments that are accepted
REFUSED = [
    ("raft", [("servers", "5")], "crash", {"server": "s9"}, "no server s9 now (there are: s1, s2, s3, s4, s5)", "s2"),
    ("raft", [("servers", "3")], "cut", {"a": "s1", "b": "s7"}, "no node s7 now (there are: s1, s2, s3, c1)", "c1"),
    ("raft", [("servers", "3")], "partition", {"groups": "s1.s4|s2"}, "no node s4 now", "s1.c1|s2"),
    ("circuit-breaker", [], "outage_on", {"service": "A"}, "no service A now (there are: downstream)", "downstream"),
    ("circuit-breaker", [], "force_open", {"breaker": "C"}, "no breaker C now (there are: all, downstream)", "all"),
    ("load-balancing", [("servers", "3")], "slow_server", {"server": "s4"}, "no server s4 now", "s3"),
    ("messaging", [("consumers", "2")], "crash_consumer", {"consumer": "W3"}, "(there are: W1, W2)", "W2"),
    ("messaging", [("view", "pubsub")], "cut_consumer", {"consumer": "W1"}, "no consumer link W1 now", "S1"),
]


@pytest.mark.parametrize(
    ("slug", "params", "command", "args", "message", "present"), REFUSED, ids=[f"{c[0]}-{c[2]}" for c in REFUSED]
)
def test_a_live_command_on_a_node_that_is_not_there_is_refused_and_not_scripted(
    slug: str, params: list, command: str, args: dict, message: str, present: str
) -> None:
    pattern = get_pattern(slug)
    player = Player(pattern, decode(pattern, params), LIMITS)
    player.advance_to(1.0)
    player.drain()
    with pytest.raises(ValueError, match=f"^{command}: there is ") as refused:
        player.act(*parse_command(pattern, command, args))
    assert message in str(refused.value)
    assert player.scenario.script == () and not [e for e in player.drain() if e.type == "command"]
    named = {**args, next(reversed(args)): present}  # the same command on a node that is there
    player.act(*parse_command(pattern, command, named))
    assert [(a.command, a.args) for a in player.scenario.script] == [parse_command(pattern, command, named)]


def test_a_scripted_step_on_a_node_gone_by_its_time_runs_and_is_ignored_with_a_reason() -> None:
    """A link or a CLI --do is a scenario that replays the same for everyone: its steps are not judged live."""
    pattern = get_pattern("raft")
    link = [("servers", "5"), ("do", "1:remove_server:server=s5"), ("do", "5:crash:server=s5")]
    player = Player(pattern, decode(pattern, link), LIMITS)
    player.advance_to(6.0)
    (ignored,) = [e.fields for e in player.drain() if e.type == "command.ignored"]
    assert ignored == {"command": "crash", "reason": "there is no server s5 (servers: s1, s2, s3, s4)"}


# pattern, a link's parameters, its steps, what its refusal says; and parameters with which the run has the node
NEVER_THERE = [
    ("raft", "servers=5", "do=1:crash:server=s9", "crash names server s9, which this run does not have", "servers=9"),
    ("raft", "servers=3", "do=2:add_server&do=1:crash:server=s4", "by then it has s1, s2, s3", "servers=4"),
    ("circuit-breaker", "topology=single", "do=1:outage_on:service=B", "only the chain topology has", "topology=chain"),
    (
        "circuit-breaker",
        "topology=single",
        "do=1:force_open:breaker=C",
        "only the chain topology has",
        "topology=chain",
    ),
    ("load-balancing", "servers=3", "do=1:fail_server:server=s4", "names server s4", "servers=4"),
    ("messaging", "consumers=2", "do=1:crash_consumer:consumer=W3", "names consumer W3", "consumers=3"),
]


@pytest.mark.parametrize(
    ("slug", "params", "steps", "message", "fix"), NEVER_THERE, ids=[f"{c[0]}-{c[2]}" for c in NEVER_THERE]
)
def test_a_link_naming_a_node_its_run_never_has_is_refused_with_a_message(
    slug: str, params: str, steps: str, message: str, fix: str
) -> None:
    pattern = get_pattern(slug)
    with pytest.raises(ScenarioError) as refused:
        decode_query(pattern, f"{params}&{steps}", limits=LIMITS)
    assert message in str(refused.value)
    assert decode_query(pattern, f"{fix}&{steps}", limits=LIMITS).script  # the same steps where the node exists
