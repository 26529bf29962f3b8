"""A client has one operation at a time, and its next one comes a think time after the answer to the last."""

from __future__ import annotations

import statistics

from .test_engine_basics import Run


def _think_time_after_a_scripted_request(seed: int) -> float:
    run = Run(seed, servers=3, clients=1, client_rate=1.0).until(1.0)
    client = run.engine.clients["c1"]
    while client.pending is not None:
        run.for_(0.01)
    done = run.write("k1", f"manual{seed}")
    while not (later := [e for e in run.of("client.invoke", client="c1") if e["t"] > done["t"]]):
        run.for_(0.5)
    return later[0]["t"] - done["t"]


def test_a_scripted_request_calls_off_the_arrival_the_idle_client_had_drawn():
    """Before, the arrival drawn while idle still fired after the scripted request's answer, so the next
    operation came after the shorter of two think times (mean 0.5 s at 1/s) instead of one (mean 1 s)."""
    gaps = [_think_time_after_a_scripted_request(seed) for seed in range(1, 121)]
    assert statistics.fmean(gaps) > 0.75
