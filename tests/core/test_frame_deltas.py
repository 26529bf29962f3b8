"""A run's frames to its group carry what changed since the group's previous frame: of the log only the new events,
the status, script and metrics only when their HTML changed; a joining viewer's frame is whole, and so are the
log after a seek and the group's next frame after a joiner's."""

import re

from patterns.core.registry import get_pattern
from patterns.core.runs import LiveRun


def raft_run() -> LiveRun:
    run = LiveRun("r1", get_pattern("raft"), "seed=3", "client")
    run.player.advance_to(2.0)
    run._drain()
    return run


def play(run: LiveRun, seconds: float) -> None:
    run.player.advance_to(run.player.now + seconds)
    run._drain()


def fragment_ids(html: str) -> list[str]:
    return re.findall(r'<\w+ id="([\w-]+)"[^>]*hx-swap-oob', html)


def log_of(html: str) -> tuple[str, list[int]]:
    """The log's swap strategy and the sequence numbers of its rows."""
    log = re.search(r'<ol id="event-log"[^>]*hx-swap-oob="(\w+)"[^>]*>(.*?)</ol>', html, re.S)
    return log.group(1), [int(seq) for seq in re.findall(r'data-seq="(\d+)"', log.group(2))]


def test_the_group_gets_only_the_events_new_since_its_previous_frame_newest_first():
    run = raft_run()
    swap, first = log_of(run.next_frame()["html"])
    assert swap == "true" and len(first) == 60  # whole: 30 routine and 30 others
    seen = run.player.last_seq
    play(run, 0.3)
    html = run.next_frame()["html"]
    swap, rows = log_of(html)
    assert swap == "afterbegin" and f'data-after="{seen}"' in html and 'data-keep="30"' in html
    assert rows and rows == sorted(rows, reverse=True) and min(rows) > seen
    assert rows[0] == run.player.recent[-1].seq


def test_a_frame_with_nothing_new_leaves_out_the_log_and_what_did_not_change():
    run = raft_run()
    run.playing = False
    run.next_frame()
    html = run.next_frame()["html"]
    assert fragment_ids(html) == ["frame-data"]
    run.apply({"action": "play"})
    assert fragment_ids(run.next_frame()["html"]) == ["run-status", "frame-data"]  # Playing, no new event yet


def test_a_joiner_gets_everything_and_the_group_s_next_frame_is_whole_but_for_the_log():
    run = raft_run()
    run.next_frame()
    play(run, 0.3)
    whole = run.full_frame("viewer-2")["html"]
    assert fragment_ids(whole) == ["run-status", "run-script", "timeline-steps", "metrics", "event-log", "frame-data"]
    assert log_of(whole)[0] == "true"
    play(run, 0.3)
    html = run.next_frame()["html"]
    assert fragment_ids(html) == ["run-status", "run-script", "timeline-steps", "metrics", "event-log", "frame-data"]
    assert log_of(html)[0] == "afterbegin"


def test_after_a_seek_the_log_comes_whole_again():
    run = raft_run()
    run.next_frame()
    play(run, 1.0)
    run.next_frame()
    run.apply({"action": "seek", "t": 1.0})
    run.advance(0.1, 1.0)
    swap, rows = log_of(run.next_frame()["html"])
    assert swap == "true" and max(rows) <= run.player.last_seq
