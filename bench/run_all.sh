#!/bin/sh
# Run every benchmark in sequence with its defaults (ten minutes or so in all).
# Arguments are passed to each script, e.g. `bench/run_all.sh --json`. PYTHON overrides the interpreter.
# A failing benchmark does not stop the others; the exit status says whether any failed.
set -u
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
status=0
for script in engine_speed ws_fanout heavy_runs export_stall browser_budget raft_speed raft_checker lb_speed lb_tables messaging_speed; do
    echo "== bench/$script.py" >&2
    "$PYTHON" "bench/$script.py" "$@" || { echo "!! bench/$script.py failed" >&2; status=1; }
done
exit $status
