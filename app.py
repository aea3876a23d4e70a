"""Entry point: `python app.py` serves the web app (also how a Hugging Face Space runs it)."""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="MemGPT: an agent with self-editing memory.")
    parser.add_argument("--host", default=os.environ.get("MEMGPT_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("MEMGPT_PORT", "7860")))
    parser.add_argument("--home", default=None, help="data home (default: $MEMGPT_HOME or ~/.memgpt)")
    parser.add_argument("--share", action="store_true", help="create a public Gradio link (needs internet)")
    parser.add_argument("--auth", default=None, help="require a login, as user:password (or set MEMGPT_AUTH)")
    parser.add_argument("--no-auth", action="store_true", help="allow serving beyond loopback without a login")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from engine.errors import MemGPTError
    from engine.runtime import open_runtime
    from webapp.app import build_demo
    from webapp.serve import launch

    try:
        runtime = open_runtime(args.home)
        print(f"Data home: {runtime.settings.home}")
        launch(build_demo(runtime), host=args.host, port=args.port, share=args.share, auth=args.auth,
               waive_auth=args.no_auth)
    except MemGPTError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
