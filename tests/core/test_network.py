"""The shared network model: determinism, faults, perturbations and the events it emits."""

import json
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patterns.core.network import DROP_REASONS, EVENT_TYPES, LINK_STATES, LatencyModel, Message, Network
from patterns.core.registry import EventType
from patterns.core.sim import Simulation

from ..support import outputs_under_hash_seeds

NODES = ["a", "b", "c", "d", "e"]


class Inbox:
    """Records deliveries; a module-level class so that its bound method pickles with the simulation."""

    def __init__(self, sim: Simulation):
        self.sim = sim
        self.got: list[tuple[float, int, str, str, object, bool]] = []

    def receive(self, message: Message) -> None:
        assert self.sim.now == message.deliver_at
        self.got.append((self.sim.now, message.id, message.src, message.dst, message.payload, message.duplicate))

    def ids(self) -> list[int]:
        return [entry[1] for entry in self.got]

    def payloads(self) -> list[object]:
        return [entry[4] for entry in self.got]


class Chatter:
    """Sends a message from every node to every other one each tick: a steady, seeded load."""

    def __init__(self, sim: Simulation, net: Network, inbox: Inbox, ticks: int):
        self.sim, self.net, self.inbox, self.left = sim, net, inbox, ticks

    def tick(self) -> None:
        for src in self.net.nodes:
            for dst in self.net.nodes:
                if src != dst:
                    self.net.send(src, dst, (src, dst, self.left), self.inbox.receive)
        self.left -= 1
        if self.left:
            self.sim.schedule(0.01, self.tick)


def make(seed=1, nodes=NODES, **options):
    sim = Simulation(seed)
    net = Network(sim, nodes, **options)
    return sim, net, Inbox(sim)


def chatty_run(seed, ticks=20, stop=None, **options):
    options.setdefault("latency", LatencyModel(0.005, "lognormal", 0.01, 0.8))
    sim, net, inbox = make(seed, drop_rate=0.1, duplicate_rate=0.1, trace=True, **options)
    Chatter(sim, net, inbox, ticks).tick()
    return sim, net, inbox


def module_level_deliver(message):  # a plain function is a valid deliver callback too
    pass


module_level_lambda = lambda message: None  # noqa: E731


def make_closure():
    def closure(message):
        pass

    return closure


# -- determinism ------------------------------------------------------------------------------------------------
def test_same_seed_same_deliveries_and_events():
    runs = []
    for _ in range(2):
        sim, net, inbox = chatty_run(seed=7)
        sim.run_until(10)
        runs.append((inbox.got, [e.as_dict() for e in sim.collect()], net.counts))
    assert runs[0] == runs[1]
    assert runs[0][2]["delivered"] > 100 and runs[0][2]["dropped"] > 10 and runs[0][2]["duplicated"] > 10
    sim, _, inbox = chatty_run(seed=8)
    sim.run_until(10)
    assert inbox.got != runs[0][0]


def test_pickle_mid_flight_then_continue_gives_the_same_outcome():
    sim, net, inbox = chatty_run(seed=3)
    sim.run_until(0.105)
    assert net.in_flight(), "the snapshot must be taken with messages on the wire"
    net.crash("c")  # perturbations before the snapshot are part of it
    sim.collect()  # the driver takes the events so far before it snapshots
    snapshot = pickle.dumps((sim, net, inbox))
    sim.run_until(10)
    copy_sim, copy_net, copy_inbox = pickle.loads(snapshot)
    copy_sim.run_until(10)
    assert copy_inbox.got == inbox.got
    events = [e.as_dict() for e in sim.collect()]
    assert [e.as_dict() for e in copy_sim.collect()] == events and len(events) > 100
    assert copy_net.counts == net.counts and copy_net.in_flight() == [] == net.in_flight()


RUN_IN_A_FRESH_PROCESS = """
import json
from tests.core.test_network import chatty_run
sim, net, inbox = chatty_run(seed=5)
sim.run_until(0.1)
net.partition([["e", "b"]])
net.cut("a", "c")
sim.run_until(10)
print(json.dumps([e.as_dict() for e in sim.collect()] + [net.links(), net.groups()]))
"""


def test_event_stream_is_identical_whatever_the_string_hash_seed():
    outputs = outputs_under_hash_seeds(RUN_IN_A_FRESH_PROCESS)
    assert outputs[0] == outputs[1] and len(json.loads(outputs[0])) > 100


