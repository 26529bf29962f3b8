from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The kernel, the live machinery and the generic pages every pattern shares."""

    name = "patterns.core"
    label = "core"
