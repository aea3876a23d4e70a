"""Sub-command dispatch for `python app.py <command> ...`.

`run(argv)` takes the arguments from the sub-command name on and returns an
exit code: 0 done, 1 nothing to do (a load that stored nothing), 2 an error.
Engine errors (`MemGPTError`) and command-line mistakes print one readable
`error: ...` line on stderr, never a traceback; `--debug` adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

from cli import CommandError
from engine.config import ENDPOINT_TYPES
from engine.errors import MemGPTError

LIST_KINDS = ("agents", "humans", "personas", "presets", "sources")
DATABASE_URL_HELP = ("run on this PostgreSQL database (postgresql://user:password@host:5432/name) instead of the "
                     "data home's SQLite file, as MEMGPT_DATABASE_URL does (prefer the variable for a URL with a "
                     "password: arguments show in the process list)")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", default=None, help="data home (default: $MEMGPT_HOME or ~/.memgpt)")
    common.add_argument("--debug", action="store_true", help="show every event, token counts and tracebacks")
    common.add_argument("--database-url", metavar="URL", default=None, help=DATABASE_URL_HELP)

    parser = argparse.ArgumentParser(prog="app.py", description="MemGPT in the terminal.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    chat = sub.add_parser("run", aliases=["chat"], parents=[common],
                          help="talk to an agent (created when the name is new); `chat` is the same")
    chat.add_argument("--agent", help="agent name; a new name creates the agent (none: choose from a list)")
    chat.add_argument("--preset", help="preset for a new agent")
    chat.add_argument("--persona", help="persona for a new agent")
    chat.add_argument("--human", help="human for a new agent")
    chat.add_argument("--model", help="model name (a new agent keeps it; an existing one uses it this session)")
    chat.add_argument("--model-endpoint-type", help="how the model is reached: " + ", ".join(ENDPOINT_TYPES))
    chat.add_argument("--model-endpoint", help="the model server's base URL (or a GGUF path for local)")
    chat.add_argument("--model-wrapper", help="prompt wrapper for a completions server (MemGPT's names work)")
    chat.add_argument("--context-window", type=int, help="the model's context window in tokens")
    chat.add_argument("--first", action="store_true", help="let the agent speak first (one model call at start)")
    chat.add_argument("--strip-ui", action="store_true", help="plain output: no colours or symbols")
    chat.add_argument("-y", "--yes", action="store_true", help="no questions: with no --agent, the newest agent")
    chat.add_argument("--no-verify", action="store_true", help="do not insist that the first reply calls send_message")

    from cli.load import add_parsers as add_load_parsers

    add_load_parsers(sub, common)

    sub.add_parser("configure", parents=[common], help="set models, endpoints, keys and defaults interactively")
    listing = sub.add_parser("list", parents=[common], help="list agents, humans, personas, presets or sources")
    listing.add_argument("kind", choices=LIST_KINDS)

    add = sub.add_parser("add", parents=[common], help="add a persona or human text")
    add.add_argument("kind", choices=("persona", "human"))
    add.add_argument("--name", required=True)
    given = add.add_mutually_exclusive_group(required=True)
    given.add_argument("--text", help="the text itself")
    given.add_argument("-f", "--file", help="a UTF-8 text file holding it")

    attach = sub.add_parser("attach", parents=[common], help="let an agent search a loaded data source")
    attach.add_argument("--agent", required=True)
    attach.add_argument("--source", required=True)

    export = sub.add_parser("export", parents=[common], help="write one agent to a JSON file")
    export.add_argument("--agent", required=True)
    export.add_argument("file")
    imported = sub.add_parser("import", parents=[common], help="create a new agent from an exported JSON file")
    imported.add_argument("file")

    sub.add_parser("version", parents=[common], help="print the version")

    backup = sub.add_parser("backup", parents=[common],
                            help="copy the database into one consistent file (safe while the app runs)")
    backup.add_argument("file", help="where to write the copy")
    backup.add_argument("--force", action="store_true", help="overwrite FILE if it exists")

    migrate = sub.add_parser("migrate", parents=[common],
                             help="copy everything into another, empty database (PostgreSQL or a new SQLite file)")
    migrate.add_argument("--to", required=True, metavar="TARGET",
                         help="a postgresql:// URL (an existing, empty database) or the path of a new SQLite file")

    ws = sub.add_parser("ws", parents=[common], help="serve the WebSocket API alone")
    ws.add_argument("--host", default=os.environ.get("MEMGPT_HOST", "127.0.0.1"))
    # 8282: MemGPT's WebSocket port, where its clients look. The web app's /ws stays on the web port.
    ws.add_argument("--port", type=int, default=int(os.environ.get("MEMGPT_WS_PORT", "8282")))
    ws.add_argument("--auth", default=os.environ.get("MEMGPT_AUTH"), help="require a login, as user:password")
    return parser


def _handler(command: str):
    from cli import manage

    if command in ("run", "chat"):
        return cmd_chat
    if command == "load":
        from cli.load import cmd_load

        return cmd_load
    if command == "ws":
        return cmd_ws
    if command == "backup":
        return cmd_backup
    if command == "migrate":
        return cmd_migrate
    return {"configure": manage.cmd_configure, "list": manage.cmd_list, "add": manage.cmd_add,
            "attach": manage.cmd_attach, "export": manage.cmd_export, "import": manage.cmd_import,
            "version": manage.cmd_version}[command]


def run(argv: list[str]) -> int:
    if argv and argv[0] == "ws-client":
        # The client parses its own arguments; it is written beside the WebSocket server.
        from webapp import ws_client

        return ws_client.main(list(argv[1:]))
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # argparse has printed usage and the problem already
        return e.code if isinstance(e.code, int) else 2
    if getattr(args, "database_url", None):  # read by load_settings when the command opens the runtime
        os.environ["MEMGPT_DATABASE_URL"] = args.database_url
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    debug = getattr(args, "debug", False)
    if debug:  # the engine's own story; the HTTP libraries' debug output would drown it
        logging.getLogger("engine").setLevel(logging.DEBUG)
    try:
        return _handler(args.command)(args) or 0
    except (MemGPTError, CommandError) as e:
        if debug:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return e.code if isinstance(e, CommandError) else 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


# ---------------------------------------------------------------- chat and ws


def _llm_from_flags(base, args):
    """`base` with the model flags of `run` applied (None when no flag was given)."""
    import dataclasses

    changes = {key: value for key, value in (
        ("model", args.model), ("endpoint_type", args.model_endpoint_type), ("endpoint", args.model_endpoint),
        ("wrapper", args.model_wrapper), ("context_window", args.context_window)) if value is not None}
    return dataclasses.replace(base, **changes) if changes else None


def _pick_agent(api, args):
    """With no --agent: the newest agent with -y, else the user's choice from a numbered list (None: a new one)."""
    agents = api.list_agents()
    if not agents:
        return None
    newest = max(agents, key=lambda a: (a.updated_at, a.id))
    if args.yes or not sys.stdin.isatty():
        return newest.name
    print("Agents in this home:")
    for n, agent in enumerate(agents, 1):
        print(f"  {n}) {agent.name}  ({agent.llm.model}, last used {agent.updated_at[:16].replace('T', ' ')})")
    print("  n) a new agent")
    while True:
        answer = input(f"Which one? [{agents.index(newest) + 1}] ").strip().lower()
        if not answer:
            return newest.name
        if answer == "n":
            return None
        if answer.isdigit() and 1 <= int(answer) <= len(agents):
            return agents[int(answer) - 1].name
        print(f"Type a number from 1 to {len(agents)}, or n.")


