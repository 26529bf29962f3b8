"""`manage.py simulate PATTERN ...`: run any scenario headless and print its events or its diagrams."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from patterns.core.export import event_lines
from patterns.core.player import Player
from patterns.core.registry import all_patterns, get_pattern
from patterns.core.scenario import ScenarioError, decode
from patterns.core.story import NOT_REACHED, OFF_SCRIPT, describe, tracker_for

FORMATS = ("jsonl", "text", "mermaid", "story")


class Command(BaseCommand):
    help = "Run a pattern's scenario without a browser and print its events (JSON lines) or diagrams."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("pattern", help="pattern slug, e.g. circuit-breaker")
        parser.add_argument("--describe", action="store_true", help="print parameters, commands, event types")
        parser.add_argument("--seed", help="random seed (0 to 4294967295)")
        parser.add_argument("--until", type=float, help="virtual seconds to simulate (default 60)")
        parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="set a parameter")
        parser.add_argument(
            "--do", action="append", default=[], metavar='"TIME COMMAND [ARG=VALUE ...]"', help="script a perturbation"
        )
        parser.add_argument("--preset", help="start from a named preset")
        parser.add_argument("--link", help="a scenario link or its query string; other options add to it")
        parser.add_argument("--format", choices=FORMATS, default="jsonl")

    def handle(self, *args, **options) -> None:
        pattern = get_pattern(options["pattern"])
        if pattern is None:
            known = ", ".join(p.slug for p in all_patterns())
            raise CommandError(f"unknown pattern {options['pattern']!r}; known patterns: {known}")
        if options["describe"]:
            described = pattern.describe()
            for preset, out in zip(pattern.presets, described["presets"], strict=True):
                if preset.chapters:
                    out["chapters"] = describe(preset)
            self.stdout.write(json.dumps(described, indent=2))
            return
        pairs, until = self._pairs(options)
        try:
            scenario = decode(
                pattern, pairs, ignore=("run", "until"), max_actions=settings.PLAYGROUND["MAX_SCRIPT_ACTIONS"]
            )
        except ScenarioError as exc:
            raise CommandError("invalid scenario: " + "; ".join(exc.problems)) from None
        limits = settings.PLAYGROUND
        if not 0 <= until <= limits["MAX_VIRTUAL_TIME"]:
            raise CommandError(f"--until must be from 0 to {limits['MAX_VIRTUAL_TIME']:g} seconds")
        player = Player(pattern, scenario, limits)
        if options["format"] == "story":
            self._story(pattern, scenario, player, until)
            return
        lines = event_lines(player, until)
        if options["format"] == "jsonl":
            for line in lines:
                self.stdout.write(line)
        elif options["format"] == "text":
            for line in lines:
                event = json.loads(line)
                fields = " ".join(f"{k}={v}" for k, v in event.items() if k not in ("seq", "t", "type"))
                self.stdout.write(f"{event['t']:>12.6f} #{event['seq']:<7} {event['type']:<20} {fields}")
        else:
            for _ in lines:
                pass
            for diagram in pattern.diagrams:
                drawing = diagram.draw(player.engine)
                if drawing.mermaid:
                    self.stdout.write(f"%% {diagram.name}: {diagram.title}\n{drawing.mermaid}\n")
        if player.stopped:
            self.stderr.write(f"stopped early: {player.stopped}")

    def _story(self, pattern, scenario, player, until: float) -> None:
        """Each chapter of the scenario's story with the virtual time it was reached, or that it was not."""
        tracker = tracker_for(pattern, scenario)
        if tracker is None:
            told = ", ".join(p.slug for p in pattern.presets if p.chapters) or "none"
            raise CommandError(f"--format story needs a preset that tells a story (--preset NAME; these do: {told})")
        tracker.feed(player.drain(), player.now)
        t = player.now
        while t < until and player.stopped is None:
            t = min(until, t + 1.0)
            player.advance_to(t)
            tracker.feed(player.drain(), player.now)
        self.stdout.write(f"{tracker.preset.title} ({tracker.preset.slug}): {len(tracker.chapters)} chapters")
        for index, chapter in enumerate(tracker.chapters):
            when = f"{tracker.reached[index].t:9.3f} s" if index < len(tracker.reached) else f"{NOT_REACHED:>11}"
            self.stdout.write(f"{index + 1:>3}. {when}  {chapter.text}")
        if tracker.off_script:
            self.stdout.write(OFF_SCRIPT)
        if player.stopped:
            self.stderr.write(f"stopped early: {player.stopped}")

    def _pairs(self, options) -> tuple[list[tuple[str, str]], float]:
        pairs: list[tuple[str, str]] = []
        if options["link"]:
            link = options["link"]
            query = urlsplit(link).query if "?" in link else link
            pairs.extend(parse_qsl(query.lstrip("?"), keep_blank_values=True))
        try:
            until = float(dict(pairs).get("until", 60))
        except ValueError:
            raise CommandError("until in the link must be a number of seconds") from None
        if options["until"] is not None:
            until = options["until"]
        if options["preset"]:
            pairs.insert(0, ("preset", options["preset"]))
        if options["seed"] is not None:
            pairs.append(("seed", options["seed"]))
        for item in options["set"]:
            name, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--set {item!r}: expected NAME=VALUE")
            pairs.append((name.strip(), value))
        for item in options["do"]:
            pairs.append(("do", _do_text(item)))
        return pairs, until


def _do_text(item: str) -> str:
    """``"30 outage on=true"`` (or the link form ``30:outage:on=true``) as the link form."""
    if ":" in item.split(" ", 1)[0]:
        return item.strip()
    parts = item.split()
    if len(parts) < 2:
        raise CommandError(f'--do {item!r}: expected "TIME COMMAND [ARG=VALUE ...]"')
    return f"{parts[0]}:{parts[1]}" + (":" + ",".join(parts[2:]) if len(parts) > 2 else "")
