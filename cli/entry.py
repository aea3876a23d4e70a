"""The entry point: `python app.py` and the `memgpt` command both run `main()`.

With no sub-command it serves the web app (also how a Hugging Face Space runs it);
sub-commands (`chat`, `load ...`, `ws`, ...) are the terminal faces, in cli/.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys


def parse_args(argv: list[str]) -> argparse.Namespace:
    from cli.main import DATABASE_URL_HELP

    parser = argparse.ArgumentParser(
        description="MemGPT: an agent with self-editing memory. With no command: serve the web app.",
        epilog=f"commands: {', '.join(SUBCOMMANDS)} (see COMMAND --help)")
    # On a Hugging Face Space (SPACE_ID is set) the app must listen on all interfaces.
    on_space = bool(os.environ.get("SPACE_ID"))
    parser.add_argument("--host", default=os.environ.get("MEMGPT_HOST", "0.0.0.0" if on_space else "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("MEMGPT_PORT", "7860")))
    parser.add_argument("--home", default=None, help="data home (default: $MEMGPT_HOME or ~/.memgpt)")
    parser.add_argument("--database-url", metavar="URL", default=None, help=DATABASE_URL_HELP + "; before a "
                        "command it applies to the command too")
    parser.add_argument("--share", action="store_true", help="create a public Gradio link (needs internet)")
    parser.add_argument("--auth", default=None, help="require a login, as user:password (or set MEMGPT_AUTH)")
    parser.add_argument("--import-root", action="append", default=None, metavar="DIR",
                        help="let the page load folders under DIR (repeatable; or MEMGPT_IMPORT_ROOT). "
                             "Ignored when the app is exposed (beyond loopback, --share, a Space)")
    parser.add_argument("--no-auth", action="store_true", default=on_space,
                        help="allow serving beyond loopback without a login (the default on a Space, "
                             "whose visibility settings decide who can reach it)")
    return parser.parse_args(argv)


SUBCOMMANDS = ("run", "chat", "load", "configure", "list", "add", "attach", "export", "import", "version", "ws", "ws-client",
               "backup", "migrate")


def _global_database_url(argv: list[str]) -> list[str]:
    """`--database-url URL` before a command: it becomes MEMGPT_DATABASE_URL, which every face's settings read."""
    while argv and ((argv[0] == "--database-url" and len(argv) > 1) or argv[0].startswith("--database-url=")):
        if "=" in argv[0]:
            os.environ["MEMGPT_DATABASE_URL"], argv = argv[0].split("=", 1)[1], argv[1:]
        else:
            os.environ["MEMGPT_DATABASE_URL"], argv = argv[1], argv[2:]
    return argv


def main(argv: list[str] | None = None) -> int:
    argv = _global_database_url(sys.argv[1:] if argv is None else list(argv))
    if argv and argv[0] in SUBCOMMANDS:
        from cli.main import run

        return run(argv)
    args = parse_args(argv)
    if args.database_url:
        os.environ["MEMGPT_DATABASE_URL"] = args.database_url
    from engine.errors import MemGPTError
    from engine.runtime import open_runtime
    from webapp.app import build_demo
    from webapp.exposure import Exposure, is_exposed
    from webapp.serve import launch

    # SIGTERM (a Space restarting, `kill`, systemd) ends the app like Ctrl-C, so the store
    # closes and folds its write-ahead log into memgpt.db instead of leaving it in -wal.
    signal.signal(signal.SIGTERM, _interrupt)
    runtime = None
    try:
        runtime = open_runtime(args.home)
        print(f"Data home: {runtime.settings.home}")
        print(f"Store: {runtime.store.describe()}")  # the operator's console; never the password
        exposure = Exposure.build(exposed=is_exposed(args.host, args.share), roots=args.import_root,
                                  home=runtime.settings.home)
        if exposure.import_roots and exposure.exposed:
            print("Import roots are ignored: the app is exposed, so the page loads uploaded files only.")
        launch(build_demo(runtime, exposure), runtime, host=args.host, port=args.port, share=args.share, auth=args.auth,
               waive_auth=args.no_auth)
    except MemGPTError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        if runtime is not None:
            runtime.close()
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def console() -> None:
    """The `memgpt` console script."""
    sys.exit(main())


if __name__ == "__main__":
    console()
