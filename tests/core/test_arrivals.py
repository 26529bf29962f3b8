"""`PoissonArrivals` against the generation-numbered process each pattern used to write out: the same draws from
the same generator in the same order, so every pattern's stream stayed byte for byte what it was."""

from __future__ import annotations

import random

import pytest

from patterns.core.arrivals import PoissonArrivals
from patterns.core.sim import Simulation


class Target:
    """The arrivals' action: note the time and draw from the same generator, as a pattern's request does."""

    def __init__(self, sim: Simulation):
        self.sim = sim
        self.seen: list[tuple[float, float]] = []

    def hit(self) -> None:
        self.seen.append((self.sim.now, self.sim.rng.random()))


class GenerationArrivals:
    """The old way: every timer carries the generation it was drawn in; a new rate starts a new generation."""

    def __init__(self, sim: Simulation, rate: float, action):
        self.sim, self.rate, self.action, self.generation = sim, rate, action, 0

    def set_rate(self, rate: float) -> None:
        self.rate = rate
        self.generation += 1
        self._schedule()

    def _schedule(self) -> None:
        if self.rate > 0:
            self.sim.schedule(self.sim.rng.expovariate(self.rate), self._arrive, self.generation)

    def _arrive(self, generation: int) -> None:
        if generation == self.generation:
            self.action()
            self._schedule()


def _play(make, seed: int) -> list[tuple[float, float]]:
    script = random.Random(seed)
    sim = Simulation(seed)
    target = Target(sim)
    process = make(sim, 5.0, target.hit)
    process.set_rate(5.0)
    for _ in range(30):
        sim.run_until(sim.now + script.uniform(0.0, 3.0))
        process.set_rate(script.choice([0.0, 0.5, 5.0, 40.0]))
    sim.run_until(sim.now + 5.0)
    return target.seen


@pytest.mark.parametrize("seed", range(25))
def test_the_same_arrivals_and_draws_as_the_generation_numbered_process(seed):
    assert _play(PoissonArrivals, seed) == _play(GenerationArrivals, seed)


def test_a_new_rate_calls_off_the_arrival_drawn_at_the_old_one():
    sim = Simulation(7)
    target = Target(sim)
    arrivals = PoissonArrivals(sim, 0.001, target.hit)  # the first arrival would come after about 1000 s
    arrivals.start()
    sim.run_until(1.0)
    arrivals.set_rate(100.0)
    sim.run_until(11.0)
    assert 800 < len(target.seen) < 1200 and all(t > 1.0 for t, _ in target.seen)
    arrivals.set_rate(0.0)
    sim.run_until(2000.0)
    assert all(t <= 11.0 for t, _ in target.seen)


def test_a_closed_loop_waits_to_be_started_again():
    sim = Simulation(2)
    target = Target(sim)
    arrivals = PoissonArrivals(sim, 50.0, target.hit, repeat=False)
    arrivals.start()
    sim.run_until(100.0)
    assert len(target.seen) == 1
    arrivals.start()
    arrivals.stop()
    sim.run_until(200.0)
    assert len(target.seen) == 1


def test_a_separate_generator_leaves_the_run_s_alone():
    sim = Simulation(4)
    own = random.Random(99)
    arrivals = PoissonArrivals(sim, 10.0, Target(sim).hit, own)
    untouched = random.Random(4).random()
    arrivals.start()
    assert sim.rng.random() == untouched
