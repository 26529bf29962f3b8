"""The per-key linearizability checker on hand-built histories, and against a brute-force checker (hypothesis)."""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patterns.raft.linearizability import KVHistory, Op, apply


class Run:
    """A history written as it happens: `call` starts an operation, `ret` ends a client's current one."""

    def __init__(self) -> None:
        self.history = KVHistory()
        self.seqs: dict[str, int] = {}
        self.keys: dict[str, str] = {}
        self.violations: list[tuple[int, str]] = []  # (completion number, detail)
        self.completions = 0

    def call(self, client: str, op: str, key: str = "x", value: Any = None, expected: Any = None) -> Run:
        self.seqs[client] = self.seqs.get(client, 0) + 1
        self.keys[client] = key
        self.history.invoke(client, self.seqs[client], op, key, value, expected)
        return self

    def ret(self, client: str, result: Any = "ok") -> Run:
        self.completions += 1
        detail = self.history.complete(client, self.seqs[client], self.keys[client], result)
        if detail is not None:
            self.violations.append((self.completions, detail))
        return self

    def do(self, client: str, op: str, result: Any = "ok", **args: Any) -> Run:
        return self.call(client, op, **args).ret(client, result)

    @property
    def flagged(self) -> list[int]:
        return [n for n, _ in self.violations]


# -- known linearizable ---------------------------------------------------------------------------------------


def test_sequential_writes_and_reads_are_fine():
    run = Run().do("c1", "set", value="1").do("c2", "get", "1").do("c1", "delete").do("c2", "get", None)
    run.do("c1", "cas", True, expected=None, value="2").do("c2", "get", "2")
    assert run.violations == []


def test_a_read_overlapping_a_write_may_see_either_value():
    for seen in ("1", None):
        run = Run().call("c1", "set", value="1").call("c2", "get").ret("c2", seen).ret("c1")
        assert run.violations == [], seen


def test_overlapping_writes_may_take_effect_in_either_order():
    for last in ("1", "2"):
        run = Run().call("c1", "set", value="1").call("c2", "set", value="2").ret("c2").ret("c1")
        run.do("c3", "get", last).do("c3", "get", last)
        assert run.violations == [], last


def test_a_write_still_running_at_the_end_may_have_taken_effect_or_not():
    assert Run().call("c1", "set", value="1").do("c2", "get", "1").violations == []
    assert Run().call("c1", "set", value="1").do("c2", "get", None).violations == []
    assert Run().call("c1", "set", value="1").do("c2", "get", None).do("c2", "get", "1").violations == []


def test_keys_are_independent():
    run = Run().do("c1", "set", key="x", value="1").do("c1", "set", key="y", value="2")
    run.do("c2", "get", "1", key="x").do("c2", "get", "2", key="y")
    assert run.violations == []


def test_a_retried_invoke_keeps_the_first_start():
    run = Run().call("c1", "set", value="1").call("c2", "get")
    run.history.invoke("c1", 1, "set", "x", "1")  # the retry of seq 1, after the get started
    assert run.ret("c2", "1").ret("c1").violations == []  # the get may still follow the set


def test_a_completion_never_invoked_is_ignored():
    assert KVHistory().complete("c9", 1, "x", "7") is None


# -- known non-linearizable -----------------------------------------------------------------------------------


def test_stale_read():
    run = Run().do("c1", "set", value="1").do("c1", "set", value="2").do("c2", "get", "1")
    assert run.flagged == [3]
    assert "c2's get x (seq 1) returned '1'" in run.violations[0][1] and "x was '2'" in run.violations[0][1]


def test_lost_write():
    run = Run().do("c1", "set", value="1").do("c2", "get", None)
    assert run.flagged == [2]
    assert "returned absent" in run.violations[0][1]


def test_read_of_a_value_never_written():
    assert Run().do("c1", "set", value="1").do("c2", "get", "5").flagged == [2]


def test_reads_may_not_go_back_after_overlapping_writes():
    run = Run().call("c1", "set", value="1").call("c2", "set", value="2").ret("c2").ret("c1")
    run.do("c3", "get", "1").do("c3", "get", "2")
    assert run.flagged == [4]


def test_a_write_seen_cannot_be_unseen():
    run = Run().call("c1", "set", value="1").do("c2", "get", "1").do("c2", "get", None)
    assert run.flagged == [2]


def test_deleted_value_read_again():
    assert Run().do("c1", "set", value="1").do("c1", "delete").do("c2", "get", "1").flagged == [3]


