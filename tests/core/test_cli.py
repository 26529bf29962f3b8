"""The headless CLI: same events as everywhere else, byte for byte, in any process."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parents[2]


def simulate(*args):
    out = StringIO()
    call_command("simulate", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_jsonl_events_with_set_do_and_link():
    out = simulate(
        "toy",
        "--seed",
        "3",
        "--until",
        "4",
        "--set",
        "rate=8",
        "--do",
        "2 bump node=1 by=5",
        "--link",
        "?do=3:pause:node=0,on=true",
    )
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["seq"] for e in events] == list(range(len(events)))
    commands = [(e["t"], e["command"], e["args"]) for e in events if e["type"] == "command"]
    assert commands == [(2.0, "bump", {"node": 1, "by": 5}), (3.0, "pause", {"node": 0, "on": True})]
    assert max(e["t"] for e in events) <= 4


def test_text_and_mermaid_formats():
    assert " tick " in simulate("toy", "--until", "2", "--format", "text")
    assert simulate("toy", "--until", "2", "--format", "mermaid").startswith("%% nodes: Nodes\nflowchart LR")


def test_describe_prints_parameters_commands_and_event_types():
    data = json.loads(simulate("toy", "--describe"))
    assert {p["name"] for p in data["parameters"]} == {"nodes", "rate", "mode", "loud"}
    assert data["commands"][0]["args"][0]["max"] == 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "unknown pattern 'nope'; known patterns:"),
        (["toy", "--set", "rate"], "expected NAME=VALUE"),
        (["toy", "--set", "rate=0"], "rate: 0.0 is below the minimum 0.1"),
        (["toy", "--do", "soon"], 'expected "TIME COMMAND'),
        (["toy", "--do", "1 explode"], "'explode' is not a command"),
        (["toy", "--until", "99999"], "--until must be from 0 to 3600"),
        (["toy", "--seed", "x"], "seed: expected a whole number"),
    ],
)
def test_invalid_arguments_fail_with_a_clear_message(args, message):
    with pytest.raises(CommandError, match=None) as info:
        simulate(*args)
    assert message in str(info.value)


def test_the_same_scenario_gives_byte_identical_events_across_processes_and_hash_seeds():
    cmd = [
        sys.executable,
        "manage.py",
        "simulate",
        "circuit-breaker",
        "--seed",
        "77",
        "--until",
        "120",
        "--link",
        "?preset=flaky",
    ]
    outputs = []
    for hash_seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=True)
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0].count(b"\n") > 500


def test_every_preset_of_every_pattern_gives_the_same_events_whatever_the_hash_seed():
    """Three processes at once (PYTHONHASHSEED 0, 1, 12345) each digest every preset's first 15 virtual seconds,
    and the digests are the pinned ones: a change that alters any preset's events must say so by pinning anew
    (`python -m tests.core.preset_digests 15 > tests/core/preset_digests.txt`)."""
    cmd = [sys.executable, "-m", "tests.core.preset_digests", "15"]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": seed}, stdout=subprocess.PIPE)
        for seed in ("0", "1", "12345")
    ]
    outputs = [proc.communicate(timeout=300)[0].decode() for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0] == (ROOT / "tests" / "core" / "preset_digests.txt").read_text()
    rows = [line.split() for line in outputs[0].splitlines()]
    assert {row[0] for row in rows} == {"circuit-breaker", "raft", "load-balancing", "messaging"}
    assert all(int(count) > 0 for _slug, _preset, count, _digest in rows), rows
