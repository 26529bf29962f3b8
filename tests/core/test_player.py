"""The player: live actions, seeking and snapshots must all give the run a fresh replay of the link gives."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patterns.core.export import event_json, event_lines
from patterns.core.player import Player
from patterns.core.scenario import decode, default_scenario

from .toy import LIMITS, TOY


def replay(scenario, until):
    return list(event_lines(Player(TOY, scenario, LIMITS), until))


def played(player, until):
    player.advance_to(until)
    return player.drain()


def test_live_actions_are_reproduced_by_the_scenario_they_leave_behind():
    player = Player(TOY, default_scenario(TOY, seed=3), LIMITS)
    lines = list(event_lines(player, 2.2))
    player.act("bump", (("node", 1), ("by", 4)))
    player.act("bump", (("node", 2), ("by", 1)))  # two actions at the same instant keep their order
    lines += list(event_lines(player, 7.0))
    assert [a.t for a in player.scenario.script] == [2.2, 2.2]
    assert lines == replay(player.scenario, 7.0)
    assert any('"type":"echo"' in line for line in lines)


def test_a_live_action_naming_a_node_the_engine_does_not_have_is_refused_and_not_recorded():
    player = Player(TOY, default_scenario(TOY), LIMITS)  # nodes 0, 1, 2
    player.advance_to(1.0)
    with pytest.raises(ValueError, match=r"bump: there is no node 5 now \(there are: 0, 1, 2\)"):
        player.act("bump", (("node", 5), ("by", 1)))
    assert player.scenario.script == () and not [e for e in player.drain() if e.type == "command"]
    player.act("label", (("name", "n5"),))  # a command naming no node is not checked
    assert len(player.scenario.script) == 1


def test_a_live_action_lands_on_the_next_whole_millisecond():
    player = Player(TOY, default_scenario(TOY), LIMITS)
    player.advance_to(1.23456)
    action = player.act("pause", (("node", 0), ("on", True)))
    assert action.t == 1.235 and player.now == 1.235


def test_seeking_back_gives_the_same_future_as_the_first_time():
    scenario = decode(TOY, [("rate", "30"), ("do", "12:bump:node=2,by=3")])
    player = Player(TOY, scenario, LIMITS)
    first = list(event_lines(player, 40))
    for t in (33.3, 0.0, 17.0, 5.0, 12.0):
        player.seek(t)
        before = [e.as_dict() for e in player.recent]
        again = list(event_lines(player, 40))
        assert again == first[len(first) - len(again) :]
        assert _t(first[len(first) - len(again) - 1]) <= t if len(again) < len(first) else True
        assert all(e["t"] <= t for e in before)
    assert player.horizon == 40


def test_seek_never_goes_past_the_furthest_time_reached():
    player = Player(TOY, default_scenario(TOY), LIMITS)
    player.advance_to(3)
    player.seek(100)
    assert player.now == 3


def test_a_live_action_keeps_the_scripts_later_steps():
    player = Player(TOY, decode(TOY, [("do", "20:pause:node=0,on=true"), ("do", "25:label:name=end")]), LIMITS)
    player.advance_to(30)
    player.seek(10)
    player.act("bump", (("node", 0), ("by", 9)))
    assert [(a.t, a.command) for a in player.scenario.script] == [(10.0, "bump"), (20.0, "pause"), (25.0, "label")]
    assert player.horizon == 10
    rest = list(event_lines(player, 30))
    assert [_command(line) for line in rest if '"type":"command"' in line] == ["bump", "pause", "label"]
    assert rest == replay(player.scenario, 30)[-len(rest) :]
    player.seek(5)
    assert list(event_lines(player, 30))[-len(rest) :] == rest


def test_a_live_action_between_scripted_steps_at_the_same_time_lands_after_them():
    player = Player(
        TOY, decode(TOY, [("do", "2:label:name=a"), ("do", "2:label:name=b"), ("do", "3:label:name=c")]), LIMITS
    )
    player.advance_to(2)
    player.drain()
    player.act("bump", (("node", 1), ("by", 1)))
    assert [a.command for a in player.scenario.script] == ["label", "label", "bump", "label"]
    later = [json.loads(line) for line in event_lines(player, 4)]
    assert [e["args"] for e in later if e["type"] == "command"] == [{"node": 1, "by": 1}, {"name": "c"}]


def test_step_moves_to_the_next_event_and_applies_due_actions():
    player = Player(TOY, decode(TOY, [("rate", "0.1"), ("do", "0.5:bump:node=0,by=1")]), LIMITS)
    player.step()
    assert [e.type for e in player.drain()] == ["command", "echo"]
    before = player.last_seq
    player.step()
    assert player.last_seq == before + 1 and player.drain()[-1].type == "tick"


def test_snapshots_stay_bounded_on_long_runs():
    limits = {**LIMITS, "SNAPSHOT_EVERY": 0.5}
    player = Player(TOY, default_scenario(TOY), limits)
    player.advance_to(3000)
    assert len(player._snapshots) <= 256
    player.seek(1234.5)
    assert player.now == 1234.5


def test_limits_stop_a_run():
    player = Player(TOY, decode(TOY, [("rate", "100")]), {**LIMITS, "MAX_EVENTS_PER_RUN": 1000})
    player.advance_to(1000)
    assert player.stopped and "1000 events" in player.stopped
    assert player.last_seq < 1000 + 400  # checked once per virtual second
    player = Player(TOY, default_scenario(TOY), {**LIMITS, "MAX_VIRTUAL_TIME": 10.0})
    player.advance_to(50)
    assert player.now == 10 and "maximum virtual time" in player.stopped


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    moves=st.lists(
        st.tuples(st.sampled_from(["advance", "seek", "act", "cut", "remove", "step"]), st.floats(0, 30)), max_size=8
    ),
)
def test_any_sequence_of_live_moves_is_replayed_by_the_final_link(seed, moves):
    player = Player(TOY, default_scenario(TOY, seed=seed), {**LIMITS, "SNAPSHOT_EVERY": 2.0})
    for move, t in moves:
        if move == "advance":
            player.advance_to(player.now + t)
        elif move == "seek":
            player.seek(t)
        elif move in ("act", "cut"):
            player.act("bump", (("node", int(t) % 3), ("by", 1)), cut=move == "cut")
        elif move == "remove" and player.scenario.script:
            player.advance_to(player.remove(int(t) % len(player.scenario.script)))
        else:
            player.step()
    end = player.now + 5
    player.seek(0)
    live = [event_json(e) for e in player.recent] + list(event_lines(player, end))
    assert live == replay(player.scenario, end)


def _t(line):
    return json.loads(line)["t"]


def _command(line):
    return json.loads(line)["command"]


def test_snapshots_stay_sorted_evenly_spaced_and_cover_the_run_after_seeks():
    player = Player(TOY, default_scenario(TOY), {**LIMITS, "SNAPSHOT_EVERY": 1.0})
    player.advance_to(300)
    for t in (215.5, 10.2, 299.0, 150.0, 3.3, 250.0):
        player.seek(t)
        player.advance_to(t + 7)
    times = [s[0] for s in player._snapshots]
    assert times == sorted(set(times)) and len(times) <= 256
    gaps = {round(b - a, 9) for a, b in zip([0.0, *times], times, strict=False)}
    assert gaps == {player.snapshot_every} and player.horizon - times[-1] <= player.snapshot_every


def test_snapshots_thin_out_past_their_byte_budget():
    sizes = {}
    for budget in (10**9, 20_000):
        player = Player(TOY, default_scenario(TOY), {**LIMITS, "SNAPSHOT_EVERY": 1.0, "SNAPSHOT_BYTES": budget})
        player.advance_to(120)
        total = sum(len(blob) for _t, blob in player._snapshots)
        sizes[budget] = (len(player._snapshots), total, player.snapshot_every)
    assert sizes[10**9] == (120, sizes[10**9][1], 1.0)
    count, total, every = sizes[20_000]
    assert total <= 20_000 and every > 1.0 and count >= 20_000 // (2 * max(1, sizes[10**9][1] // 120))


SCRIPTED = [("rate", "20"), ("do", "3:bump:node=0,by=5"), ("do", "6:pause:node=1,on=true"), ("do", "9:label:name=end")]


@pytest.mark.parametrize("index", [0, 1, 2])
@pytest.mark.parametrize("at", [2.0, 7.5, 12.0])
def test_removing_a_step_re_simulates_the_run_as_if_it_had_never_been_scripted(index, at):
    player = Player(TOY, decode(TOY, SCRIPTED), {**LIMITS, "SNAPSHOT_EVERY": 2.0})
    player.advance_to(14.0)
    player.seek(at)
    player.drain()
    removed = player.scenario.script[index]
    player.advance_to(player.remove(index))  # back to where the run was, without the step
    assert removed not in player.scenario.script and len(player.scenario.script) == 2
    assert player.now == at and player.horizon == at
    rest = list(event_lines(player, 14.0))
    without = replay(player.scenario, 14.0)
    assert rest == without[-len(rest) :] and _t(without[-len(rest) - 1]) <= at
    assert removed.command not in [_command(line) for line in without if '"type":"command"' in line]
    player.seek(1.0)  # every snapshot left is one of the run without the step
    assert [event_json(e) for e in player.recent] + list(event_lines(player, 14.0)) == without


def test_removing_a_step_that_is_not_there_is_refused_and_changes_nothing():
    player = Player(TOY, decode(TOY, SCRIPTED), LIMITS)
    player.advance_to(4.0)
    for index in (-1, 3):
        with pytest.raises(ValueError, match=r"the script has no step .* \(it has 3\)"):
            player.remove(index)
    assert len(player.scenario.script) == 3 and player.now == 4.0


def test_a_live_action_after_a_seek_back_may_cut_the_later_steps_instead_of_keeping_them():
    player = Player(TOY, decode(TOY, SCRIPTED), LIMITS)
    player.advance_to(12.0)
    player.seek(4.0)  # after the bump at 3 s, before the pause at 6 s and the label at 9 s
    player.act("bump", (("node", 2), ("by", 1)), cut=True)
    assert [(a.t, a.command) for a in player.scenario.script] == [(3.0, "bump"), (4.0, "bump")]
    rest = list(event_lines(player, 12.0))
    assert rest == replay(player.scenario, 12.0)[-len(rest) :]
    assert [_command(line) for line in rest if '"type":"command"' in line] == ["bump"]  # no pause, no label