# -- loss and duplication ---------------------------------------------------------------------------------------
def test_drop_rate_is_close_to_configured():
    # 20,000 sends at p = 0.3: one standard deviation of the observed rate is 0.0032; we allow 0.015 (~4.6 sd).
    sim, net, inbox = make(seed=11, drop_rate=0.3)
    for i in range(20_000):
        net.send("a", "b", i, inbox.receive)
    sim.run_until(1)
    assert abs(1 - len(inbox.got) / 20_000 - 0.3) < 0.015
    assert net.counts == {
        "sent": 20_000,
        "duplicated": 0,
        "delivered": len(inbox.got),
        "dropped": 20_000 - len(inbox.got),
    }


def test_per_link_drop_rate_override_is_directional_or_both_ways():
    sim, net, inbox = make()
    net.set_link_drop_rate("a", "b", 1.0, both_ways=False)
    for _ in range(20):
        net.send("a", "b", "ab", inbox.receive)
        net.send("b", "a", "ba", inbox.receive)
        net.send("a", "c", "ac", inbox.receive)
    sim.run_until(1)
    assert sorted(set(inbox.payloads())) == ["ac", "ba"] and len(inbox.got) == 40
    assert ("a", "b", "lossy") in net.links() and ("a", "c", "ok") in net.links()
    net.set_link_drop_rate("a", "b", None, both_ways=False)
    net.set_link_drop_rate("a", "b", 1.0)
    net.send("b", "a", "ba", inbox.receive)
    sim.run_until(2)
    assert len(inbox.got) == 40


def test_duplicates_get_their_own_id_and_latency_sample():
    sim, net, inbox = make(seed=5, duplicate_rate=0.5, latency=LatencyModel(0.01, "uniform", 0.05))
    for i in range(2000):
        net.send("a", "b", i, inbox.receive)
    sim.run_until(1)
    copies = [entry for entry in inbox.got if entry[5]]
    assert 850 < len(copies) < 1150  # binomial(2000, 0.5): sd 22
    assert len(inbox.got) == 2000 + len(copies) == net.counts["delivered"]
    assert sorted(inbox.ids()) == list(range(1, len(inbox.got) + 1))  # every copy has an id of its own
    originals = {entry[4]: entry[0] for entry in inbox.got if not entry[5]}
    assert sum(originals[entry[4]] != entry[0] for entry in copies) > 0.9 * len(copies)
    assert sorted(originals) == list(range(2000))


# -- ordering ---------------------------------------------------------------------------------------------------
def test_jitter_reorders_and_fifo_keeps_per_link_order():
    jittery = LatencyModel(0.01, "exponential", 0.02)
    for fifo in (False, True):
        sim, net, inbox = make(seed=2, latency=jittery, fifo=fifo)
        for i in range(100):
            net.send("a", "b", i, inbox.receive)
            net.send("c", "b", i, inbox.receive)
            sim.run_until(sim.now + 0.002)
        sim.run_until(5)
        per_link = {src: [e[4] for e in inbox.got if e[2] == src] for src in ("a", "c")}
        in_order = all(per_link[src] == list(range(100)) for src in ("a", "c"))
        assert in_order == fifo, f"fifo={fifo}"
        assert len(inbox.got) == 200


def test_fixed_latency_and_per_link_override():
    sim, net, inbox = make(latency=LatencyModel(0.02))
    net.set_link_latency("a", "b", LatencyModel(0.5), both_ways=False)
    sent = [net.send("a", "b", 1, inbox.receive), net.send("b", "a", 2, inbox.receive)]
    assert [m.deliver_at for m in sent] == [0.5, 0.02]
    net.set_link_latency("a", "b", None, both_ways=False)
    assert net.send("a", "b", 3, inbox.receive).deliver_at == 0.02
    net.send("a", "b", 4, module_level_deliver)  # a module-level function is a fine callback
    sim.run_until(1)
    assert inbox.payloads() == [2, 3, 1] and net.counts["delivered"] == 4


# -- partitions, cuts, crashes ----------------------------------------------------------------------------------
def send_all_pairs(net, inbox, tag):
    for src in net.nodes:
        for dst in net.nodes:
            if src != dst:
                net.send(src, dst, (tag, src, dst), inbox.receive)