def test_cas_anomalies():
    twice = Run().do("c1", "set", value="1").do("c1", "cas", True, expected="1", value="2")
    assert twice.do("c2", "cas", True, expected="1", value="3").flagged == [3]
    refused = Run().do("c1", "set", value="1").do("c2", "cas", False, expected="1", value="2")
    assert refused.flagged == [2]
    both = Run().do("c1", "set", value="1").call("c2", "cas", expected="1", value="2")
    both.call("c3", "cas", expected="1", value="3").ret("c2", True).ret("c3", True)
    assert both.flagged == [3]
    assert "cas x from '1' to '3'" in both.violations[0][1]


def test_concurrent_cas_one_wins_is_fine():
    run = Run().do("c1", "set", value="1").call("c2", "cas", expected="1", value="2")
    run.call("c3", "cas", expected="1", value="3").ret("c3", False).ret("c2", True).do("c1", "get", "2")
    assert run.violations == []


def test_one_anomaly_is_reported_once():
    run = Run().do("c1", "set", value="1").do("c1", "set", value="2").do("c2", "get", "1")
    run.do("c1", "cas", True, expected="2", value="3").do("c2", "get", "3").do("c1", "set", value="4")
    assert run.flagged == [3]
    assert run.do("c2", "get", "9").flagged == [3, 7]  # a new anomaly is a new report


def test_a_client_stuck_for_the_whole_run_keeps_the_frontier_small():
    """A write that never completes doubles the frontier at most; it never grows with the history."""
    run = Run().call("c1", "set", value="stuck")
    biggest = 0
    for n in range(500):
        run.do("c2", "set", value=str(n % 3)).do("c3", "get", str(n % 3))
        biggest = max(biggest, len(run.history.keys["x"].frontier))
    assert run.violations == []
    assert biggest <= 2
    assert run.do("c3", "get", "stuck").violations == []  # it may take effect even now


def test_history_pickles_midway():
    run = Run().call("c1", "set", value="1").do("c2", "get", "1")
    copy = pickle.loads(pickle.dumps(run.history))
    assert copy.complete("c1", 1, "x", "ok") is None
    assert copy.keys["x"].frontier == {("1", frozenset(), frozenset())}


# -- against brute force --------------------------------------------------------------------------------------


@dataclass
class Call:
    id: tuple[str, int]
    op: str
    key: str
    value: Any
    expected: Any
    start: int  # position of the invoke in the history
    end: int | None = None  # position of the completion; None: still running
    result: Any = None


def brute_force(calls: list[Call]) -> bool:
    """Some subset of the running calls plus all completed ones, in some order that respects real time, gives
    every completed call its result."""
    done = [c for c in calls if c.end is not None]
    running = [c for c in calls if c.end is None]
    for size in range(len(running) + 1):
        for chosen in itertools.combinations(running, size):
            for order in itertools.permutations(done + list(chosen)):
                if _respects_real_time(order) and _explains(order):
                    return True
    return False


def _respects_real_time(order: tuple[Call, ...]) -> bool:
    return not any(
        later.end is not None and later.end < earlier.start
        for i, earlier in enumerate(order)
        for later in order[i + 1 :]
    )


def _explains(order: tuple[Call, ...]) -> bool:
    state: dict[str, Any] = {}
    for call in order:
        state[call.key], got = apply(state.get(call.key), Op(call.id, call.op, call.key, call.value, call.expected))
        if call.end is not None and got != call.result:
            return False
    return True


STEP = st.tuples(
    st.sampled_from(["c1", "c2", "c3"]),
    st.sampled_from(["get", "get", "set", "delete", "cas"]),
    st.sampled_from(["x", "x", "y"]),
    st.sampled_from(["1", "2"]),
    st.sampled_from([None, "1", "2"]),
    st.sampled_from([None, "1", "2", True, False]),
)


def completions(steps: list[tuple], *histories: KVHistory) -> Iterator[tuple[Call, list[Call]]]:
    """Play ``steps``: a client with nothing running starts a call (at most six in all), invoked on every history;
    a client with a call running ends it. Each call that ends is yielded, with all the calls so far, for the
    caller to complete."""
    calls: list[Call] = []
    current: dict[str, Call] = {}
    seqs: dict[str, int] = {}
    for position, (client, op, key, value, expected, answer) in enumerate(steps):
        if client not in current:
            if len(calls) == 6:
                continue
            seqs[client] = seqs.get(client, 0) + 1
            call = Call((client, seqs[client]), op, key, value, expected if op == "cas" else None, position)
            calls.append(call)
            current[client] = call
            for history in histories:
                history.invoke(client, call.id[1], op, key, call.value if op in ("set", "cas") else None, call.expected)
            continue
        call = current.pop(client)
        call.end, call.result = position, _plausible(call.op, answer)
        yield call, calls


