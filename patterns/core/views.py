"""The pages: generic over the registered patterns, thin on purpose (the work is in the kernel and the engines)."""

from __future__ import annotations

import json
from dataclasses import asdict
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .downloads import Download, DownloadRefused, DownloadResponse
from .frames import context
from .inbound import valid_run_id
from .player import Player
from .registry import Param, Pattern, all_patterns, get_pattern
from .runtime import runtime
from .scenario import ScenarioError, decode_query, default_scenario, encode
from .story import frame as story_frame
from .story import tracker_for

SPEEDS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100)
LINK_ONLY_KEYS = ("run", "until")
MAX_DOWNLOAD_TIME = 600.0  # virtual seconds one events download may simulate


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    cards = [{"pattern": p, "svg": "", **_home_diagram(p.slug)} for p in all_patterns()]
    drawings = {card["name"]: card["drawing"] for card in cards if card["drawing"]}
    frame = json.dumps({"run": None, "frame": 0, "t": 0, "diagrams": drawings}, separators=(",", ":"))
    return render(request, "core/home.html", {"cards": cards, "diagrams": bool(drawings), "frame_json": frame})


@require_GET
def pattern_page(request: HttpRequest, slug: str) -> HttpResponse:
    pattern = _pattern(slug)
    query = request.META.get("QUERY_STRING", "")
    problems: list[str] = []
    try:
        scenario = decode_query(pattern, query, ignore=LINK_ONLY_KEYS, limits=settings.PLAYGROUND)
    except ScenarioError as exc:
        problems = [f"This link could not be used as it is: {p}" for p in exc.problems]
        scenario = default_scenario(pattern)
    player = Player(pattern, scenario, settings.PLAYGROUND)
    tracker = tracker_for(pattern, scenario)
    if tracker is not None:
        tracker.feed(player.drain(), player.now)
    story = story_frame(tracker) if tracker is not None else None
    ctx = context(player, run_id=None, frame=0, playing=False, speed=1.0, log=0, viewers=0, story=story)
    run_id = _link_value(query, "run")
    canonical = encode(pattern, scenario)
    ctx.update(
        scenario=scenario,
        fields=[_field(p, scenario.values[p.name]) for p in pattern.params],
        commands=[{"command": c, "fields": [_field(a, a.default) for a in c.args]} for c in pattern.commands],
        problems=problems,
        speeds=SPEEDS,
        query=canonical,
        # Start sends the preset and only the steps it does not script, as the link does: the run keeps the story
        start_pairs=[(k, v) for k, v in parse_qsl(canonical, keep_blank_values=True) if k in ("preset", "do")],
        story=story,
        share_url=request.build_absolute_uri(f"{request.path}?{canonical}"),
        ws_url=f"/ws/patterns/{pattern.slug}/" + (f"?run={run_id}" if valid_run_id(run_id) else ""),
        diagrams=True,
        focus_diagrams=[next(d for d in pattern.diagrams if d.name == name) for name in pattern.focus_diagrams],
        preset=pattern.preset(request.GET.get("preset", "")) if not problems else None,
        event_type_names=sorted(e.name for e in pattern.all_event_types),
        node_actions_json=json.dumps(node_actions(pattern), separators=(",", ":")),
    )
    return render(request, "core/pattern.html", ctx, status=400 if problems else 200)


@require_GET
async def events(request: HttpRequest, slug: str) -> HttpResponse:
    """The run a link describes as JSON lines: what the CLI prints, for scripts and checkers.

    Simulated by a worker, not here, within a budget of events and CPU per download and a number of downloads at
    once per client (`downloads`), and streamed as it is simulated; past the budget the answer is 422 with the CLI
    command that prints the whole stream."""
    pattern = _pattern(slug)
    query = request.META.get("QUERY_STRING", "")
    try:
        scenario = decode_query(pattern, query, ignore=LINK_ONLY_KEYS, limits=settings.PLAYGROUND)
        until = _until(_link_value(query, "until") or "60")
    except ScenarioError as exc:
        return _plain("\n".join(exc.problems), status=400)
    link = encode(pattern, scenario)
    command = f".venv/bin/python manage.py simulate {slug} --link '?{link}' --until {until:g}"
    client = request.META.get("REMOTE_ADDR") or "unknown"
    download = Download(await runtime(), pattern=slug, query=link, until=until, client=client, command=command)
    try:
        await download.open()
    except DownloadRefused as exc:
        return _plain(str(exc), status=exc.status)
    response = DownloadResponse(download, content_type="application/x-ndjson")
    response["Content-Disposition"] = f'inline; filename="{slug}-{scenario.seed}.jsonl"'
    response["X-Simulated-By"] = download.worker  # which worker process: the web process only writes it out
    return response


@require_GET
def describe(request: HttpRequest, slug: str) -> JsonResponse:
    return JsonResponse(_pattern(slug).describe(), json_dumps_params={"indent": 2})


def _plain(text: str, *, status: int) -> HttpResponse:
    return HttpResponse(text + "\n", status=status, content_type="text/plain; charset=utf-8")


def _link_value(query: str, key: str) -> str:
    """The last value of ``key`` in a query string: read without Django's field-count limit, whose breach is
    logged with a traceback (a link with 1,000 ``&`` is answered by the link checks with a clear 400 instead)."""
    try:
        values = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == key]
    except ValueError:
        return ""
    return values[-1] if values else ""


def node_actions(pattern: Pattern) -> list[dict[str, Any]]:
    """What the page's script needs to offer actions on clicked nodes (the forms themselves are in the page)."""
    return [
        {**asdict(actions), "labels": {name: pattern.command(name).label for name in actions.commands}}
        for actions in pattern.node_actions
    ]


def _field(param: Param, value: Any) -> dict[str, Any]:
    return {"param": param, "value": value, "text": param.format(value)}


def _pattern(slug: str) -> Pattern:
    pattern = get_pattern(slug)
    if pattern is None:
        raise Http404(f"There is no pattern called {slug!r}.")
    return pattern


def _until(text: str) -> float:
    try:
        until = float(text)
    except ValueError:
        until = -1.0
    if not 0 <= until <= MAX_DOWNLOAD_TIME:
        raise ScenarioError([f"until: expected seconds from 0 to {MAX_DOWNLOAD_TIME:g}"])
    return until


PREVIEW_AT = 6.0  # virtual seconds into a pattern's default scenario that its home-page preview shows


@lru_cache(maxsize=32)
def _home_diagram(slug: str) -> dict[str, Any]:
    """A pattern's preview for its card on the home page: its first server-drawn picture PREVIEW_AT seconds into
    its default scenario, sent in the page (so it shows at once, with no script); a pattern with none gets its
    first Mermaid diagram at t = 0, drawn by the browser."""
    pattern = get_pattern(slug)
    player = Player(pattern, default_scenario(pattern), settings.PLAYGROUND)
    drawings = [(diagram, diagram.draw(player.engine)) for diagram in pattern.diagrams]
    if not any(drawing.svg for _, drawing in drawings):
        for diagram, drawing in drawings:
            if drawing.mermaid:
                return {"name": f"{slug}-{diagram.name}", "title": diagram.title, "drawing": asdict(drawing)}
        return {"name": "", "title": "", "drawing": None}
    player.advance_to(PREVIEW_AT)
    for diagram in pattern.diagrams:
        drawing = diagram.draw(player.engine)
        if drawing.svg:
            return {"name": f"{slug}-{diagram.name}", "title": diagram.title, "drawing": None, "svg": drawing.svg}
    return {"name": "", "title": "", "drawing": None}
