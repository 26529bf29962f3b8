"""Exchanges and bindings, routing exactly as RabbitMQ routes.

- direct: a queue gets the message if one of its binding keys equals the routing key.
- fanout: every bound queue gets it; keys are ignored.
- topic: keys are words separated by "."; in a binding key ``*`` stands for exactly one word and ``#`` for zero
  or more words. As in RabbitMQ's ``split_topic_key``, the empty key has no words at all, while "a..b" has three
  (the middle one empty), so ``*`` matches an empty word but not the empty key, and ``#`` matches anything.

A queue bound several times to the same exchange still gets one copy; queues come out in binding order, so the
result never depends on hashing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("direct", "fanout", "topic")


def words(key: str) -> list[str]:
    return key.split(".") if key else []


def topic_matches(binding_key: str, routing_key: str) -> bool:
    """Does a topic binding key match a routing key?"""
    pattern, key = words(binding_key), words(routing_key)
    # reachable[j]: the pattern words seen so far can consume exactly the first j key words
    reachable = [True] + [False] * len(key)
    for word in pattern:
        if word == "#":
            for j in range(1, len(key) + 1):
                reachable[j] = reachable[j] or reachable[j - 1]
        else:
            for j in range(len(key), 0, -1):
                reachable[j] = reachable[j - 1] and (word == "*" or word == key[j - 1])
            reachable[0] = False
    return reachable[len(key)]


@dataclass(frozen=True)
class Binding:
    queue: str
    key: str


@dataclass
class Exchange:
    name: str
    kind: str
    bindings: list[Binding] = field(default_factory=list)
    # "Route memo": the queues found for each routing key until the bindings change (a run routes its few keys
    # once per publish, and matching walks every binding).
    _routes: dict[str, tuple[str, ...]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"exchange kind must be one of {', '.join(KINDS)}, not {self.kind!r}")

    def bind(self, queue: str, key: str) -> None:
        binding = Binding(queue, key)
        if binding not in self.bindings:
            self.bindings.append(binding)
            self._routes.clear()

    def unbind_queue(self, queue: str) -> None:
        self.bindings = [b for b in self.bindings if b.queue != queue]
        self._routes.clear()

    def route(self, routing_key: str) -> list[str]:
        """The queues a message with this routing key goes to, each once, in binding order."""
        routes = self._routes.get(routing_key)
        if routes is None:
            routes = self._routes[routing_key] = tuple(self._match(routing_key))
        return list(routes)

    def _match(self, routing_key: str) -> list[str]:
        out: list[str] = []
        for binding in self.bindings:
            if binding.queue not in out and self._matches(binding.key, routing_key):
                out.append(binding.queue)
        return out

    def _matches(self, binding_key: str, routing_key: str) -> bool:
        if self.kind == "fanout":
            return True
        if self.kind == "direct":
            return binding_key == routing_key
        return topic_matches(binding_key, routing_key)
