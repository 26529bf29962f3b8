"""The replicated state machine: a key-value store with client sessions, so that a retried command applies once.

A session remembers, per client, the last sequence number applied and its result. A client has one operation
outstanding at a time, so a command whose sequence number is not above the session's is a retry (or a copy the
leader logged twice): it changes nothing and answers with the remembered result.
"""

from __future__ import annotations

from typing import Any

CLIENT_OPS = ("get", "set", "delete", "cas")


class StateMachine:
    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.kv: dict[str, str] = dict(data["kv"]) if data else {}
        self.sessions: dict[str, list[Any]] = {c: list(s) for c, s in data["sessions"].items()} if data else {}

    def snapshot(self) -> dict[str, Any]:
        return {"kv": dict(self.kv), "sessions": {c: list(s) for c, s in self.sessions.items()}}

    def apply(self, command: dict[str, Any]) -> Any:
        """Apply one log entry's command once per client session (one function, not two: every server applies
        every entry)."""
        op = command["op"]
        if op not in CLIENT_OPS:
            return None  # noop and config entries change only Raft's own state
        client, seq = command["client"], command["seq"]
        session = self.sessions.get(client)
        if session is not None and seq <= session[0]:
            return session[1] if seq == session[0] else None
        kv, key = self.kv, command["key"]
        if op == "get":
            result = kv.get(key)
        elif op == "set":
            kv[key] = command["value"]
            result = "ok"
        elif op == "delete":
            kv.pop(key, None)
            result = "ok"
        elif kv.get(key) == command["expected"]:  # cas
            kv[key] = command["value"]
            result = True
        else:
            result = False
        self.sessions[client] = [seq, result]
        return result

    def answered(self, client: str, seq: int) -> tuple[bool, Any]:
        """(True, result) if (client, seq) was applied already: a retry is answered from the session."""
        session = self.sessions.get(client)
        if session is not None and session[0] == seq:
            return True, session[1]
        return False, None
