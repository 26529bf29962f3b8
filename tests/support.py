"""Plain helpers for the tests and the benchmarks (bench/_common.py): Chromium's path and launch arguments, a free
port, a daphne subprocess, the same Python run under several hash seeds.

No pytest and no side effects here, so that the benchmarks can import this module without tests/conftest.py
(which needs pytest and registers the tests' toy pattern).
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_daphne(tmp: Path, port: int, extra_env: dict | None = None) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "playground.settings",
        "PLAYGROUND_VAR_DIR": str(tmp),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    log = open(tmp / f"daphne-{port}.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "playground.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"daphne did not start: {(tmp / f'daphne-{port}.log').read_text()[-2000:]}")


def outputs_under_hash_seeds(
    code_or_args: str | Sequence[str], seeds: Sequence[str] = ("1", "2"), env: dict[str, str] | None = None
) -> list[str]:
    """The stdout of a fresh Python process per PYTHONHASHSEED in `seeds`, in that order, each run from the root.

    `code_or_args` is code for `python -c` (a string) or the arguments after `python` (e.g. manage.py and its
    words). String hashes, and with them the order of sets of strings, are fixed for a process's life: only fresh
    processes with other seeds show whether that order leaks into what a run prints. A failed run raises with its
    stderr, so that the test says why rather than only that the process failed.
    """
    args = ["-c", code_or_args] if isinstance(code_or_args, str) else list(code_or_args)
    outputs = []
    for seed in seeds:
        done = subprocess.run(
            [sys.executable, *args],
            cwd=ROOT,
            env={**os.environ, **(env or {}), "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode:
            raise RuntimeError(f"PYTHONHASHSEED={seed}: exit status {done.returncode}\n{done.stderr[-4000:]}")
        outputs.append(done.stdout)
    return outputs
