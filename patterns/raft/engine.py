"""The Raft engine: servers and clients on the kernel's network, perturbed by commands, checked on every event.

The engine owns what is not one server's business: the network and the wiring of messages to their receivers,
the record of recent RPCs the sequence diagram shows, the membership requests a leader works through, the
retirement of a server once a configuration without it has committed, and the safety checker that reads every
raft.* and client.* event that carries state as it is emitted (a violation becomes an `invariant.violated`
event right after; raft.rpc and raft.note, half of all events, tell it nothing and are not passed on).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from patterns.core.commands import Commands
from patterns.core.network import LatencyModel, Message, Network
from patterns.core.registry import split_groups
from patterns.core.sim import Event, Simulation

from . import membership
from .clients import Client
from .invariants import Checker
from .params import MAX_SERVERS, RaftConfig
from .server import HANDLERS, Server

STATS = ("elections", "leaders", "commits", "client_ops", "snapshots", "installs")
MAX_CLIENTS = 20  # configured clients plus ad-hoc ones made by client_request
RPCS_KEPT = 60  # the recent RPCs the sequence diagram and the captions draw from
DELIVERED_KEPT = 4 * RPCS_KEPT  # delivered ids kept before those of no recent RPC are swept out


class RaftEngine(Commands):
    def __init__(self, sim: Simulation, params: Mapping[str, Any]):
        self.sim = sim
        self.params = dict(params)  # the clients read theirs from here; a command may change the clients' rate
        self.config = RaftConfig.from_params(self.params)  # the servers' settings, fixed for the run
        self.read_mode = self.config.read_mode
        self.checker = Checker()
        self._rpcs: dict[str, int] = {}  # RPCs sent, by kind
        self._recent: deque[Event] = deque(maxlen=RPCS_KEPT)  # the raft.rpc events of the latest RPCs
        self._delivered: set[int] = set()  # ids delivered lately: every delivered one of `_recent`, and some others
        self._receiver = self._deliver  # one bound method for every message, which the network vets only once
        self.membership: list[tuple[str, str]] = []  # ("add" | "remove", server) requests for the leader
        self.removing: list[str] = []  # servers to shut down once a committed configuration leaves them out
        ids = [f"s{n}" for n in range(1, self.params["servers"] + 1)]
        self.net = Network(
            sim,
            latency=_latency(self.params["latency_ms"], self.params["latency_jitter_ms"]),
            drop_rate=self.params["loss"],
            duplicate_rate=self.params["duplicate"],
        )
        self.servers: dict[str, Server] = {}
        self.retired: dict[str, Server] = {}
        self._next_server = 1
        for _ in ids:
            self._add_server(tuple(ids))
        self.clients: dict[str, Client] = {}
        for _ in range(self.params["clients"]):
            self._add_client(self.params["client_rate"])

    def _add_server(self, voters: tuple[str, ...]) -> Server:
        server_id = f"s{self._next_server}"
        self._next_server += 1
        self.net.add_node(server_id)
        server = Server(server_id, voters, self.config, self, self.sim)
        self.servers[server_id] = server
        return server

    def _add_client(self, rate: float) -> Client:
        client = Client(self, f"c{len(self.clients) + 1}", rate)
        self.net.add_node(client.id)
        self.clients[client.id] = client
        return client

    def start(self) -> None:
        for server in self.servers.values():
            self.judge(
                self.sim.emit("raft.role", {"server": server.id, "role": server.role, "term": server.current_term})
            )
            server.reset_election_timer()
        for client in self.clients.values():
            client.set_rate(client.rate)

    # -- events -----------------------------------------------------------------------------------------------
    def judge(self, event: Event) -> None:
        """Have the checker judge a raft.* or client.* event that tells state, just emitted (every such event is
        emitted as ``judge(sim.emit(...))``: one call, not a wrapper that copies the fields once more)."""
        violations = self.checker.judge(event)
        if not violations:  # nearly always: no loop to set up
            return
        for violation in violations:
            self.sim.emit(
                "invariant.undecided" if violation.get("undecided") else "invariant.violated",
                {"invariant": violation["invariant"], "detail": violation["detail"], "cause": event.seq},
            )

    def note(self, detail: str) -> None:
        """A remark (a leader stepping down): nothing for the checker to judge."""
        self.sim.emit("raft.note", {"detail": detail})

    def ignore(self, command: str, reason: str) -> None:
        """A command that did nothing, said the same way in every pattern."""
        self.sim.emit("command.ignored", {"command": command, "reason": reason})

    # -- messages ---------------------------------------------------------------------------------------------
    def send_rpc(self, src: str, dst: str, kind: str, payload: dict[str, Any], summary: str) -> None:
        """Send an RPC, count it and keep it among the recent ones: its raft.rpc event tells all but its fate,
        which is read off the network and the delivered ids when asked (`rpcs`), not kept up for every message."""
        message = self.net.send(src, dst, (kind, payload), self._receiver)
        rpcs = self._rpcs
        rpcs[kind] = rpcs.get(kind, 0) + 1
        event = self.sim.emit(
            "raft.rpc",
            {"kind": kind, "src": src, "dst": dst, "term": payload["term"], "id": message.id, "summary": summary},
        )
        self._recent.append(event)

    @property
    def stats(self) -> dict[str, Any]:
        """The counts the metrics show: the servers' own tallies summed (retired servers' too), the clients'
        completed operations, and the RPCs sent by kind."""
        out: dict[str, Any] = dict.fromkeys(STATS, 0)
        for server in (*self.servers.values(), *self.retired.values()):
            for name, count in server.tally.items():
                out[name] += count
        out["client_ops"] = sum(client.completed for client in self.clients.values())
        out["rpcs"] = self._rpcs
        return out

    @property
    def rpcs(self) -> list[dict[str, Any]]:
        """The recent RPCs as records (t, kind, src, dst, term, id, summary, fate), built when asked (for a frame or
        a test), not for every RPC sent: a message still on the wire is in flight, one delivered is delivered, any
        other was lost (as it was sent, on the way, or dropped by hand)."""
        on_wire, delivered = self.net.on_wire, self._delivered
        return [
            {"t": event.t, **event.fields, "fate": _fate(event.fields["id"], on_wire, delivered)}
            for event in self._recent
        ]

    def send_client(self, src: str, dst: str, request: dict[str, Any]) -> None:
        self.net.send(src, dst, ("ClientRequest", request), self._receiver)

    def answer(self, server: str, client: str, seq: int, result: Any) -> None:
        if client in self.clients:
            reply = {"seq": seq, "ok": True, "result": result, "server": server, "leader": server}
            self.net.send(server, client, ("ClientReply", reply), self._receiver)

    def redirect(self, server: str, client: str, request: dict[str, Any], leader: str | None) -> None:
        if client in self.clients:
            reply = {"seq": request["seq"], "attempt": request["attempt"], "ok": False, "result": None}
            reply.update(server=server, leader=leader)
            self.net.send(server, client, ("ClientReply", reply), self._receiver)

    def _deliver(self, message: Message) -> None:
        kind, payload = message.payload
        delivered = self._delivered
        delivered.add(message.id)
        if len(delivered) > DELIVERED_KEPT:  # now and then, keep only the recent RPCs' ids
            self._delivered = delivered & {event.fields["id"] for event in self._recent}
        if kind == "ClientReply":
            self.clients[message.dst].receive(payload)
        else:
            HANDLERS[kind](self.servers[message.dst], message.src, payload)

    # -- membership -------------------------------------------------------------------------------------------
    def membership_step(self, leader: Server) -> None:
        """Called by a leader on each heartbeat: propose the next configuration if one is due."""
        step = membership.next_step(leader, self.membership)
        if step is not None:
            leader.propose(membership.config_command(*step))

    def config_committed(self, leader: Server) -> None:
        """The leader's configuration is committed: shut down the servers it removed (the leader too, if so)."""
        if not self.removing:
            return
        members = (*leader.voters, *leader.learners)
        waiting = [server for _, server in self.membership]  # an add still queued: the removal comes after it
        for server_id in [s for s in self.removing if s not in members and s not in waiting]:
            self.removing.remove(server_id)
            server = self.servers.pop(server_id, None)
            if server is None:
                continue
            self.retired[server_id] = server
            self.judge(self.sim.emit("raft.removed", {"server": server_id}))
            if server.alive:
                self.net.crash(server_id)
                server.crash()

    # -- commands ---------------------------------------------------------------------------------------------
    def _server(self, command: str, server_id: str) -> Server | None:
        server = self.servers.get(server_id)
        if server is None:
            self.ignore(command, f"there is no server {server_id} (servers: {', '.join(self.servers)})")
        return server

    def _do_crash(self, server: str) -> None:
        target = self._server("crash", server)
        if target is not None and not target.alive:
            self.ignore("crash", f"{server} is down already")
        elif target is not None:
            self.net.crash(server)
            target.crash()

    def _do_restart(self, server: str) -> None:
        target = self._server("restart", server)
        if target is not None and target.alive:
            self.ignore("restart", f"{server} is up already")
        elif target is not None:
            self.net.restart(server)
            target.restart()

    def _do_timeout(self, server: str) -> None:
        target = self._server("timeout", server)
        if target is None:
            return
        if not target.alive or target.role == "leader" or not target.stands_for_election:
            self.ignore("timeout", f"{server} is down, leads, or does not stand for election: it has no election timer")
            return
        target.campaign()

    def _do_partition(self, groups: str) -> None:
        listed = split_groups(groups)
        names = [node for group in listed for node in group]
        unknown = [node for node in names if node not in self.servers and node not in self.clients]
        if unknown or len(set(names)) != len(names):
            self.ignore("partition", f"unknown or repeated nodes in {groups}")
            return
        rest = [s for s in self.net.nodes if s[0] == "s" and s not in names]
        if rest:
            listed.append(rest)
        biggest = max(listed, key=lambda group: sum(1 for node in group if node[0] == "s"))
        biggest.extend(c for c in self.clients if c not in names)
        self.net.partition(listed)

    def _do_heal(self) -> None:
        if not self.net.heal():
            self.ignore("heal", "the network is whole already")

    def _link(self, command: str, a: str, b: str) -> bool:
        known = [n for n in (a, b) if n in self.servers or n in self.clients]
        if len(known) < 2 or a == b:
            self.ignore(command, f"{a}-{b} is not a link between two known nodes")
            return False
        return True

    def _do_cut(self, a: str, b: str) -> None:
        if self._link("cut", a, b):
            self.net.cut(a, b)

    def _do_restore(self, a: str, b: str) -> None:
        if self._link("restore", a, b):
            self.net.restore(a, b)

    def _do_set_loss(self, rate: float) -> None:
        self.net.set_drop_rate(rate)

    def _do_set_latency(self, ms: float, jitter_ms: float) -> None:
        self.net.set_latency(_latency(ms, jitter_ms))

    def _do_set_duplicate(self, rate: float) -> None:
        self.net.set_duplicate_rate(rate)

    def _do_drop_message(self, id: int) -> None:
        if not self.net.on_wire(id):
            self.ignore("drop_message", f"message {id} is not on the wire")
            return
        self.net.drop(id)

    def _do_client_request(self, op: str, key: str, value: str) -> None:
        client = next((c for c in self.clients.values() if c.pending is None), None)
        if client is None and len(self.clients) >= MAX_CLIENTS:
            self.ignore("client_request", f"all {MAX_CLIENTS} clients are busy")
            return
        if client is None:
            client = self._add_client(0.0)
            self._join_partition(client.id)
        client.invoke(op, key, value)

    def _join_partition(self, node: str) -> None:
        """A node added while partitioned joins the group with the most servers, as unlisted clients do."""
        groups = self.net.groups()
        if len(groups) > 1:
            for group in groups:
                if node in group:
                    group.remove(node)
            max(groups, key=lambda group: sum(1 for n in group if n[0] == "s")).append(node)
            self.net.partition([group for group in groups if group])

    def _do_set_client_rate(self, rate: float) -> None:
        self.params["client_rate"] = rate
        for client in self.clients.values():
            client.set_rate(rate)

    def _do_add_server(self) -> None:
        if self._next_server > MAX_SERVERS:
            self.ignore("add_server", f"at most {MAX_SERVERS} servers in a run")
            return
        server = self._add_server(())
        self.judge(self.sim.emit("raft.role", {"server": server.id, "role": server.role, "term": server.current_term}))
        self._join_partition(server.id)
        self.membership.append(("add", server.id))

    def _do_remove_server(self, server: str) -> None:
        if self._server("remove_server", server) is not None:
            self.membership.append(("remove", server))
            self.removing.append(server)

    def _do_spread_timers(self) -> None:
        timed = [s for s in self.servers.values() if s.election_deadline is not None]
        for k, server in enumerate(timed):
            share = k / (len(timed) - 1) if len(timed) > 1 else 0.0
            low, high = self.config.election_timeout_min, self.config.election_timeout_max
            server.set_election_deadline(self.sim.now + low + share * (high - low))

    def _do_align_timers(self) -> None:
        for server in self.servers.values():
            if server.election_deadline is not None:
                server.set_election_deadline(self.sim.now + self.config.election_timeout_min)


def _latency(ms: float, jitter_ms: float) -> LatencyModel:
    """Uniform over ``ms`` ± ``jitter_ms``/2 (shifted up when the mean is smaller than half the jitter)."""
    base = max(0.0, ms - jitter_ms / 2) / 1000.0
    if jitter_ms <= 0:
        return LatencyModel(base=base)
    return LatencyModel(base=base, dist="uniform", spread=jitter_ms / 1000.0)


def _fate(id: int, on_wire: Any, delivered: set[int]) -> str:
    if on_wire(id):
        return "in_flight"
    return "delivered" if id in delivered else "dropped"
