"""Load balancing's parameters and the commands that perturb a run, with the check that scripted commands name
servers the run has.

Names follow the systems people run: Envoy's outlier detection and panic threshold, its least-request active
request bias, NGINX's weights, Finagle's peak EWMA decay, Maglev's prime table size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from patterns.core.registry import Command, Param, in_group
from patterns.core.scenario import Action, never_there, numbered

from .balancers import ALGORITHMS
from .engine import ALIASES, LANE_SEPARATOR, RING_ALGORITHMS, VNODE_SUFFIX

VNODES = r"(?:[1-9][0-9]{0,2}|1000)"

NAMES = {**{name: name for name in ALGORITHMS}, **ALIASES}  # what a lane may be called -> its algorithm

LANE = "|".join(
    f"{name}(?:{VNODE_SUFFIX}{VNODES})?" if algorithm in RING_ALGORITHMS else name
    for name, algorithm in sorted(NAMES.items(), key=lambda item: (-len(item[0]), item[0]))
)

ALGORITHMS_PATTERN = rf"(?:{LANE})(?:\{LANE_SEPARATOR}(?:{LANE})){{0,3}}"

SPEEDS_PATTERN = r"(?:[0-9]{1,2}(?:\.[0-9]{1,3})?)(?:_[0-9]{1,2}(?:\.[0-9]{1,3})?){0,31}"

WEIGHTS_PATTERN = r"[1-9][0-9]?(?:_[1-9][0-9]?){0,31}"

MAGLEV_SIZES = ("251", "1021", "4093", "65537")

PARAMS = (
    *in_group(
        "Lanes",
        Param(
            "algorithms",
            "text",
            "round_robin.p2c_least_request",
            "Algorithms",
            pattern=ALGORITHMS_PATTERN,
            example="random.p2c_least_request",
            options=tuple(sorted(ALGORITHMS)),
            separator=LANE_SEPARATOR,
            help="One to four of " + ", ".join(sorted(ALGORITHMS)) + ", joined by dots; each one is a lane fed the "
            "same requests. A ring may carry its virtual nodes: ring_hash-3. Short names: "
            + ", ".join(f"{alias} ({name})" for alias, name in ALIASES.items())
            + ".",
        ),
    ),
    *in_group(
        "Traffic",
        Param("rate", "float", 80.0, "Request rate", min=0, max=2000, unit="/s", help="Poisson arrivals."),
        Param(
            "cost_ms",
            "float",
            50.0,
            "Mean request cost",
            min=1,
            max=10000,
            unit="ms",
            help="Mean work per request on a server of speed 1; a server's speed divides it.",
        ),
        Param(
            "cost_tail",
            "choice",
            "lognormal",
            "Cost distribution",
            choices=("lognormal", "pareto"),
            help="lognormal: a body with a moderate tail (spread by sigma); pareto: a heavy tail (shape alpha).",
        ),
        Param("cost_sigma", "float", 0.5, "Lognormal sigma", min=0, max=3, help="0: every request costs the mean."),
        Param("pareto_alpha", "float", 2.0, "Pareto alpha", min=1.05, max=10, help="Lower is a heavier tail."),
        Param(
            "burst_every_s",
            "float",
            0.0,
            "Burst every",
            min=0,
            max=3600,
            unit="s",
            help="A burst of requests at this period (0: none).",
        ),
        Param("burst_size", "int", 50, "Burst size", min=1, max=1000),
        Param("key_space", "int", 1000, "Distinct keys", min=1, max=10000, help="User or session ids."),
        Param("key_distribution", "choice", "uniform", "Key distribution", choices=("uniform", "zipf")),
        Param("zipf_s", "float", 1.1, "Zipf exponent", min=0, max=3, help="Higher: a few keys get most requests."),
    ),
    *in_group(
        "Servers",
        Param("servers", "int", 5, "Servers", min=1, max=32),
        Param(
            "speeds",
            "text",
            "1",
            "Speeds",
            pattern=SPEEDS_PATTERN,
            example="2_1_1_0.5",
            help="Work per second of each server, underscore-separated, repeated over the servers (0.05 to 20).",
        ),
        Param(
            "weights",
            "text",
            "1",
            "Weights",
            pattern=WEIGHTS_PATTERN,
            example="5_1_1",
            help="Each server's weight, underscore-separated, repeated over the servers.",
        ),
        Param("concurrency", "int", 4, "Slots per server", min=1, max=100, help="Requests a server works on at once."),
        Param(
            "queue_limit",
            "int",
            20,
            "Queue per server",
            min=0,
            max=1000,
            help="Requests waiting for a slot; beyond it the server drops them.",
        ),
    ),
    *in_group(
        "Algorithms",
        Param("vnodes", "int", 100, "Virtual nodes", min=1, max=1000, help="Ring points per server per weight."),
        Param("maglev_table_size", "choice", "65537", "Maglev table size", choices=MAGLEV_SIZES, help="A prime."),
        Param(
            "bounded_load_factor",
            "float",
            1.25,
            "Bounded-load factor c",
            min=1,
            max=4,
            help="No server takes more than c times the mean load.",
        ),
        Param(
            "active_request_bias",
            "float",
            1.0,
            "Active request bias",
            min=0,
            max=4,
            help="Envoy's least request with weights: weight / (active + 1) ** bias.",
        ),
        Param("ewma_decay_s", "float", 10.0, "Peak EWMA decay", min=0.1, max=120, unit="s"),
    ),
    *in_group(
        "Health",
        Param("health_checks", "bool", True, "Active health checks"),
        Param("check_interval_s", "float", 1.0, "Check interval", min=0.1, max=60, unit="s"),
        Param("healthy_threshold", "int", 2, "Healthy threshold", min=1, max=10, help="Passing checks in a row."),
        Param("unhealthy_threshold", "int", 2, "Unhealthy threshold", min=1, max=10, help="Failed checks in a row."),
        Param("outlier_detection", "bool", True, "Outlier detection"),
        Param(
            "consecutive_failures", "int", 5, "Consecutive errors", min=1, max=1000, help="Errors in a row to eject."
        ),
        Param(
            "base_ejection_s",
            "float",
            30.0,
            "Base ejection time",
            min=0.1,
            max=600,
            unit="s",
            help="An ejection lasts this times the number of ejections so far.",
        ),
        Param("max_ejection_percent", "float", 10.0, "Max ejection", min=0, max=100, unit="%"),
        Param(
            "panic_threshold",
            "float",
            50.0,
            "Panic threshold",
            min=0,
            max=100,
            unit="%",
            help="Below this share of usable servers, route to all of them (0: never).",
        ),
    ),
    *in_group(
        "Metrics",
        Param("window_s", "float", 10.0, "Metrics window", min=1, max=120, unit="s"),
    ),
)

SERVER_ARG = Param("server", "text", "s1", "Server", pattern=r"s[0-9]{1,3}", example="s2", target="server")

COMMANDS = (
    Command(
        "add_server",
        "Add a server",
        (
            Param("speed", "float", 1.0, "Speed", min=0.05, max=20),
            Param("weight", "int", 1, "Weight", min=1, max=99),
        ),
        help="A new server joins every lane (named s6, s7, ...).",
    ),
    Command("remove_server", "Remove a server", (SERVER_ARG,), help="It leaves every lane and drains its queue."),
    Command(
        "slow_server",
        "Slow a server",
        (SERVER_ARG, Param("factor", "float", 5.0, "Factor", min=0.1, max=1000)),
        help="Multiply its service times (1: back to normal).",
    ),
    Command(
        "fail_server",
        "Fail a server",
        (SERVER_ARG, Param("probability", "float", 1.0, "Probability", min=0, max=1)),
        help="It answers that share of requests (and of health checks) with a fast error.",
    ),
    Command("recover_server", "Recover a server", (SERVER_ARG,), help="No more errors, normal speed."),
    Command(
        "set_weight",
        "Set weight",
        (SERVER_ARG, Param("weight", "int", 2, "Weight", min=0, max=99)),
        help="0 drains it from the weighted algorithms.",
    ),
    Command("set_rate", "Request rate", (Param("rate", "float", 80.0, "Rate", min=0, max=2000, unit="/s"),)),
    Command("burst", "Burst", (Param("count", "int", 100, "Requests", min=1, max=1000),), help="Requests at once."),
    Command(
        "hot_key",
        "Hot key",
        (Param("share", "float", 0.3, "Share", min=0, max=1),),
        help="That share of requests carries the key 'hot' (0: ends it).",
    ),
)


def conflicts(values: Mapping[str, Any], script: Sequence[Action]) -> list[str]:
    """A scripted command naming a server the run never has (remove_server s9 of five) is refused."""
    return never_there(script, "server", numbered("s", values["servers"]), "add_server")
