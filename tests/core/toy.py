"""A tiny pattern used only by the kernel's tests: nodes that tick at random intervals and can be bumped."""

from patterns.core.registry import Command, Diagram, Drawing, EventType, Param, Pattern, Preset


class TickerEngine:
    def __init__(self, sim, params):
        self.sim = sim
        self.params = dict(params)
        self.counts = [0] * params["nodes"]
        self.paused = [False] * params["nodes"]

    def start(self):
        for node in range(len(self.counts)):
            self.sim.schedule(self.sim.rng.expovariate(self.params["rate"]), self.tick, node)

    def tick(self, node):
        if not self.paused[node]:
            self.counts[node] += 1
            self.sim.emit("tick", {"node": node, "count": self.counts[node]})
        self.sim.schedule(self.sim.rng.expovariate(self.params["rate"]), self.tick, node)

    def apply(self, command, args):
        if command == "bump":
            self.counts[args["node"]] += args["by"]
            self.sim.schedule(0, self.echo, args["node"])
        elif command == "pause":
            self.paused[args["node"]] = args["on"]
        elif command == "label":
            self.sim.emit("label", {"name": args["name"]})

    def echo(self, node):
        self.sim.emit("echo", {"node": node, "count": self.counts[node]})


def _draw(engine):
    best = max(range(len(engine.counts)), key=engine.counts.__getitem__)
    body = "\n".join(f'  n{i}["n{i}"]' for i in range(len(engine.counts)))
    return Drawing(mermaid=f"flowchart LR\n{body}", nodes=(f"n{best}",), caption=f"total {sum(engine.counts)}")


NODE = Param("node", "int", 0, min=0, max=7, target="node")
LABEL = r"[a-z0-9]+(?:[.|][a-z0-9]+)*"
TOY = Pattern(
    slug="toy",
    title="Toy ticker",
    summary="Nodes that tick.",
    engine=TickerEngine,
    params=(
        Param("nodes", "int", 3, min=1, max=8),
        Param("rate", "float", 5.0, min=0.1, max=1000.0, unit="/s"),
        Param("mode", "choice", "a", choices=("a", "b")),
        Param("loud", "bool", False),
    ),
    commands=(
        Command("bump", "Bump", (NODE, Param("by", "int", 1, min=-100, max=100))),
        Command("pause", "Pause a node", (NODE, Param("on", "bool", True))),
        Command("label", "Label", (Param("name", "text", "a.b|c", pattern=LABEL, example="n1.n2|n3"),)),
    ),
    event_types=(EventType("tick", "a node ticked", {"node": "node index", "count": "its count"}),),
    diagrams=(Diagram("nodes", "Nodes", _draw),),
    metrics=lambda engine: {"Total ticks": sum(engine.counts)},
    targets=lambda engine: {"node": tuple(range(len(engine.counts)))},  # a live command naming another is refused
    presets=(
        Preset(
            "busy", "Busy", "Fast ticks and a bump.", {"rate": 50.0}, ((1.0, "bump", {"node": 1, "by": 5}),), seed=9
        ),
        Preset("calm", "Calm", "Slow ticks.", {"rate": 0.5}, section="Slow ones"),
    ),
)

LIMITS = {
    "MAX_VIRTUAL_TIME": 3600.0,
    "MAX_EVENTS_PER_RUN": 2_000_000,
    "EVENT_HISTORY": 500,
    "SNAPSHOT_EVERY": 5.0,
    "MAX_SCRIPT_ACTIONS": 50,
    "MAX_QUERY_LENGTH": 4096,
}
