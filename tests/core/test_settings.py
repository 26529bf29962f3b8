"""Deployment settings: debug off unless asked for, and `check --deploy` clean with the production module."""

import os
import secrets
import subprocess
import sys

from ..support import ROOT


def run_check(module: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": module, **env}
    environment.pop("DJANGO_DEBUG", None)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )


def debug_flag(**env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_DEBUG"}
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    environment.update(DJANGO_SETTINGS_MODULE="playground.settings", **env)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_debug_is_off_unless_the_environment_turns_it_on():
    assert debug_flag() == "False"
    assert debug_flag(DJANGO_DEBUG="1") == "True"


def test_production_settings_pass_check_deploy():
    done = run_check("playground.production", DJANGO_SECRET_KEY=secrets.token_urlsafe(60))
    assert done.returncode == 0, done.stderr
    assert "no issues" in done.stdout


def test_plain_settings_are_flagged_by_check_deploy():
    assert run_check("playground.settings", DJANGO_SECRET_KEY=secrets.token_urlsafe(60)).returncode != 0
