from django.apps import AppConfig


class CircuitBreakerConfig(AppConfig):
    name = "patterns.circuit_breaker"
    label = "circuit_breaker"

    def ready(self) -> None:
        from patterns.core.registry import register

        from .pattern import PATTERN

        register(PATTERN)
