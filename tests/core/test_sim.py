import pickle
import random

import pytest

from patterns.core.sim import Simulation


class Recorder:
    def __init__(self, sim):
        self.sim = sim
        self.seen = []

    def hit(self, name):
        self.seen.append((self.sim.now, name))
        self.sim.emit("hit", {"name": name})

    def chain(self, name):
        self.hit(name)
        self.sim.schedule(0, self.hit, name + "+0")


def test_actions_run_in_time_order_then_in_the_order_they_were_scheduled():
    sim = Simulation(1)
    rec = Recorder(sim)
    sim.schedule(2.0, rec.hit, "late")
    sim.schedule(1.0, rec.hit, "first")
    sim.schedule(1.0, rec.chain, "second")
    sim.schedule(1.0, rec.hit, "third")
    sim.run_until(5)
    assert [n for _t, n in rec.seen] == ["first", "second", "third", "second+0", "late"]
    assert sim.now == 5
    assert [e.seq for e in sim.collect()] == [0, 1, 2, 3, 4]


def test_run_until_stops_at_the_boundary_inclusive():
    sim = Simulation(1)
    rec = Recorder(sim)
    sim.schedule(1.0, rec.hit, "a")
    sim.schedule(1.5, rec.hit, "b")
    sim.run_until(1.0)
    assert [n for _t, n in rec.seen] == ["a"]
    assert sim.next_time == 1.5


@pytest.mark.parametrize("delay", [-1, float("nan"), float("inf")])
def test_bad_delays_are_refused(delay):
    sim = Simulation(1)
    with pytest.raises(ValueError):
        sim.schedule(delay, print)


def test_scheduling_in_the_past_is_refused():
    sim = Simulation(1)
    sim.run_until(3)
    with pytest.raises(ValueError):
        sim.schedule_at(2.0, print)


def test_step_runs_until_one_event_or_the_limit():
    sim = Simulation(1)
    rec = Recorder(sim)
    sim.schedule(1.0, rec.hit, "a")
    sim.schedule(2.0, rec.hit, "b")
    assert sim.step(10) is True and sim.now == 1.0
    assert sim.step(1.5) is False and sim.now == 1.5
    assert sim.step(10) is True and sim.now == 2.0


def test_same_seed_same_randomness_and_pickled_copies_continue_identically():
    a, b = Simulation(42), Simulation(42)
    assert [a.rng.random() for _ in range(5)] == [b.rng.random() for _ in range(5)]
    rec = Recorder(a)
    for i in range(20):
        a.schedule(a.rng.random() * 10, rec.hit, f"n{i}")
    a.run_until(4)
    a.collect()
    copy_sim, copy_rec = pickle.loads(pickle.dumps((a, rec)))
    a.run_until(10)
    copy_sim.run_until(10)
    assert [e.as_dict() for e in a.collect()] == [e.as_dict() for e in copy_sim.collect()]
    assert copy_rec.seen == rec.seen


@pytest.mark.parametrize("name", ["seq", "t"])
def test_an_event_field_may_not_hide_the_events_own_number_or_time(name):
    with pytest.raises(ValueError, match="the event's own fields"):
        Simulation(1).emit("x", {name: 3})


# -- cancelling -------------------------------------------------------------------------------------------------------
def test_a_cancelled_action_does_not_run_and_cancelling_twice_late_or_none_is_harmless():
    sim = Simulation(1)
    rec = Recorder(sim)
    kept = sim.schedule(1.0, rec.hit, "kept")
    dropped = sim.schedule_at(2.0, rec.hit, "dropped")
    sim.cancel(dropped)
    sim.cancel(dropped)
    sim.cancel(None)
    sim.run_until(3)
    sim.cancel(kept)  # ran already: nothing left to call off
    assert [n for _t, n in rec.seen] == ["kept"]


def _random_schedule(seed: int) -> list[tuple[float, str, bool]]:
    """Actions at times with many ties (a 0.25 s grid), each either kept or cancelled."""
    rng = random.Random(seed)
    return [(rng.randrange(40) / 4, f"a{i}", rng.random() < 0.4) for i in range(60)]


def _steps(sim: Simulation, limits: list[float]) -> list[tuple[bool, float, list[str]]]:
    out = []
    for limit in limits:
        emitted = sim.step(limit)
        out.append((emitted, sim.now, [e.fields["name"] for e in sim.collect()]))
    return out


@pytest.mark.parametrize("seed", range(20))
def test_cancelled_entries_left_in_the_queue_change_no_event_and_no_stopping_time(seed):
    """`step` and `run_until` stop at the same virtual times and emit the same events whether a cancelled action
    was scheduled and called off or never scheduled at all."""
    plan = _random_schedule(seed)
    rng = random.Random(seed + 1000)
    limits = sorted(rng.uniform(0, 11) for _ in range(40)) + [11.0] * 30
    runs = []
    for schedule_cancelled in (True, False):
        sim = Simulation(1)
        rec = Recorder(sim)
        for t, name, cancelled in plan:
            if cancelled and schedule_cancelled:
                sim.cancel(sim.schedule(t, rec.hit, name))
            elif not cancelled:
                sim.schedule(t, rec.hit, name)
        runs.append(_steps(sim, limits))
    assert runs[0] == runs[1]
    assert sum(len(names) for _e, _t, names in runs[0]) == sum(1 for *_x, cancelled in plan if not cancelled)


class Holder:
    """Keeps the handle of a timer it may call off, as engines do."""

    def __init__(self, sim):
        self.sim = sim
        self.rec = Recorder(sim)
        self.timer = sim.schedule(5.0, self.rec.hit, "timer")


def test_a_handle_pickled_with_its_simulation_still_cancels_the_copy_s_timer():
    sim = Simulation(3)
    holder = Holder(sim)
    copy_sim, copy_holder = pickle.loads(pickle.dumps((sim, holder)))
    copy_sim.cancel(copy_holder.timer)
    copy_sim.run_until(10)
    sim.run_until(10)
    assert [n for _t, n in holder.rec.seen] == ["timer"] and copy_holder.rec.seen == []
