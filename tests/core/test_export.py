"""events.jsonl: streamed in slices, byte-identical to the CLI, and bounded in events and CPU per download."""

import asyncio
import json

from django.conf import settings
from django.test import override_settings

from patterns.core.export import Export, event_lines
from patterns.core.player import Player
from patterns.core.scenario import decode_query

from .toy import TOY

HEAVY = "/patterns/load-balancing/events.jsonl?rate=2000&servers=32&algorithms=rr.random.lc.p2c&until=600"


async def body(response):
    return [part async for part in response.streaming_content]


async def test_the_download_streams_in_many_parts_and_is_byte_identical_to_the_cli(async_client):
    query = "seed=3&rate=400&do=1:bump:node=0,by=2"
    response = await async_client.get(f"/patterns/toy/events.jsonl?{query}&until=40")
    parts = await body(response)
    scenario = decode_query(TOY, query, limits=settings.PLAYGROUND)
    cli = "".join(line + "\n" for line in event_lines(Player(TOY, scenario, settings.PLAYGROUND), 40.0))
    assert response.status_code == 200 and len(parts) > 10
    assert b"".join(parts).decode() == cli


async def test_a_download_beyond_the_budget_is_refused_up_front_with_the_cli_command(async_client):
    response = await async_client.get(HEAVY)
    text = response.content.decode()
    assert response.status_code == 422
    assert "This download would take about" in text
    command = (
        ".venv/bin/python manage.py simulate load-balancing "
        "--link '?seed=1&algorithms=rr.random.lc.p2c&rate=2000&servers=32' --until 600"
    )
    assert text.endswith(f"\n{command}\n")


async def test_a_run_heavier_than_its_probe_stops_at_the_budget_and_says_how_to_get_the_rest():
    scenario = decode_query(TOY, "rate=500", limits=settings.PLAYGROUND)
    export = Export(Player(TOY, scenario, settings.PLAYGROUND), 30.0, max_events=300, cpu_seconds=60.0)
    lines = "".join([part async for part in export.rest([], "the whole stream: CLI")]).splitlines()
    assert json.loads(lines[-1]) == {"error": "the whole stream: CLI"}
    assert len(lines) == 300 + 1


async def test_the_event_loop_runs_between_slices():
    scenario = decode_query(TOY, "rate=800", limits=settings.PLAYGROUND)
    export = Export(Player(TOY, scenario, settings.PLAYGROUND), 20.0, max_events=10**6, cpu_seconds=60.0)
    ticks = []

    async def bystander():
        while True:
            ticks.append(export.player.now)
            await asyncio.sleep(0)

    task = asyncio.create_task(bystander())
    async for _ in export.rest([], ""):
        pass
    task.cancel()
    assert len({t for t in ticks if 0 < t < 20.0}) > 10  # it ran at many points in the middle of the export


def test_limits_come_from_settings():
    with override_settings(PLAYGROUND={**settings.PLAYGROUND, "EXPORT_MAX_EVENTS": 5}):
        assert settings.PLAYGROUND["EXPORT_MAX_EVENTS"] == 5
