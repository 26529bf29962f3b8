"""Every load-balancing algorithm of the pattern, by the name the engine, links and presets use.

One module per family: `rotation` (round-robin, NGINX smooth weighted), `randomized` (random, weighted random),
`load_aware` (least connections, P2C least request, peak EWMA), `hashed` (ring, bounded loads, Maglev,
rendezvous); `base` holds what they share.
"""

from __future__ import annotations

from .base import Balancer, Flow, FlowEdge, FlowNode, Pick, ServerView, shown
from .hashed import BoundedLoad, HashingBalancer, Maglev, Rendezvous, RingHash
from .load_aware import LeastConnections, LeastRequest, PeakEwma
from .randomized import RandomChoice, WeightedRandom
from .rotation import RoundRobin, SmoothWeightedRoundRobin

ALGORITHMS: dict[str, type[Balancer]] = {
    cls.name: cls
    for cls in (
        RoundRobin,
        SmoothWeightedRoundRobin,
        RandomChoice,
        WeightedRandom,
        LeastConnections,
        LeastRequest,
        PeakEwma,
        RingHash,
        BoundedLoad,
        Maglev,
        Rendezvous,
    )
}
HASHING = frozenset(name for name, cls in ALGORITHMS.items() if cls.hashing)

__all__ = [
    "ALGORITHMS",
    "HASHING",
    "Balancer",
    "Flow",
    "FlowEdge",
    "FlowNode",
    "HashingBalancer",
    "Pick",
    "ServerView",
    "shown",
]
