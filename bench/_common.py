"""Helpers shared by the benchmark scripts: Django set-up, a daphne subprocess, percentiles, output, the command line.

Chromium's path and arguments and `free_port` come from `tests/support.py` (plain helpers, no pytest), not from
`tests/conftest.py`: that module needs pytest and registers the tests' toy pattern as a side effect.
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests import support  # noqa: E402 - importable once ROOT is on sys.path

SLUG = "circuit-breaker"
CHROMIUM = support.CHROMIUM
CHROMIUM_ARGS = [
    *support.CHROMIUM_ARGS,
    "--no-proxy-server",  # every request goes to 127.0.0.1, whatever the environment says
]
free_port = support.free_port


def require_chromium() -> None:
    """A browser benchmark stops at once, saying why, where Debian's Chromium is missing."""
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"Chromium is not installed at {CHROMIUM} (Debian's chromium package)")


def open_screen(pw: Any, *, headed: bool = False) -> tuple[Any, Any]:
    """Chromium and a 1366x800 context in it: the screen the pages are laid out for. ``bypass_csp``: the probes
    are strings Playwright evaluates, which the page's CSP forbids (no eval)."""
    browser = pw.chromium.launch(executable_path=CHROMIUM, headless=not headed, args=CHROMIUM_ARGS)
    return browser, browser.new_context(viewport={"width": 1366, "height": 800}, bypass_csp=True)


# Reference figures from docs/ARCHITECTURE.md, "How a frame travels" (2 KB frames, 200 viewers).
REF_RAW_WEBSOCKETS_US = (25.0, 30.0)
REF_NAIVE_CHANNELS_US = 450.0


def bench_env(var_dir: str | Path) -> dict[str, str]:
    """Environment for Django in a benchmark: a throwaway var dir, so nothing is written into the repository."""
    return {
        "DJANGO_SETTINGS_MODULE": "playground.settings",
        "PLAYGROUND_VAR_DIR": str(var_dir),
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-only-not-secret"),
        "PYTHONUNBUFFERED": "1",
    }


def setup_django() -> None:
    """django.setup() with playground.settings (the live limits in settings.PLAYGROUND)."""
    var_dir = tempfile.mkdtemp(prefix="pg-bench-")
    atexit.register(shutil.rmtree, var_dir, True)
    for key, value in bench_env(var_dir).items():
        os.environ.setdefault(key, value)
    import django

    django.setup()


class Daphne:
    """One daphne process (in-memory channel layer) on a free port of 127.0.0.1; a context manager."""

    def __init__(self, extra_env: dict[str, str] | None = None):
        self.tmp = Path(tempfile.mkdtemp(prefix="pg-bench-daphne-"))
        self.port = free_port()
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        self.log_path = self.tmp / "daphne.log"
        self.log_text = ""  # the whole log, kept when the process and its directory are gone

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def __enter__(self) -> Daphne:
        env = {**os.environ, **bench_env(self.tmp), **self.extra_env}
        env.pop("REDIS_URL", None)  # in-memory layer: one process
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "playground.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                opener.open(f"{self.base_url}/", timeout=1).read()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError(f"daphne did not start: {self.log_tail()}")

    def __exit__(self, *exc: Any) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        self.log_text = self.log_path.read_text(errors="replace") if self.log_path.exists() else self.log_text
        shutil.rmtree(self.tmp, ignore_errors=True)

    def cpu_seconds(self) -> float:
        """utime + stime of the daphne process, from /proc/<pid>/stat."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": fields[0] is the state (field 3)
        utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
        return (utime + stime) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return self.log_text[-chars:]

    def http_errors(self) -> list[str]:
        """Access-log lines of responses with a 4xx or 5xx status (after the process has ended)."""
        return [line.strip() for line in self.log_text.splitlines() if '" 4' in line or '" 5' in line]


def percentile(values: Iterable[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100); NaN for no values."""
    data = sorted(values)
    if not data:
        return math.nan
    k = (len(data) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values) if values else math.nan,
        "mean": sum(values) / len(values) if values else math.nan,
    }


def dump_json(result: dict[str, Any]) -> None:
    """Strict JSON on stdout: NaN and infinities become null."""
    print(json.dumps(_clean(result), indent=2, default=str))


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def machine() -> dict[str, Any]:
    """Where the figures were taken. The processor is part of it: an engine's share of the bare loop's event rate
    is a ratio of two interpreted loops, and the same code's share has differed by a fifth between two processors,
    so only figures taken on one processor compare."""
    return {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "platform": sys.platform,
        "processor": _processor(),
    }


def _processor() -> str:
    """The processor's model name as Linux reports it (``platform.processor()`` is empty there), or the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def machine_text(found: dict[str, Any]) -> str:
    """`machine()` in words, for a report's first lines."""
    return f"python {found['python']}, {found['cpus']} CPUs, {found['processor']}"


def bench_parser(doc: str) -> argparse.ArgumentParser:
    """A script's argument parser: the first paragraph of its docstring as description, and --json."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")
    return parser


def run_benchmark(
    argv: list[str] | None,
    parse_args: Callable[[list[str] | None], argparse.Namespace],
    measure: Callable[[argparse.Namespace], dict[str, Any]],
    report: Callable[[dict[str, Any]], None],
) -> None:
    """A script's main: parse the arguments, measure, then print the result as JSON (--json) or as text."""
    args = parse_args(argv)
    result = measure(args)
    if args.json:
        dump_json(result)
    else:
        report(result)
