"""Poisson arrivals whose rate can change while the run goes on.

Every pattern has users, clients or producers arriving at some rate that a learner can change mid-run. The gaps
are exponential, so the process has no memory: changing the rate simply calls off the arrival already drawn and
draws the next one at the new rate. Each gap is drawn right after the action of the arrival before it, from the
generator the caller names (the run's own unless a pattern keeps a separate stream), so the draws interleave with
the action's own draws in one fixed order.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from .sim import Simulation, Timer


class PoissonArrivals:
    """Calls ``action()`` (a bound method, so that the process pickles) at ``rate`` arrivals per second.

    ``repeat=False`` is a closed loop: after each arrival the process waits until the caller starts it again, as a
    client that sends its next operation a think time after the answer to the last one.
    """

    def __init__(
        self,
        sim: Simulation,
        rate: float,
        action: Callable[[], object],
        rng: random.Random | None = None,
        *,
        repeat: bool = True,
    ):
        self.sim = sim
        self.rate = rate
        self.action = action
        self.rng = sim.rng if rng is None else rng
        self.repeat = repeat
        self._next: Timer | None = None

    def start(self) -> None:
        """Draw the next arrival at the current rate, calling off the one drawn before (none at rate zero)."""
        self.stop()
        if self.rate > 0:
            self._next = self.sim.schedule(self.rng.expovariate(self.rate), self._arrive)

    def stop(self) -> None:
        self.sim.cancel(self._next)
        self._next = None

    def set_rate(self, rate: float) -> None:
        self.rate = rate
        self.start()

    def _arrive(self) -> None:
        self._next = None
        self.action()
        if self.repeat and self._next is None:
            self.start()
