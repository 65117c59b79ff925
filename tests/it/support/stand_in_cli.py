#!/usr/bin/env python3
"""A stand-in for the `claude` CLI that speaks just enough stream-json for load tests:
it answers `initialize` (and any other control request) with success, and answers each
user message with `system/init`, the reply as several text deltas, the whole assistant
message and a `result`. The reply names the message it answers and the turn number, so
a test can tell every stream apart. No model, no files: dozens can run at once."""
import json
import sys

session = "stand-in"
for arg in sys.argv[1:]:
    if arg.startswith("--session-id=") or arg.startswith("--resume="):
        session = arg.split("=", 1)[1]


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


turn = 0
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    kind = msg.get("type")
    if kind == "control_request":
        sub = msg.get("request", {}).get("subtype")
        response = {"commands": [], "models": [], "pid": 0} if sub == "initialize" else {}
        send({"type": "control_response", "response": {"subtype": "success", "request_id": msg.get("request_id"), "response": response}})
    elif kind == "user":
        turn += 1
        content = msg.get("message", {}).get("content")
        if isinstance(content, list):
            content = " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
        words = ("Answer %d to [%s] from the stand-in." % (turn, content)).split(" ")
        text = " ".join(words)
        send({"type": "system", "subtype": "init", "session_id": session, "tools": [], "model": "stand-in", "permissionMode": "default"})
        send({"type": "stream_event", "event": {"type": "message_start", "message": {"id": "msg_%d" % turn, "model": "stand-in"}}, "parent_tool_use_id": None})
        send({"type": "stream_event", "event": {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}, "parent_tool_use_id": None})
        for i, w in enumerate(words):
            send({"type": "stream_event", "event": {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": (" " if i else "") + w}}, "parent_tool_use_id": None})
        send({"type": "stream_event", "event": {"type": "content_block_stop", "index": 0}, "parent_tool_use_id": None})
        send({"type": "assistant", "message": {"id": "msg_%d" % turn, "role": "assistant", "model": "stand-in", "content": [{"type": "text", "text": text}]}, "parent_tool_use_id": None, "session_id": session})
        send({"type": "result", "subtype": "success", "is_error": False, "result": text, "session_id": session, "total_cost_usd": 0, "permission_denials": []})
