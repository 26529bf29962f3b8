from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "patterns.messaging"
    label = "messaging"

    def ready(self) -> None:
        from patterns.core.registry import register

        from .pattern import PATTERN

        register(PATTERN)
