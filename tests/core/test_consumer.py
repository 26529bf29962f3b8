"""The websocket consumer and live runs, end to end over the in-memory channel layer."""

import asyncio
import html
import json
import re

import pytest
from channels.layers import channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from patterns.core import runtime
from patterns.core.runs import cmd_group
from playground.asgi import application

ORIGIN = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
FAST = {"FRAME_INTERVAL": 0.05, "IDLE_REAP_SECONDS": 0.3, "VIEWER_TIMEOUT": 60.0, "WORKERS": 0}


@pytest.fixture(autouse=True)
async def fresh_layer():
    channel_layers.backends = {}
    yield
    await runtime.shutdown()


async def live_runs():
    """The ids of the runs the inline worker plays now."""
    return set((await runtime.runtime()).worker.runs)


def limits(**changes):
    from django.conf import settings

    return override_settings(PLAYGROUND={**settings.PLAYGROUND, **FAST, **changes})


async def connect(query=""):
    comm = WebsocketCommunicator(application, f"/ws/patterns/toy/{query}", headers=ORIGIN)
    connected, _ = await comm.connect()
    assert connected
    return comm


def frame_of(text):
    match = re.search(r'id="frame-data" hidden data-frame="([^"]*)"', text)
    return json.loads(html.unescape(match.group(1))) if match else None


async def next_frame(comm, timeout=3.0, where=lambda f: True):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        text = await comm.receive_from(timeout=max(0.01, deadline - loop.time()))
        frame = frame_of(text)
        if frame is not None and where(frame):
            return frame, text


async def send(comm, **fields):
    await comm.send_to(text_data=json.dumps(fields))


async def test_start_streams_frames_with_full_state_and_rising_sequence_numbers():
    with limits():
        comm = await connect()
        await send(comm, action="start", seed="5", rate="20")
        first, text = await next_frame(comm)
        assert first["run"] and 'id="run-status"' in text and 'id="metrics"' in text and 'id="event-log"' in text
        later, _ = await next_frame(comm, where=lambda f: f["last_seq"] > first["last_seq"] + 5)
        assert later["t"] > first["t"] and later["frame"] > first["frame"]
        assert first["diagrams"]["nodes"]["mermaid"].startswith("flowchart LR")
        assert later["link"] == "/patterns/toy/?seed=5&rate=20"
        await comm.disconnect()


async def test_pause_step_seek_speed_and_a_perturbation_are_applied_and_shared():
    with limits():
        comm = await connect()
        await send(comm, action="start", seed="2")
        await next_frame(comm, where=lambda f: f["t"] > 0.3)
        await send(comm, action="pause")
        paused, _ = await next_frame(comm, where=lambda f: not f["playing"])
        await send(comm, action="step")
        stepped, _ = await next_frame(comm, where=lambda f: f["last_seq"] == paused["last_seq"] + 1)
        assert stepped["t"] >= paused["t"] and not stepped["playing"]
        await send(comm, action="command", command="bump", node="1", by="7")
        acted, text = await next_frame(comm, where=lambda f: "do=" in f["link"])
        assert re.search(r"do=[0-9.]+:bump:node=1,by=7$", acted["link"])
        assert "echo" in text
        await send(comm, action="seek", t="0.1")
        back, _ = await next_frame(comm, where=lambda f: f["t"] == 0.1)
        assert back["horizon"] >= acted["t"] and "do=" in back["link"]
        await send(comm, action="speed", speed="50")
        unchanged, _ = await next_frame(comm, where=lambda f: f["speed"] == 50)
        assert unchanged["diagrams"] == {}  # paused: nothing redrawn, so nothing resent
        await send(comm, action="play")
        fast, _ = await next_frame(comm, where=lambda f: f["playing"] and f["speed"] == 50 and f["t"] > 3)
        assert fast["t"] > 3
        await comm.disconnect()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("not json", "not JSON"),
        ("[1,2]", "action: expected one of"),
        ('{"action": "launch"}', "action: expected one of"),
        ('{"action": "speed", "speed": "1e99"}', "speed: expected a number from 0.1 to 100"),
        ('{"action": "speed", "speed": "NaN"}', "speed: expected a number"),
        ('{"action": "seek", "t": {"x": 1}}', "t: expected a number"),
        ('{"action": "command", "command": "explode"}', "'explode' is not a command of Toy ticker"),
        ('{"action": "command", "command": "bump", "node": "99"}', "bump node: 99 is above the maximum 7"),
        ('{"action": "start", "rate": "-1"}', "rate: -1.0 is below the minimum 0.1"),
        ('{"action": "start", "rate": ["1", {"a": 2}]}', "'rate': form fields must be text"),
        ('{"action": "start", "do": ["1:bump", 7]}', "'do': form fields must be text"),
        ('{"action": "start", "zzz": "1"}', "'zzz': not a parameter of Toy ticker"),
        ("x" * 9000, "too large"),
        ('{"action": "remove", "index": -1, "step": "1:bump"}', "index: expected the step's place in the script"),
        ('{"action": "remove", "index": true, "step": "1:bump"}', "index: expected the step's place in the script"),
        ('{"action": "remove", "index": 0}', "step: expected the step's text"),
        ('{"action": "command", "command": "bump", "cut_later": "yes"}', "cut_later: expected true or false"),
    ],
)
async def test_hostile_frames_get_a_clear_message_and_the_run_goes_on(frame, message):
    with limits():
        comm = await connect()
        await send(comm, action="start")
        before, _ = await next_frame(comm)
        await comm.send_to(text_data=frame)
        while True:
            text = await comm.receive_from(timeout=3)
            if 'id="messages"' in text and frame_of(text) is None:
                break
        assert message in html.unescape(text) and "Traceback" not in text
        after, _ = await next_frame(comm, where=lambda f: f["last_seq"] > before["last_seq"])
        assert after["run"] == before["run"] and after["playing"]
        await comm.disconnect()


