"""Routing rules of each exchange type, topic wildcards included, checked against RabbitMQ's documented rules and
against a brute-force reference for topic patterns."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patterns.messaging.exchanges import Exchange, topic_matches, words


@pytest.mark.parametrize(
    ("binding", "key", "expected"),
    [
        # the examples of RabbitMQ's tutorial 5
        ("*.orange.*", "quick.orange.rabbit", True),
        ("*.*.rabbit", "quick.orange.rabbit", True),
        ("lazy.#", "lazy.orange.elephant", True),
        ("*.orange.*", "quick.orange.fox", True),
        ("lazy.#", "lazy.brown.fox", True),
        ("*.*.rabbit", "lazy.pink.rabbit", True),
        ("lazy.#", "lazy.pink.rabbit", True),
        ("*.orange.*", "quick.brown.fox", False),
        ("*.orange.*", "orange", False),
        ("*.orange.*", "quick.orange.new.rabbit", False),
        ("lazy.#", "lazy.orange.new.rabbit", True),
        ("lazy.#", "lazy", True),
        # "#" alone matches everything, the empty key included
        ("#", "", True),
        ("#", "a", True),
        ("#", "a.b.c", True),
        ("#", "a..b", True),
        # "a.#.b": zero or more words between a and b
        ("a.#.b", "a.b", True),
        ("a.#.b", "a.x.b", True),
        ("a.#.b", "a.x.y.z.b", True),
        ("a.#.b", "a.b.c", False),
        ("a.#.b", "x.a.b", False),
        ("a.#.b", "a", False),
        # "*" is exactly one word, and an empty word is a word; the empty key has no words
        ("*", "", False),
        ("*", "a", True),
        ("*", "a.b", False),
        ("a.*", "a.", True),
        ("*.b", ".b", True),
        ("a.*.b", "a..b", True),
        ("a.b", "a..b", False),
        ("", "", True),
        ("", "a", False),
        ("#.#", "", True),
        ("#.*", "", False),
        ("#.*", "a.b", True),
        ("*.#", "a", True),
        ("#.a.#", "a", True),
        ("#.a.#", "b.a.c", True),
        ("#.a.#", "b.c", False),
        # words are compared whole
        ("order.*", "orders.created", False),
        ("order.created", "order.created", True),
    ],
)
def test_topic_rules(binding: str, key: str, expected: bool) -> None:
    assert topic_matches(binding, key) is expected


def test_words_follow_rabbitmq_split() -> None:
    assert words("") == []
    assert words("a") == ["a"]
    assert words("a..b") == ["a", "", "b"]
    assert words(".") == ["", ""]


def reference_match(pattern: list[str], key: list[str]) -> bool:
    """Plain recursion over the definition, the way RabbitMQ's docs state it."""
    if not pattern:
        return not key
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(reference_match(rest, key[i:]) for i in range(len(key) + 1))
    return bool(key) and head in ("*", key[0]) and reference_match(rest, key[1:])


WORD = st.sampled_from(["a", "b", "", "ab"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(WORD, st.sampled_from(["*", "#"])), max_size=5),
    st.lists(WORD, max_size=6),
)
def test_topic_matches_the_definition(pattern: list[str], key: list[str]) -> None:
    binding, routing_key = ".".join(pattern), ".".join(key)
    assert topic_matches(binding, routing_key) is reference_match(words(binding), words(routing_key))


def test_exhaustive_small_topic_space() -> None:
    """Every pattern of up to three tokens against every key of up to three words over a tiny alphabet."""
    tokens = ["a", "b", "*", "#"]
    keys = [".".join(k) for n in range(4) for k in itertools.product(["a", "b"], repeat=n)]
    for n in range(4):
        for pattern in itertools.product(tokens, repeat=n):
            binding = ".".join(pattern)
            for key in keys:
                assert topic_matches(binding, key) is reference_match(words(binding), words(key)), (binding, key)


def test_direct_exchange_matches_whole_keys_only() -> None:
    exchange = Exchange("x", "direct")
    exchange.bind("q1", "black")
    exchange.bind("q2", "green")
    exchange.bind("q3", "black")
    exchange.bind("q4", "#")
    assert exchange.route("black") == ["q1", "q3"]
    assert exchange.route("green") == ["q2"]
    assert exchange.route("orange") == []
    assert exchange.route("#") == ["q4"]  # no wildcards in a direct exchange


def test_fanout_ignores_keys() -> None:
    exchange = Exchange("x", "fanout")
    exchange.bind("q1", "anything")
    exchange.bind("q2", "")
    assert exchange.route("whatever") == ["q1", "q2"]
    assert exchange.route("") == ["q1", "q2"]


def test_one_copy_per_queue_in_binding_order() -> None:
    exchange = Exchange("x", "topic")
    exchange.bind("q2", "order.*")
    exchange.bind("q1", "#")
    exchange.bind("q2", "*.created")
    exchange.bind("q1", "#")  # a duplicate binding is one binding
    assert len(exchange.bindings) == 3
    assert exchange.route("order.created") == ["q2", "q1"]
    assert exchange.route("user.deleted") == ["q1"]
    exchange.unbind_queue("q1")
    assert exchange.route("user.deleted") == []


def test_unknown_exchange_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="headers"):
        Exchange("x", "headers")


def test_routes_follow_binding_changes() -> None:
    """The exchange remembers each key's queues: a bind or an unbind after a key was routed changes its route."""
    exchange = Exchange("events", "topic")
    exchange.bind("a", "orders.*")
    assert exchange.route("orders.eu") == ["a"]
    exchange.bind("b", "#")
    assert exchange.route("orders.eu") == ["a", "b"]
    exchange.unbind_queue("a")
    assert exchange.route("orders.eu") == ["b"]
    routed = exchange.route("orders.eu")
    routed.append("c")  # a caller's list is its own
    assert exchange.route("orders.eu") == ["b"]
