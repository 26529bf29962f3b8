from django.apps import AppConfig


class LoadBalancingConfig(AppConfig):
    name = "patterns.load_balancing"
    label = "load_balancing"

    def ready(self) -> None:
        from patterns.core.registry import register

        from .pattern import PATTERN

        register(PATTERN)