async def test_a_step_is_removed_and_later_ones_are_cut_only_when_asked_and_bad_removals_are_refused():
    with limits():
        comm = await connect()
        await send(comm, action="start", rate="20", do=["1:bump:node=0,by=5", "2:label:name=b", "3:label:name=c"])
        await next_frame(comm, where=lambda f: f["t"] > 2.5)
        await send(comm, action="pause")
        await next_frame(comm, where=lambda f: not f["playing"])
        for index, step, problem in [
            (3, "3:label:name=c", "the script has no step 4 (it has 3)"),
            (1, "1:bump:node=0,by=5", "step 2 of the script is now 2:label:name=b, not 1:bump:node=0,by=5"),
        ]:
            await send(comm, action="remove", index=index, step=step)
            _, text = await next_frame(comm, where=lambda f: True)
            while "the script" not in text:
                _, text = await next_frame(comm)
            assert problem in html.unescape(text)
        await send(comm, action="remove", index=0, step="1:bump:node=0,by=5")
        removed, text = await next_frame(comm, where=lambda f: "bump" not in f["link"])
        assert removed["link"].endswith("do=2:label:name=b&do=3:label:name=c") and not removed["playing"]
        assert 'id="timeline-steps"' in text and text.count('class="mark step live"') == 2  # no preset: both live
        await send(comm, action="seek", t=1.5)
        await next_frame(comm, where=lambda f: f["t"] == 1.5)
        await send(comm, action="command", command="bump", node="1", by="1", cut_later=False)
        kept, _ = await next_frame(comm, where=lambda f: "bump" in f["link"])
        assert kept["link"].endswith("do=1.5:bump:node=1,by=1&do=2:label:name=b&do=3:label:name=c")
        await send(comm, action="command", command="bump", node="2", by="1", cut_later=True)
        cut, _ = await next_frame(comm, where=lambda f: "node=2" in f["link"])
        assert cut["link"].endswith("do=1.5:bump:node=1,by=1&do=1.5:bump:node=2,by=1")
        await comm.disconnect()


async def test_a_form_with_a_script_starts_the_scripted_scenario():
    with limits():
        comm = await connect()
        await send(comm, action="start", seed="4", do=["1:bump:node=2,by=3", "2:pause:node=0,on=true"], HEADERS={})
        frame, _ = await next_frame(comm)
        assert frame["link"] == "/patterns/toy/?seed=4&do=1:bump:node=2,by=3&do=2:pause:node=0,on=true"
        await comm.disconnect()


