"""The Raft pattern as the kernel sees it: parameters, commands, events, diagrams and presets."""

from __future__ import annotations

from patterns.core.registry import NodeActions, Pattern

from .diagrams import DIAGRAMS, metrics
from .engine import RaftEngine
from .events import EVENT_TYPES
from .params import COMMANDS, PARAMS, conflicts
from .presets import PRESETS

NODE_ACTIONS = (
    NodeActions(
        "server",
        "Server",
        r"(s[0-9]{1,2})",
        ("crash", "restart", "timeout", "remove_server"),
        arg="server",
    ),
    # the same node, for the commands whose argument is not called "server"
    NodeActions("server", "Isolate", r"(s[0-9]{1,2})", ("partition",), arg="groups", value="{name}|{others}"),
    NodeActions("server", "Cut a link", r"(s[0-9]{1,2})", ("cut",), arg="a"),
    NodeActions("server", "Client request", r"(s[0-9]{1,2})", ("client_request",)),
)


def targets(engine) -> dict[str, tuple[str, ...]]:
    """The servers that exist now, crashed or not (a crashed server can still be restarted), and the nodes a link
    or a partition may name: those servers and the clients."""
    return {"server": tuple(engine.servers), "node": (*engine.servers, *engine.clients)}


PATTERN = Pattern(
    slug="raft",
    title="Raft consensus",
    summary=(
        "Raft keeps a replicated log identical on a majority of servers: a leader elected by majority vote "
        "appends clients' commands to its log, replicates them with AppendEntries and commits an entry once a "
        "majority holds it; every server applies committed entries in order to its key-value store. Crash "
        "servers, partition the network, drop messages, change the membership, or break one of Raft's rules, "
        "and watch the safety checker judge every event."
    ),
    engine=RaftEngine,
    params=PARAMS,
    commands=COMMANDS,
    conflicts=conflicts,
    event_types=EVENT_TYPES,
    diagrams=DIAGRAMS,
    metrics=metrics,
    presets=PRESETS,
    explain_template="raft/explain.html",
    order=20,
    targets=targets,
    node_actions=NODE_ACTIONS,
    focus=("cluster", "logs"),
    routine=("raft.rpc", "net.send", "net.deliver"),
)
