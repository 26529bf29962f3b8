"""Single-server membership changes (dissertation, chapter 4), decided by the leader one step at a time.

A new server first joins as a learner (it receives the log but does not vote or count towards a majority); once
it has caught up with the leader's commit index a second configuration entry makes it a voter. A removal is one
entry. The leader starts a step only when its previous configuration entry is committed and it has committed an
entry of its own term (the fix for the single-server change bug found after the dissertation), so that two
configurations in flight can never have disjoint majorities.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the server imports nothing from here, but the engine imports both
    from .server import Server


def config_command(voters: tuple[str, ...], learners: tuple[str, ...]) -> dict[str, Any]:
    return {"op": "config", "voters": list(voters), "learners": list(learners)}


def next_step(leader: Server, requests: list[tuple[str, str]]) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The configuration the leader should propose next, or None; pops the requests it has dealt with."""
    if leader.commit_index < leader.term_start or leader.config_index > leader.commit_index:
        return None
    voters, learners = leader.voters, leader.learners
    for learner in learners:
        if leader.match_index.get(learner, 0) >= leader.commit_index:
            return _sorted((*voters, learner)), tuple(x for x in learners if x != learner)
    while requests:
        kind, server = requests.pop(0)
        if kind == "add" and server not in voters and server not in learners:
            return voters, _sorted((*learners, server))
        if kind == "remove" and server in learners:
            return voters, tuple(x for x in learners if x != server)
        if kind == "remove" and server in voters and len(voters) > 1:
            return tuple(x for x in voters if x != server), learners
    return None


def _sorted(ids: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(ids, key=server_number))


def server_number(server_id: str) -> int:
    return int(server_id[1:])
