"""`python app.py ws-client`: chat with an agent over the WebSocket API from a terminal."""

from __future__ import annotations

import argparse
import base64
import json
import sys


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="app.py ws-client", description="Chat over the WebSocket API.")
    parser.add_argument("--url", default="ws://127.0.0.1:7860/ws")
    parser.add_argument("--agent", required=True, help="agent to load (or create with --create)")
    parser.add_argument("--create", action="store_true", help="create the agent first")
    parser.add_argument("--preset", default=None)
    parser.add_argument("--persona", default=None)
    parser.add_argument("--human", default=None)
    parser.add_argument("--auth", default=None, help="user:password when the server requires a login")
    return parser.parse_args(argv)


PREFIX = {"internal_monologue": "  (thinking) ", "assistant_message": "agent: ", "function_message": "  [function] "}


def show(frame: dict) -> bool:
    """Print one frame; True when the exchange is over."""
    kind = frame.get("type")
    if kind == "agent_response":
        print(PREFIX.get(str(frame.get("message_type")), "") + str(frame.get("message", "")))
    elif kind in ("agent_response_error", "server_error"):
        print(f"error: {frame.get('message')}")
        return kind == "server_error"
    return kind == "agent_response_end"


def main(argv: list[str]) -> int:
    from websockets.sync.client import connect

    args = parse(argv)
    headers = {}
    if args.auth:
        headers["Authorization"] = "Basic " + base64.b64encode(args.auth.encode()).decode()
    try:
        socket = connect(args.url, additional_headers=headers, max_size=2**22)
    except Exception as e:
        print(f"error: cannot connect to {args.url}: {e}", file=sys.stderr)
        return 2
    with socket:
        if args.create:
            config = {k: v for k, v in {"name": args.agent, "preset": args.preset, "persona": args.persona,
                                        "human": args.human}.items() if v}
            socket.send(json.dumps({"type": "command", "command": "create_agent", "config": config}))
        else:
            socket.send(json.dumps({"type": "command", "command": "load_agent", "name": args.agent}))
        answer = json.loads(socket.recv())
        if answer.get("status") != "OK":
            print(f"error: {answer.get('message')}", file=sys.stderr)
            return 2
        print(f"Talking to {args.agent} over {args.url}. Ctrl-D to quit.")
        while True:
            try:
                text = input("you: ")
            except (EOFError, KeyboardInterrupt):
                print()
                return 0
            if not text.strip():
                continue
            socket.send(json.dumps({"type": "user_message", "message": text}))
            while not show(json.loads(socket.recv())):
                pass