def test_partition_blocks_across_groups_both_ways_not_within_and_heal_restores():
    sim, net, inbox = make()
    assert net.partition([["a", "b"], ["d", "c"]])
    assert net.groups() == [["a", "b"], ["c", "d"], ["e"]]  # e is unlisted: the remainder group
    send_all_pairs(net, inbox, "split")
    sim.run_until(1)
    delivered = sorted((src, dst) for _, src, dst in inbox.payloads())
    assert delivered == [("a", "b"), ("b", "a"), ("c", "d"), ("d", "c")]
    assert not net.reachable("a", "c") and not net.reachable("c", "a") and net.reachable("c", "d")
    assert dict(((a, b), s) for a, b, s in net.links())[("a", "e")] == "partitioned"
    assert net.heal()
    assert net.groups() == [NODES] and all(state == "ok" for _, _, state in net.links())
    net.cut("a", "b")
    net.partition([["a"]])
    assert net.heal() and net.reachable("a", "b") and net.reachable("b", "a")  # heal restores cut links too
    inbox.got.clear()
    send_all_pairs(net, inbox, "healed")
    sim.run_until(2)
    assert len(inbox.got) == 20


def test_partition_isolating_one_node_and_nodes_added_later_join_the_remainder():
    _, net, _ = make(nodes=["a", "b", "c"])
    net.partition([["a"]])
    net.add_node("z")
    assert net.groups() == [["a"], ["b", "c", "z"]]
    assert net.reachable("b", "z") and not net.reachable("z", "a")


def test_cut_is_directional_when_asked_and_restore_undoes_it():
    sim, net, inbox = make()
    assert net.cut("a", "b", both_ways=False)
    assert not net.cut("a", "b", both_ways=False)  # nothing changed
    net.send("a", "b", "ab", inbox.receive)
    net.send("b", "a", "ba", inbox.receive)
    sim.run_until(1)
    assert inbox.payloads() == ["ba"]
    assert ("a", "b", "cut") in net.links()
    net.cut("a", "b")
    net.send("b", "a", "ba2", inbox.receive)
    assert net.restore("a", "b")
    net.send("a", "b", "ab2", inbox.receive)
    sim.run_until(2)
    assert inbox.payloads() == ["ba", "ab2"]


def test_in_flight_messages_are_lost_on_arrival_after_a_cut_partition_or_crash():
    sim, net, inbox = make(trace=True, latency=LatencyModel(0.1))
    net.send("a", "b", "to-cut", inbox.receive)
    net.send("a", "c", "to-partition", inbox.receive)
    net.send("a", "d", "to-crash", inbox.receive)
    net.send("a", "e", "fine", inbox.receive)
    sim.run_until(0.05)
    assert [m.payload for m in net.in_flight()] == ["to-cut", "to-partition", "to-crash", "fine"]
    net.cut("a", "b")
    net.partition([["c"]])
    net.crash("d")
    net.crash("a")  # the sender crashing does not recall what it already sent
    sim.run_until(1)
    assert inbox.payloads() == ["fine"] and net.in_flight() == []
    drops = [(e.fields["id"], e.fields["reason"]) for e in sim.collect() if e.type == "net.drop"]
    assert drops == [(1, "cut"), (2, "partition"), (3, "crashed")]


def test_crashed_node_sends_nothing_receives_nothing_and_restart_resumes():
    sim, net, inbox = make(trace=True)
    assert net.crash("b") and not net.crash("b") and not net.is_up("b")
    sent = net.send("b", "a", "from-dead", inbox.receive)
    net.send("a", "b", "to-dead", inbox.receive)
    assert sent.deliver_at is None and [m.payload for m in net.in_flight()] == ["to-dead"]
    sim.run_until(1)
    assert inbox.got == [] and not net.reachable("a", "b")
    net.send("a", "b", "arrives-after-restart", inbox.receive)  # sent while down, arrives when up: delivered
    assert net.restart("b") and not net.restart("b") and net.is_up("b")
    net.send("b", "a", "from-alive", inbox.receive)
    sim.run_until(2)
    assert inbox.payloads() == ["arrives-after-restart", "from-alive"]
    reasons = [e.fields["reason"] for e in sim.collect() if e.type == "net.drop"]
    assert reasons == ["crashed", "crashed"]


def test_manual_drop_of_an_in_flight_message():
    sim, net, inbox = make(latency=LatencyModel(0.1))  # trace off: a manual drop is still reported
    first = net.send("a", "b", 1, inbox.receive)
    net.send("a", "b", 2, inbox.receive)
    assert net.drop(first.id) == first
    with pytest.raises(ValueError, match="not in flight"):
        net.drop(first.id)
    sim.run_until(1)
    assert inbox.payloads() == [2]
    assert [(e.type, e.fields) for e in sim.collect()] == [
        ("net.drop", {"id": 1, "src": "a", "dst": "b", "reason": "manual"})
    ]
    with pytest.raises(ValueError, match="not in flight"):
        net.drop(2)