async def test_the_longest_link_the_page_accepts_can_be_started():
    with limits():
        from django.conf import settings

        longest = settings.PLAYGROUND["MAX_QUERY_LENGTH"]
        script = [f"{t}.125:bump:node=7,by=-100" for t in range(longest // 31)]
        assert longest - 100 < len("seed=4294967295&rate=999.5&" + "&".join(f"do={line}" for line in script)) <= longest
        comm = await connect()
        headers = {"HX-Current-URL": "x" * 300}
        await send(comm, action="start", seed="4294967295", rate="999.5", do=script, HEADERS=headers)
        frame, _ = await next_frame(comm)
        assert frame["link"].count("do=") == len(script)
        await comm.disconnect()


async def test_commands_before_start_and_binary_frames_are_refused_politely():
    with limits():
        comm = await connect()
        await send(comm, action="pause")
        assert "press Start first" in await comm.receive_from()
        await comm.send_to(bytes_data=b"\x00\x01")
        assert "not binary" in await comm.receive_from()
        await comm.disconnect()


async def test_commands_per_second_are_bounded_per_connection():
    with limits(COMMANDS_PER_SECOND=1, COMMAND_BURST=3):
        comm = await connect()
        for _ in range(5):
            await send(comm, action="launch")
        texts = [await comm.receive_from() for _ in range(5)]
        assert sum("slow down" in t for t in texts) == 2
        await comm.disconnect()


async def test_runs_per_client_are_bounded():
    with limits(MAX_RUNS_PER_CLIENT=2):
        comms = [await connect() for _ in range(3)]
        for comm in comms[:2]:
            await send(comm, action="start")
            await next_frame(comm)
        await send(comms[2], action="start")
        assert "You already have 2 live runs" in html.unescape(await comms[2].receive_from())
        for comm in comms:
            await comm.disconnect()


async def test_a_second_viewer_joins_by_run_id_sees_the_same_run_and_steers_it():
    with limits():
        owner = await connect()
        await send(owner, action="start", seed="11")
        first, _ = await next_frame(owner)
        viewer = await connect(f"?run={first['run']}")
        joined, _ = await next_frame(viewer)
        assert joined["run"] == first["run"] and joined["link"] == first["link"]
        await send(viewer, action="pause")
        await next_frame(owner, where=lambda f: not f["playing"])
        await owner.disconnect()
        await viewer.disconnect()


async def test_joining_a_run_that_does_not_exist_says_so():
    with limits():
        comm = await connect("?run=nosuchrun0000000")
        assert "has ended or does not exist" in await comm.receive_from(timeout=5)
        await comm.disconnect()


async def test_start_again_replaces_the_connections_own_run():
    with limits():
        comm = await connect()
        await send(comm, action="start", seed="1")
        first, _ = await next_frame(comm)
        await send(comm, action="start", seed="2")
        second, _ = await next_frame(comm, where=lambda f: f["run"] != first["run"])
        assert second["link"].startswith("/patterns/toy/?seed=2")
        await asyncio.sleep(0.3)
        assert first["run"] not in await live_runs()
        await comm.disconnect()


async def test_runs_without_viewers_are_reaped():
    with limits():
        comm = await connect()
        await send(comm, action="start")
        frame, _ = await next_frame(comm)
        assert frame["run"] in await live_runs()
        await comm.disconnect()
        for _ in range(40):
            await asyncio.sleep(0.05)
            if frame["run"] not in await live_runs():
                break
        assert frame["run"] not in await live_runs()


async def test_unknown_pattern_and_foreign_origin_are_refused():
    comm = WebsocketCommunicator(application, "/ws/patterns/nope/", headers=ORIGIN)
    connected, _ = await comm.connect()
    assert not connected
    comm = WebsocketCommunicator(application, "/ws/patterns/toy/", headers=[(b"origin", b"http://evil.example")])
    connected, _ = await comm.connect()
    assert not connected


async def test_a_reconnected_page_rejoins_its_run_by_id():
    with limits():
        owner = await connect()
        await send(owner, action="start", seed="3")
        first, _ = await next_frame(owner)
        again = await connect()
        await send(again, action="join", run=first["run"])
        joined, _ = await next_frame(again)
        assert joined["run"] == first["run"]
        await send(again, action="join", run="../../etc")  # refused, and the page stays on its run
        while frame_of(text := await again.receive_from()) is not None:
            pass
        assert "run: that run id is not valid" in text
        bad = await connect("?run=%3Cx%3E")
        assert "that run id is not valid" in await bad.receive_from()
        for comm in (owner, again, bad):
            await comm.disconnect()


async def test_a_malformed_command_on_the_channel_layer_does_not_stop_the_run():
    with limits():
        comm = await connect()
        await send(comm, action="start")
        first, _ = await next_frame(comm)
        layer = get_channel_layer()
        for bad in ({"action": "speed"}, {"action": "seek", "t": "x"}, {"action": "command", "command": "nope"}):
            await layer.group_send(cmd_group(first["run"]), {"type": "run.command", "run": first["run"], **bad})
        later, _ = await next_frame(comm, where=lambda f: f["t"] > first["t"] + 0.5)
        assert later["run"] == first["run"] and later["playing"]
        await comm.disconnect()


async def test_a_run_too_heavy_for_its_speed_falls_behind_and_says_so():
    with limits():
        heavy = await connect()
        await send(heavy, action="start", rate="1000", nodes="8")
        await next_frame(heavy)
        await send(heavy, action="speed", speed="100")
        _, text = await next_frame(heavy, timeout=10, where=lambda f: f["speed"] == 100 and f["t"] > 2)
        while "Falling behind" not in text:
            _, text = await next_frame(heavy, timeout=5)
        await send(heavy, action="speed", speed="0.1")
        _, text = await next_frame(heavy, where=lambda f: f["speed"] == 0.1)
        _, text = await next_frame(heavy)
        assert "Falling behind" not in text
        await heavy.disconnect()
