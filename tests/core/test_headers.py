"""Headers, hostile query strings, and the production settings behind a TLS-terminating proxy."""

import json
import logging
import os
import subprocess
import sys

import pytest
from django.test import override_settings

from ..support import ROOT


def test_every_page_has_a_csp_without_inline_scripts(client):
    response = client.get("/patterns/toy/")
    policy = response.headers["Content-Security-Policy"]
    script = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script
    body = response.content.decode()
    assert "<script>" not in body and "playground/theme.js" in body


@pytest.mark.parametrize(
    "query",
    [
        "&" * 1000,
        "run=x" + "&run=y" * 1200,
        "rate=" + "9" * 100_000,
        "%ZZ%C3&%&run=%C3%A9&rate=%FF",
        "do=" + "%" * 3000,
    ],
)
@pytest.mark.parametrize("page", ["/patterns/toy/", "/patterns/toy/events.jsonl"])
def test_a_hostile_query_string_is_a_400_logged_without_a_traceback(client, caplog, page, query):
    response = client.get(f"{page}?{query}")
    assert response.status_code == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def production(**env):
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.SECURE_PROXY_SSL_HEADER, s.SECURE_SSL_REDIRECT, s.SECURE_REDIRECT_EXEMPT]))"
    )
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "playground.production", **env}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True)
    return json.loads(done.stdout)


def test_production_trusts_x_forwarded_proto_only_when_told_a_proxy_sets_it(client):
    header, redirect, exempt = production()
    assert header is None and redirect
    assert production(DJANGO_TLS_PROXY="1")[0] == ["HTTP_X_FORWARDED_PROTO", "https"]
    with override_settings(SECURE_SSL_REDIRECT=True, SECURE_REDIRECT_EXEMPT=exempt):
        assert client.get("/patterns/toy/", HTTP_X_FORWARDED_PROTO="https").status_code == 301  # not trusted
        assert client.get("/static/playground/site.css").status_code == 200  # static files are not redirected
        with override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
            assert client.get("/patterns/toy/", HTTP_X_FORWARDED_PROTO="https").status_code == 200