# -- events -----------------------------------------------------------------------------------------------------
def test_trace_events_have_documented_fields_in_seq_order():
    sim, net, inbox = make(seed=4, trace=True, duplicate_rate=1.0, latency=LatencyModel(0.1))
    net.send("a", "b", "x", inbox.receive)
    net.set_drop_rate(1.0)
    net.send("a", "c", "y", inbox.receive)
    net.set_drop_rate(0.0)
    net.partition([["a", "b"]])
    sim.run_until(0.05)
    net.heal()
    net.cut("a", "b", both_ways=False)
    net.restore("a", "b", both_ways=False)
    net.crash("e")
    net.restart("e")
    net.set_link_latency("a", "b", LatencyModel(0.2, "uniform", 0.1))
    net.set_duplicate_rate(0.25)
    sim.run_until(1)
    events = sim.collect()
    assert [e.seq for e in events] == list(range(len(events)))
    assert [e.t for e in events] == sorted(e.t for e in events)
    got = [(e.type, e.fields) for e in events]
    assert got == [
        ("net.send", {"id": 1, "src": "a", "dst": "b", "deliver_at": 0.1}),
        ("net.duplicate", {"id": 2, "src": "a", "dst": "b", "of": 1, "deliver_at": 0.1}),
        ("net.config", {"setting": "drop_rate", "src": None, "dst": None, "both_ways": False, "value": 1.0}),
        ("net.send", {"id": 3, "src": "a", "dst": "c", "deliver_at": None}),
        ("net.drop", {"id": 3, "src": "a", "dst": "c", "reason": "loss"}),
        ("net.config", {"setting": "drop_rate", "src": None, "dst": None, "both_ways": False, "value": 0.0}),
        ("net.partition", {"groups": [["a", "b"], ["c", "d", "e"]]}),
        ("net.heal", {}),
        ("net.cut", {"src": "a", "dst": "b", "both_ways": False}),
        ("net.restore", {"src": "a", "dst": "b", "both_ways": False}),
        ("net.crash", {"node": "e"}),
        ("net.restart", {"node": "e"}),
        (
            "net.config",
            {
                "setting": "latency",
                "src": "a",
                "dst": "b",
                "both_ways": True,
                "value": {"base": 0.2, "dist": "uniform", "spread": 0.1, "sigma": 0.5},
            },
        ),
        ("net.config", {"setting": "duplicate_rate", "src": None, "dst": None, "both_ways": False, "value": 0.25}),
        ("net.deliver", {"id": 1, "src": "a", "dst": "b", "sent_at": 0.0}),
        ("net.deliver", {"id": 2, "src": "a", "dst": "b", "sent_at": 0.0}),
    ]
    documented = {t.name: set(t.fields) for t in EVENT_TYPES}
    assert all(isinstance(t, EventType) for t in EVENT_TYPES)
    assert all(set(e.fields) == documented[e.type] for e in events)
    assert {e.type for e in events} == set(documented)  # every documented type was seen
    assert "manual" in DROP_REASONS and LINK_STATES == ("ok", "cut", "partitioned", "lossy")


def test_without_trace_message_fates_are_silent_and_unchanged_state_emits_nothing():
    sim, net, inbox = make(drop_rate=0.5, duplicate_rate=0.5)
    for i in range(50):
        net.send("a", "b", i, inbox.receive)
    sim.run_until(1)
    assert sim.collect() == []
    assert not net.heal() and not net.restore("a", "b") and not net.set_drop_rate(0.5)
    assert not net.set_link_latency("a", "b", None) and not net.set_latency(LatencyModel())
    assert sim.collect() == []


