from django.apps import AppConfig


class RaftConfig(AppConfig):
    name = "patterns.raft"
    label = "raft"

    def ready(self) -> None:
        from patterns.core.registry import register

        from .pattern import PATTERN

        register(PATTERN)