def complete(history: KVHistory, call: Call) -> bool:
    """Complete ``call``; whether it was flagged."""
    return history.complete(call.id[0], call.id[1], call.key, call.result) is not None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEP, max_size=12))
def test_agrees_with_brute_force_at_every_completion(steps):
    """The checker flags exactly the first completion at which the history so far stops being linearizable."""
    history = KVHistory()
    for call, calls in completions(steps, history):
        flagged = complete(history, call)
        assert flagged == (not brute_force(calls)), (calls, flagged)
        if flagged:
            return  # from here on the checker reports anomalies once each, not prefixes


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEP, max_size=14), st.integers(min_value=1, max_value=8))
def test_a_small_budget_gives_the_same_verdicts_until_it_is_hit_and_never_a_false_violation(steps, budget):
    """Against brute force and the exact checker: with a budget, every verdict is the exact one until the first
    undecided, which comes only where the exact search did more work than the budget; after it, whatever is
    flagged is a real anomaly."""
    exact, small = KVHistory(), KVHistory(budget=budget)
    decided = True
    for call, calls in completions(steps, exact, small):
        gave_up = len(small.undecided)
        exact_flag, small_flag = complete(exact, call), complete(small, call)
        linearizable = brute_force(calls)
        assert exact_flag == (not linearizable)
        if decided and len(small.undecided) > gave_up:
            assert exact.keys[call.key].work > budget, "undecided only where the budget was hit"
            decided = False
        if decided:
            assert small_flag == exact_flag
        else:
            assert not small_flag or not linearizable, "a false violation after giving up"
        if not linearizable:
            break  # from here on every verdict is allowed
    assert exact.undecided == []


def _plausible(op: str, answer: Any) -> Any:
    """A result of the right type for the operation (of any value, so that histories are often wrong)."""
    if op in ("set", "delete"):
        return "ok"
    if op == "cas":
        return answer is True or answer == "1"
    return answer if not isinstance(answer, bool) else None


# -- bounded work -----------------------------------------------------------------------------------------------


def test_reads_in_flight_do_not_multiply_the_frontier():
    """Four reads and four writes in flight: one completion leaves a frontier of the writes' orders only (placing
    each read ahead of time, with every value it could get, made thousands of nodes)."""
    run = Run().do("w0", "set", value="0")
    for n in range(4):
        run.call(f"r{n}", "get").call(f"w{n}", "set", value=f"v{n}")
    run.do("c", "set", value="last")
    assert run.violations == []
    assert len(run.history.keys["x"].frontier) <= 2**4
    for n in range(4):  # each read may still return the value before the writes, or any written since
        run.ret(f"r{n}", ["0", "v0", "v1", "last"][n])
    assert run.violations == []


def test_over_budget_a_key_is_undecided_never_violated_and_later_operations_are_checked():
    run = Run()
    run.history = KVHistory(budget=10)
    run.do("w0", "set", value="0")
    for n in range(4):
        run.call(f"r{n}", "get").call(f"w{n}", "set", value=f"v{n}")
    run.do("c", "set", value="last")
    assert run.violations == [] and len(run.history.undecided) == 1
    assert "gave up on key x at c's set x='last' (seq 1)" in run.history.undecided[0]
    for n in range(4):  # the reads in flight then are no longer checked; the writes may still take effect
        run.ret(f"r{n}", "anything")
        run.ret(f"w{n}")
    assert run.violations == []
    run.do("c", "set", value="after").do("d", "get", "after")
    assert run.violations == []
    run.do("d", "get", "last")  # a stale read after the give-up is still an anomaly
    assert run.flagged == [run.completions]


def test_a_read_stuck_for_the_whole_run_costs_bounded_work():
    """A read that never completes may return any value written since: the values it carries grow with the run,
    so the budget, which counts them, ends in one undecided verdict and the read dropped, not in work that grows
    for ever."""
    run = Run()
    run.history = KVHistory(budget=200)
    run.call("stuck", "get").call("w", "set", value="stuck")
    for n in range(500):
        run.do("c2", "set", value=str(n)).do("c3", "get", str(n))
        assert run.history.keys["x"].work <= 200 + 2 * (n + 3)
    assert run.violations == [] and len(run.history.undecided) == 1
    assert run.do("c3", "get", "stuck").violations == []  # the stuck write may take effect even now
