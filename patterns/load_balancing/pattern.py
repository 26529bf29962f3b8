"""Load balancing as the kernel sees it: parameters, commands, events, diagrams and presets."""

from __future__ import annotations

from patterns.core.registry import Diagram, NodeActions, Pattern

from . import diagrams
from .engine import LoadBalancingEngine
from .events import EVENT_TYPES
from .params import COMMANDS, PARAMS, conflicts
from .presets import PRESETS

NODE_ACTIONS = (
    NodeActions(
        "server",
        "Server",
        r"l[0-9]+_(s[0-9]{1,3})",  # diagrams.topology: the server's node in one lane
        ("slow_server", "fail_server", "recover_server", "set_weight", "remove_server"),
        arg="server",
    ),
    NodeActions("traffic", "Traffic", r"clients|b[0-9]+", ("set_rate", "burst", "hot_key", "add_server")),
)


def targets(engine: LoadBalancingEngine) -> dict[str, tuple[str, ...]]:
    """The servers in the lanes now (a removed one is gone)."""
    return {"server": tuple(spec.id for spec in engine.present)}


PATTERN = Pattern(
    slug="load-balancing",
    title="Load balancing",
    summary=(
        "A load balancer spreads requests over servers. How it chooses decides how long requests wait, how many "
        "are dropped and which server a user's key lands on. Race up to four algorithms on the very same seeded "
        "traffic, side by side: round-robin, least connections, power of two choices, peak EWMA, and the hashing "
        "schemes. Slow, fail, add or remove a server and watch each one cope, eject, panic or move keys."
    ),
    engine=LoadBalancingEngine,
    params=PARAMS,
    commands=COMMANDS,
    event_types=EVENT_TYPES,
    diagrams=(
        Diagram("topology", "Clients, balancers and servers", diagrams.topology, wide=True),
        Diagram("flow", "Decision flow of each lane", diagrams.flow, wide=True),
        Diagram("ring", "Hash rings and key shares", diagrams.ring),
        Diagram("load", "Load per server over time", diagrams.load),
    ),
    metrics=diagrams.metrics,
    presets=PRESETS,
    explain_template="load_balancing/explain.html",
    order=30,
    conflicts=conflicts,
    targets=targets,
    node_actions=NODE_ACTIONS,
    focus=("topology",),
    routine=("lb.arrive", "lb.route", "lb.queue", "lb.complete"),
)
