"""Prints one line per preset of every registered pattern: its event count and the SHA-256 of its JSON lines.

Run in a fresh process (``python -m tests.core.preset_digests UNTIL``) by the determinism test, which compares
the output of processes started with different ``PYTHONHASHSEED`` values.
"""

import hashlib
import os
import sys

import django


def main(until: float) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")
    django.setup()
    from django.conf import settings

    from patterns.core.export import event_lines
    from patterns.core.player import Player
    from patterns.core.registry import all_patterns
    from patterns.core.scenario import decode_query

    limits = settings.PLAYGROUND
    for pattern in all_patterns():
        for preset in pattern.presets:
            player = Player(pattern, decode_query(pattern, f"preset={preset.slug}", limits=limits), limits)
            digest = hashlib.sha256()
            count = 0
            for line in event_lines(player, until):
                digest.update(line.encode())
                count += 1
            print(pattern.slug, preset.slug, count, digest.hexdigest(), flush=True)


if __name__ == "__main__":
    main(float(sys.argv[1]))