def _chat_agent(api, args, options):
    """The agent `run` talks to: loaded, or created from the flags when the name is new."""
    from engine.errors import NotFound
    from engine.llm.providers import make_provider

    row = None
    name = args.agent if args.agent else _pick_agent(api, args)
    if name:
        try:
            row = api.get_agent(name)
        except NotFound:
            pass
    if row is None:
        settings = api.settings
        llm = _llm_from_flags(settings.llm, args) or settings.llm
        row = api.create_agent(name or None, preset=args.preset, persona=args.persona, human=args.human, llm=llm)
        print(f"Created agent {row.name} (preset {row.preset}, persona {row.persona}, human {row.human}).")
        return api.open_agent(row.id, options=options), None
    ignored = [flag for flag, value in (("--preset", args.preset), ("--persona", args.persona),
                                         ("--human", args.human)) if value]
    if ignored:
        verb = "shapes" if len(ignored) == 1 else "shape"
        print(f"note: {', '.join(ignored)} only {verb} a new agent; {row.name} keeps its own.", file=sys.stderr)
    provider = None
    override = _llm_from_flags(row.llm, args)
    if override is not None:
        # For this session only: the agent's stored settings stay as they are (/model changes them).
        provider = make_provider(override)
    return api.open_agent(row.id, provider=provider, options=options), override.model if override else None


