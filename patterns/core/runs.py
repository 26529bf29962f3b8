"""A live run: a scenario played in wall-clock time by a worker, steered and watched over the channel layer.

A run takes commands from the group ``run-<id>-cmd`` and publishes frames to ``run-<id>-view``. Its viewers are
counted per web process (each web process's hub subscribes once and reports how many of its sockets watch), so
the same code serves one process with the in-memory layer and many processes sharing Redis. The worker decides
how much CPU a run gets per tick (`advance`); the run never decides alone. Its `state` (scenario as a Share-link
query, virtual time, playing, speed) is saved in the store so that another worker can rebuild it by replay.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings

from .frames import context, drawings, render_fragments, render_message
from .player import Player
from .registry import Pattern, get_pattern
from .scenario import ScenarioError, decode, encode, parse_command
from .story import frame as story_frame
from .story import tracker_for

log = logging.getLogger(__name__)
SLICE = 0.002  # wall seconds' worth of virtual time simulated between looks at the clock
MAX_TICK = 0.5  # after a stall (a slow host, a long seek), catch up at most this much wall time
MAX_OWED = 3.0  # wall seconds a run taken over plays on to be where it would be (a bound on clocks that disagree)
SAVE_EVERY = 0.25  # wall seconds between saves of a playing run's position (a takeover resumes from the last)
MIN_SLICE = 0.0005  # virtual seconds: the smallest slice, however heavy the run
REPLAY_STEP = 0.2  # virtual seconds simulated between looks at the clock while seeking or taking over
# fragments a group's frame leaves out when they did not change
SENT_IF_CHANGED = ("status", "script", "steps", "metrics")


def cmd_group(run_id: str) -> str:
    return f"run-{run_id}-cmd"


def view_group(run_id: str) -> str:
    return f"run-{run_id}-view"


def frame_message(run_id: str, html: str, to: str | None = None) -> dict[str, Any]:
    message = {"type": "run.frame", "run": run_id, "html": html}
    if to:
        message["to"] = to
    return message


class RunLimitError(Exception):
    pass


def scenario_of(pattern: Pattern, query: str):
    """The scenario of a Share-link query that this program wrote itself (any number of script lines)."""
    return decode(pattern, parse_qsl(query, keep_blank_values=True), max_actions=10**6)


class LiveRun:
    def __init__(self, run_id: str, pattern: Pattern, query: str, client: str, owner: str = ""):
        self.limits = settings.PLAYGROUND
        self.id = run_id
        self.client = client
        self.owner = owner  # the viewer that started it: only it may replace it with a new run
        self.player = Player(pattern, scenario_of(pattern, query), self.limits)
        self.story = tracker_for(pattern, self.player.scenario)  # fed every event; rebuilt by a takeover's replay
        self.playing = True
        self.speed = 1.0
        self.frame = 0
        self.hubs: dict[str, tuple[int, float]] = {}  # web process hub -> (its viewers, when it last said so)
        self.idle_since: float | None = None
        self.dirty = True
        self.last_frame = 0.0
        self.last_save = 0.0
        self.closing = False
        self.behind = False  # could not keep up with its speed on the last tick
        self.replay_to: float | None = None  # taken over: replaying to where the previous worker was
        self.owed = 0.0  # taken over: wall seconds of play since its state was saved, played on top of the next tick
        self.cpu = 0.0  # CPU seconds spent on the last tick
        self.cost = 0.001  # CPU seconds a virtual second of this run costs (measured as it plays)
        self.render_cost = 0.0  # CPU seconds its last frame took to render
        self.published: dict[str, Any] = {}  # the drawings every viewer in the group has now
        self.sent: dict[str, str] = {}  # and the fragments that a frame sends only when they changed (SENT_IF_CHANGED)
        self.sent_script: tuple | None = None  # the script whose fragments `sent` holds (not rendered again meanwhile)
        self.log_seq: int | None = None  # the newest event their logs list (None: the next frame sends the whole log)

    @classmethod
    def resume(cls, run_id: str, state: dict[str, Any]) -> LiveRun:
        """The run saved as ``state``, rebuilt to replay (under the worker's budget) up to its saved time."""
        pattern = get_pattern(state["pattern"])
        if pattern is None:
            raise ScenarioError([f"no pattern {state['pattern']!r}"])
        run = cls(run_id, pattern, state["query"], state["client"], state.get("owner", ""))
        run.playing, run.speed, run.frame = bool(state["playing"]), float(state["speed"]), int(state["frame"])
        run.replay_to = float(state["t"])
        if run.playing:  # it went on playing after its last save, until its worker died: so it does here
            run.owed = min(MAX_OWED, max(0.0, time.time() - float(state.get("saved", time.time()))))
        return run

    def state(self) -> dict[str, Any]:
        player = self.player
        return {
            "pattern": player.pattern.slug,
            "query": encode(player.pattern, player.scenario),
            "t": max(player.now, self.replay_to or 0.0),
            "saved": time.time(),  # wall clock, shared by machines (roughly): what a takeover owes the viewers
            "playing": self.playing,
            "speed": self.speed,
            "frame": self.frame,
            "client": self.client,
            "owner": self.owner,
        }

    @property
    def viewers(self) -> int:
        return sum(count for count, _seen in self.hubs.values())

    # -- time -------------------------------------------------------------------------------------------------
    def wants_cpu(self) -> bool:
        return self.replay_to is not None or (self.playing and self.player.stopped is None)

    def advance(self, wall: float, budget: float) -> None:
        """Play ``wall`` seconds at the run's speed (or replay towards `replay_to`) within ``budget`` CPU seconds,
        in slices: a heavy run at a high speed then falls behind, and says so, instead of delaying other runs.

        A slice is sized from what a virtual second has cost this run so far, so that one slice of a heavy run
        (2000 requests a second over four lanes) does not overshoot the budget many times over."""
        player = self.player
        started = time.perf_counter()
        deadline = started + budget
        # a seek or a takeover: as fast as the budget allows, and no chapter on the way pauses it (a new run replays
        # to 0 s: nothing to replay, its story may pause it at once)
        replaying = self.replay_to is not None and self.replay_to > player.now
        if self.replay_to is not None:
            target, step = self.replay_to, REPLAY_STEP
        else:
            owed, self.owed = self.owed, 0.0  # played as ordinary time: a story's chapter still pauses it
            target, step = player.now + (min(wall, MAX_TICK) + owed) * self.speed, SLICE * self.speed
        while player.now < target and player.stopped is None:
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            before, clock = player.now, time.perf_counter()
            player.advance_to(min(target, player.now + min(step, max(MIN_SLICE, left / 2 / self.cost))))
            if player.now > before:  # CPU seconds per virtual second, smoothed
                self.cost = 0.7 * self.cost + 0.3 * (time.perf_counter() - clock) / (player.now - before)
            if self._drain() and not replaying:  # a chapter that pauses: the learner reads it
                self.playing = False
                break
        if self.replay_to is not None and (player.now >= self.replay_to or player.stopped):
            self.replay_to = None
        if self._drain() and not replaying:
            self.playing = False
        self.behind = self.playing and player.now < target and player.stopped is None
        if player.stopped:
            self.playing = False
        self.dirty = True
        self.cpu = time.perf_counter() - started

    def _remove(self, index: Any, step: Any) -> None:
        """Remove script step ``index``, which must still be ``step`` (another viewer may have changed the script
        since this one saw it); the run re-simulates from there back to where it was, under the worker's budget."""
        player = self.player
        script = player.scenario.script
        if not isinstance(index, int):
            raise TypeError("index: expected a whole number")
        shown = script[index].text(player.pattern) if 0 <= index < len(script) else step
        if step != shown:
            raise ValueError(f"step {index + 1} of the script is now {shown}, not {step}: look at it again")
        self.replay_to = player.remove(index)
        self._rewound()
        if self.story is not None:  # the run no longer plays the preset's script
            self.story.off_script = True

    def _rewound(self) -> None:
        """After the player went back to a snapshot: its events are simulated again, so the next frame sends the
        whole log, and the story forgets what came after it (the replay finds it)."""
        self.log_seq = None
        if self.story is not None:
            self.story.rewind(self.player.now, self.player.last_seq)

    def _drain(self) -> bool:
        """Take the player's new events and feed them to the story; True when a chapter that pauses was reached."""
        events = self.player.drain()
        if self.story is None:
            return False
        reached = self.story.feed(events, self.player.now)
        return any(self.story.chapters[index].pause for index in reached)

    def reapable(self, now: float) -> bool:
        if self.closing:
            return True
        for hub, (_count, seen) in list(self.hubs.items()):
            if now - seen > self.limits["VIEWER_TIMEOUT"]:
                del self.hubs[hub]
        if self.hubs:
            self.idle_since = None
            return False
        self.idle_since = self.idle_since or now
        return now - self.idle_since > self.limits["IDLE_REAP_SECONDS"]

    # -- output -----------------------------------------------------------------------------------------------
    def render(self, message: str = "", *, full: bool) -> str:
        """A frame: whole for a joining viewer; else, for the group, what changed since the group's last frame.

        A joiner's frame is newer than the group's last one, so the group's next frame is whole again but for the
        log (the joiner's page skips the events it lists already): a fragment or drawing that changed back
        meanwhile would otherwise stay as the joiner saw it."""
        player = self.player
        current = drawings(player)
        if full:
            diagrams, self.published, self.sent, self.sent_script = current, {}, {}, None
        else:
            diagrams = {name: drawing for name, drawing in current.items() if self.published.get(name) != drawing}
            self.published = current
        whole_log = full or self.log_seq is None or self.log_seq > player.last_seq
        ctx = context(
            player,
            run_id=self.id,
            frame=self.frame,
            playing=self.playing,
            speed=self.speed,
            log=self.limits["LOG_EVENTS_PER_FRAME"],
            viewers=self.viewers,
            message=message,
            diagrams=diagrams,
            log_after=None if whole_log else self.log_seq,
            with_script=full or player.scenario.script != self.sent_script,
            behind=(self.behind and self.playing) or self.replay_to is not None,
            story=story_frame(self.story) if self.story is not None else None,
        )
        fragments = render_fragments(ctx)
        if full:
            return "".join(fragments.values())
        self.log_seq, self.sent_script = player.last_seq, player.scenario.script
        unchanged = {name for name in SENT_IF_CHANGED if self.sent.get(name) == fragments.get(name)}
        self.sent.update((name, fragments[name]) for name in SENT_IF_CHANGED if name in fragments)
        return "".join(html for name, html in fragments.items() if name not in unchanged)

    def next_frame(self, message: str = "") -> dict[str, Any]:
        self.frame += 1
        started = time.perf_counter()
        html = self.render(message, full=False)
        self.render_cost = time.perf_counter() - started
        self.dirty = False
        self.last_frame = time.monotonic()
        return frame_message(self.id, html)

    def full_frame(self, to: str) -> dict[str, Any]:
        """The state so far for one joining viewer: it carries the number of the last frame, not a new one."""
        return frame_message(self.id, self.render(full=True), to)

    def ended_frame(self) -> dict[str, Any]:
        return frame_message(self.id, render_message("This live run has ended.", level="info"))

    # -- commands ---------------------------------------------------------------------------------------------
    def heard_from(self, message: dict[str, Any]) -> None:
        hub, count = message.get("hub"), message.get("viewers")
        if isinstance(hub, str) and isinstance(count, int):
            if count > 0:
                self.hubs[hub] = (count, time.monotonic())
            else:
                self.hubs.pop(hub, None)
            self.dirty = True

    def apply(self, message: dict[str, Any]) -> str | None:
        """Apply a steering command; returns a problem to show, if any. Never raises on a malformed message."""
        action = message.get("action")
        player = self.player
        self.owed = 0.0  # a viewer acted on what it sees now
        try:
            if action == "pause":
                self.playing = False
            elif action == "play":
                if player.stopped:
                    return player.stopped
                self.playing = True
            elif action == "step":
                self.playing = False
                player.step()
            elif action == "speed":
                speed = float(message["speed"])
                self.speed = min(max(speed, self.limits["MIN_SPEED"]), self.limits["MAX_SPEED"])
            elif action in ("seek", "reset"):  # re-simulated under the worker's budget, like a takeover
                t = float(message["t"]) if action == "seek" else 0.0
                # past the furthest time reached (a step ahead on the timeline): simulated on to it
                self.playing, self.replay_to = False, min(max(player.rewind(t), t), player.max_time)
                self._rewound()
            elif action == "command":
                name, args = parse_command(player.pattern, message.get("command"), dict(message.get("args") or ()))
                player.act(name, args, cut=message.get("cut_later") is True)
            elif action == "remove":
                self._remove(message.get("index"), message.get("step"))
            else:
                return f"unknown action {action!r}"
        except (KeyError, TypeError, ValueError) as exc:  # checked by the consumer already: a stray message
            return str(exc)
        finally:
            self._drain()
        return None