# -- validation -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda net: net.send("a", "zz", 1, module_level_deliver), "unknown node 'zz'"),
        (lambda net: net.send("a", "b", 1, module_level_lambda), "bound method or a module-level function"),
        (lambda net: net.send("a", "b", 1, make_closure()), "bound method or a module-level function"),
        (lambda net: net.send("a", "b", 1, "not callable"), "bound method"),
        (lambda net: net.crash("x"), "unknown node"),
        (lambda net: net.is_up(3), "unknown node 3"),
        (lambda net: net.cut("a", "a"), "itself"),
        (lambda net: net.partition([["a"], ["a", "b"]]), "more than one group"),
        (lambda net: net.partition([["a"], []]), "non-empty"),
        (lambda net: net.partition("ab"), "list of non-empty lists"),
        (lambda net: net.partition([]), "at least one group"),
        (lambda net: net.partition([["q"]]), "unknown node 'q'"),
        (lambda net: net.set_drop_rate(1.5), "drop_rate must be a number between 0 and 1"),
        (lambda net: net.set_drop_rate(float("nan")), "between 0 and 1"),
        (lambda net: net.set_duplicate_rate(-0.1), "duplicate_rate"),
        (lambda net: net.set_link_drop_rate("a", "b", True), "between 0 and 1"),
        (lambda net: net.set_latency(0.1), "LatencyModel"),
        (lambda net: net.add_node("a"), "already exists"),
        (lambda net: net.add_node(""), "non-empty string"),
        (lambda net: LatencyModel(-0.01), "base must be a number from 0 to 3600"),
        (lambda net: LatencyModel(0.01, "lognormal", 0.01, 50), "sigma must be a number from 0 to 4"),
        (lambda net: Network(net.sim, ["a"], latency=0.01), "LatencyModel"),
        (lambda net: net.partition([["a", ["b"]]]), "unknown node \\['b'\\]"),
        (lambda net: net.drop([1]), "not in flight"),
        (lambda net: LatencyModel(0.01, "uniform", float("inf")), "spread"),
        (lambda net: LatencyModel(0.01, "gaussian"), "one of fixed, uniform, exponential, lognormal"),
        (lambda net: Network(net.sim, ["a"], drop_rate=2), "drop_rate"),
    ],
)
def test_bad_input_raises_a_clear_value_error(call, match):
    _, net, _ = make()
    with pytest.raises(ValueError, match=match):
        call(net)
    assert net.in_flight() == [] and net.groups() == [NODES] and net.sim.pending == []


def test_latency_model_and_message_pickle():
    model = LatencyModel(0.01, "lognormal", 0.02, 1.0)
    message = Message(1, "a", "b", {"k": [1]}, 0.0, 0.1)
    assert pickle.loads(pickle.dumps(model)) == model and pickle.loads(pickle.dumps(message)) == message


# -- property ---------------------------------------------------------------------------------------------------
class Sender:
    def __init__(self, net: Network, inbox: Inbox):
        self.net, self.inbox, self.sent = net, inbox, []

    def send(self, src: str, dst: str, payload: int) -> None:
        self.sent.append(self.net.send(src, dst, payload, self.inbox.receive))


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    dist=st.sampled_from(["fixed", "uniform", "exponential", "lognormal"]),
    base=st.floats(0, 0.1),
    spread=st.floats(0, 0.2),
    duplicate_rate=st.sampled_from([0.0, 0.0, 0.3, 1.0]),
    fifo=st.booleans(),
    sends=st.lists(
        st.tuples(st.floats(0, 2), st.sampled_from(NODES[:3]), st.sampled_from(NODES[:3])), min_size=1, max_size=40
    ),
)
def test_without_faults_every_message_arrives_exactly_once_and_never_early(
    seed, dist, base, spread, duplicate_rate, fifo, sends
):
    sim = Simulation(seed)
    net = Network(sim, NODES[:3], latency=LatencyModel(base, dist, spread), duplicate_rate=duplicate_rate, fifo=fifo)
    inbox = Inbox(sim)
    sender = Sender(net, inbox)
    for i, (at, src, dst) in enumerate(sends):
        sim.schedule_at(at, sender.send, src, dst, i)
    sim.run_until(1_000)
    originals = sorted(entry[4] for entry in inbox.got if not entry[5])
    copies = [entry for entry in inbox.got if entry[5]]
    assert originals == list(range(len(sends)))
    assert sorted(entry[4] for entry in copies) == sorted(set(entry[4] for entry in copies))  # one copy at most
    if duplicate_rate == 0.0:
        assert copies == []
    if duplicate_rate == 1.0:
        assert len(copies) == len(sends)
    by_id = {m.id: m for m in sender.sent}
    for when, message_id, _, _, payload, duplicate in inbox.got:
        sent_at = sends[payload][0]
        assert when >= sent_at + base - 1e-9 and (duplicate or by_id[message_id].sent_at == sent_at)
        if dist == "uniform" and not fifo:
            assert when <= sent_at + base + spread + 1e-9
        if dist == "fixed" and not fifo:
            assert when == sent_at + base
    assert net.in_flight() == [] and net.counts["dropped"] == 0
    if fifo:
        for src in NODES[:3]:
            for dst in NODES[:3]:
                times = [e[0] for e in inbox.got if (e[2], e[3]) == (src, dst)]
                ids = [e[1] for e in inbox.got if (e[2], e[3]) == (src, dst)]
                assert ids == sorted(ids) and times == sorted(times)