def _line_editing() -> None:
    """Arrow keys and history at the prompt, where the terminal supports them."""
    if sys.stdin.isatty():
        try:
            import readline  # noqa: F401  (importing it is what turns editing on for input())
        except ImportError:
            pass


def cmd_chat(args) -> int:
    from cli.chat import ChatSession, chat_options
    from engine.api import MemGPT

    with MemGPT(args.home) as api:
        options = chat_options(args.no_verify)
        agent, override = _chat_agent(api, args, options)
        session = ChatSession(agent, lambda name: api.open_agent(name, options=options), api=api, debug=args.debug,
                              model_override=override, colour=False if args.strip_ui else None,
                              plain=args.strip_ui)
        _line_editing()
        return session.run(first=args.first)


def cmd_ws(args) -> int:
    from webapp import websocket

    websocket.serve_forever(args.host, args.port, args.home, args.auth)
    return 0


def cmd_backup(args) -> int:
    """`backup FILE`: SQLite's online backup of the live database, then a count of what the copy holds."""
    from pathlib import Path

    from engine.api import MemGPT

    target = Path(args.file).expanduser()
    try:
        with MemGPT(args.home) as api:
            source = api.runtime.store.describe()  # the file, or the server without its password
            counts = api.backup(target, force=args.force)
    except FileExistsError as e:
        raise CommandError(str(e)) from None
    except OSError as e:
        raise CommandError(f"cannot write {target}: {e.strerror or e}") from None
    print(f"Backed up {source} to {target} ({target.stat().st_size:,} bytes; integrity check ok).")
    print("  " + ", ".join(f"{n:,} {table.replace('_', ' ')}" for table, n in counts.items()))
    return 0


def cmd_migrate(args) -> int:
    """`migrate --to TARGET`: copy the configured store into an empty database, then say how to switch to it."""
    from pathlib import Path

    from cli.load import ProgressBar
    from engine.api import MemGPT
    from engine.store.pg import safe_url

    to_server = args.to.startswith(("postgresql://", "postgres://"))  # shown without its password, always
    shown = safe_url(args.to) if to_server else args.to if "://" in args.to else str(Path(args.to).expanduser())
    bar = ProgressBar(unit="rows")
    try:
        with MemGPT(args.home) as api:
            source = api.runtime.store.describe()
            print(f"Copying {source} to {shown}.")
            counts = api.migrate(args.to, on_progress=bar)
            config = api.settings.home / "config.yaml"
            home_db = api.settings.db_path
    except FileExistsError as e:
        raise CommandError(str(e)) from None
    except OSError as e:
        raise CommandError(f"cannot write {shown}: {e.strerror or e}") from None
    finally:
        bar.close()
    print(f"Copied to {shown}: " + ", ".join(f"{n:,} {table.replace('_', ' ')}" for table, n in counts.items()) + ".")
    if to_server:
        print(f"To run the app on it, set MEMGPT_DATABASE_URL to that URL (or pass --database-url URL), "
              f"or add `database: URL` to {config}.")
    elif Path(os.path.realpath(shown)) == Path(os.path.realpath(home_db)):
        print(f"To run the app on it, unset MEMGPT_DATABASE_URL and remove `database:` from {config}.")
    else:
        print("To run the app on it, make it a data home's memgpt.db (move it to DIR/memgpt.db, start with "
              "--home DIR) with MEMGPT_DATABASE_URL unset and no `database:` in its config.yaml.")
    print("The copy holds what the database held when it began: stop the app before switching.")
    return 0
