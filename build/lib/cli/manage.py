"""The bookkeeping commands: configure, list, add, attach, export, import, version."""

from __future__ import annotations

import dataclasses
import getpass
import sys
from collections.abc import Callable
from pathlib import Path

from cli import CommandError
from engine import config as config_mod
from engine import secrets
from engine.api import MemGPT
from engine.config import ENDPOINT_TYPES, EmbeddingConfig, LLMConfig, Settings, load_settings, save_settings
from engine.errors import ConfigError, PresetError

# The key `configure` asks for per endpoint type. secrets.save, called without endpoints, binds it to
# the endpoints config.yaml names for those types, which configure writes just before.
KEY_FOR = {kind: names[0] for kind, names in secrets.KEY_FOR_TYPE.items()}
EMBEDDING_TYPES = ("local", "openai", "azure", "openai-compatible")


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---------------------------------------------------------------- configure

class Prompter:
    """Questions with the current value as the default (Enter keeps it)."""

    def __init__(self, ask: Callable[[str], str] = input, secret: Callable[[str], str] = getpass.getpass):
        self.ask = ask
        self.secret = secret

    def _read(self, question: str, reader) -> str:
        try:
            return reader(question).strip()
        except EOFError:
            raise CommandError("configure stopped before the end; nothing was saved.", 1) from None

    def text(self, label: str, current: str | None, *, optional: bool = False) -> str | None:
        hint = " ('-' for none)" if optional else ""
        answer = self._read(f"{label}{hint} [{current or ''}]: ", self.ask)
        if optional and answer == "-":
            return None
        return answer or current

    def choice(self, label: str, options: list[str] | tuple[str, ...], current: str) -> str:
        while True:
            answer = self._read(f"{label} ({', '.join(options)}) [{current}]: ", self.ask) or current
            if answer in options:
                return answer
            print(f"  please answer one of: {', '.join(options)}")

    def hidden(self, question: str) -> str:
        """A secret: read without echo, never shown back."""
        return self._read(question, self.secret)

    def number(self, label: str, current: int | None, *, optional: bool = False) -> int | None:
        while True:
            answer = self.text(label, str(current) if current is not None else None, optional=optional)
            if answer is None:
                return None
            if answer.isdigit() and int(answer) > 0:
                return int(answer)
            print("  please answer with a whole number above 0")


# A provider's usual model, offered when the provider changes (the old model would not fit).
CHAT_DEFAULTS = {"openai": config_mod.OPENAI_CHAT_MODEL, "azure": config_mod.OPENAI_CHAT_MODEL,
                 "local": config_mod.LOCAL_CHAT_MODEL}
EMBEDDING_DEFAULTS = {"openai": (config_mod.OPENAI_EMBEDDING_MODEL, config_mod.OPENAI_EMBEDDING_DIM),
                      "azure": (config_mod.OPENAI_EMBEDDING_MODEL, config_mod.OPENAI_EMBEDDING_DIM)}


def _ask_llm(p: Prompter, llm: LLMConfig) -> LLMConfig:
    kind = p.choice("Model provider", ENDPOINT_TYPES, llm.endpoint_type)
    same = kind == llm.endpoint_type
    model = p.text("Model", llm.model if same else CHAT_DEFAULTS.get(kind, llm.model))
    where = "GGUF file (empty for the shipped SmolLM2)" if kind == "local" else "Base URL"
    endpoint = p.text(where, llm.endpoint if same else None, optional=True)
    window = p.number("Context window in tokens (empty: known per model)", llm.context_window, optional=True)
    wrapper, grammar = llm.wrapper, llm.grammar
    if kind == "completions":
        wrapper = p.text("Prompt wrapper", llm.wrapper, optional=True)
        shown = "yes" if grammar is True else "no" if grammar is False else str(grammar)
        answer = p.text("Constrain replies with a grammar (yes, no, or a grammar's name)", shown) or "no"
        grammar = {"yes": True, "no": False}.get(answer.lower(), answer)
    # replace() keeps the settings not asked about here as they were.
    return dataclasses.replace(llm, endpoint_type=kind, model=model or "", endpoint=endpoint, context_window=window,
                               wrapper=wrapper, grammar=grammar)


def _ask_embedding(p: Prompter, emb: EmbeddingConfig) -> EmbeddingConfig:
    kind = p.choice("Embedder", EMBEDDING_TYPES, emb.endpoint_type if emb.endpoint_type in EMBEDDING_TYPES else "local")
    if kind == "local":  # the embedded embedder is one fixed model
        return dataclasses.replace(emb, endpoint_type="local", model=config_mod.LOCAL_EMBEDDING_MODEL,
                                   dim=config_mod.LOCAL_EMBEDDING_DIM, endpoint=None)
    same = kind == emb.endpoint_type
    model, dim = (emb.model, emb.dim) if same else EMBEDDING_DEFAULTS.get(kind, (emb.model, emb.dim))
    model = p.text("Embedding model", model) or model
    dim = p.number("Embedding dimension", dim) or dim
    endpoint = p.text("Embedding base URL", emb.endpoint if same else None, optional=True)
    return dataclasses.replace(emb, endpoint_type=kind, model=model or "", dim=dim, endpoint=endpoint)


def _ask_key(p: Prompter, name: str) -> str | None:
    """The new value of key `name`: None keeps it, "" clears it."""
    from engine import secrets

    state = "set" if secrets.present(name) else "not set"
    answer = p.hidden(f"{name} ({state}; Enter keeps it, '-' clears it): ")
    return "" if answer == "-" else (answer or None)


def configure(home: str | None, prompter: Prompter | None = None) -> Path:
    """Ask everything first and save at the end, so stopping half-way changes nothing."""
    from engine import secrets
    from engine.presets import PresetLibrary

    p = prompter or Prompter()
    home_path = Path(home).expanduser() if home else config_mod.default_home()
    secrets.apply(home_path)  # so "set / not set" reflects the saved keys too
    try:
        settings = load_settings(home_path)
    except ConfigError as e:
        print(f"note: the current config.yaml cannot be read ({e}); starting from the defaults.")
        settings = Settings(home=home_path)
    print(f"Configuring {home_path / 'config.yaml'} (Enter keeps the value in brackets).")
    settings.llm = _ask_llm(p, settings.llm)
    settings.embedding = _ask_embedding(p, settings.embedding)
    library = PresetLibrary(home_path)
    settings.default_preset = p.choice("Default preset", library.preset_names(), settings.default_preset)
    settings.default_persona = p.choice("Default persona", library.names("personas"), settings.default_persona)
    settings.default_human = p.choice("Default human", library.names("humans"), settings.default_human)
    needed = dict.fromkeys(KEY_FOR[k] for k in (settings.llm.endpoint_type, settings.embedding.endpoint_type)
                           if k in KEY_FOR)
    keys = {name: _ask_key(p, name) for name in needed}
    path = save_settings(settings)
    for name, value in keys.items():
        if value is not None:
            secrets.save(home_path, name, value)  # a 0600 file; never echoed, never in config.yaml
            print(f"  {name} {'saved' if value else 'cleared'}")
    return path


def cmd_configure(args) -> int:
    path = configure(args.home)
    print(f"Saved {path}")
    return 0


# ---------------------------------------------------------------- list, add, attach

def _first_line(text: str, limit: int = 70) -> str:
    line = next((row.strip() for row in text.splitlines() if row.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def cmd_list(args) -> int:
    api = MemGPT(args.home)
    try:
        library = api.library
        if args.kind == "agents":
            rows = [[a.name, a.llm.model, f"{a.embedding.model} ({a.embedding.dim}-d)",
                     str(api.recall_count(a.id)), str(api.archival_count(a.id)),
                     ", ".join(s.name for s in api.attached_sources(a.id)), a.created_at[:10]]
                    for a in api.list_agents()]
            header = ["name", "model", "embedder", "messages", "passages", "sources", "created"]
        elif args.kind in ("humans", "personas"):
            rows = [[name, _first_line(library.text(args.kind, name))] for name in library.names(args.kind)]
            header = [args.kind[:-1], "text"]
        elif args.kind == "presets":
            rows = []
            for name in library.preset_names():
                try:
                    preset = api.preset(name)
                except PresetError as e:  # one broken user preset should not hide the others
                    rows.append([name, "(unusable)", str(e)])
                    continue
                rows.append([name, preset.system_prompt, ", ".join(preset.functions)])
            header = ["preset", "system prompt", "functions"]
        else:
            rows = [[s.name, str(s.passages), f"{s.embedding_model} ({s.embedding_dim}-d)", s.description,
                     s.created_at[:10]] for s in api.list_sources()]
            header = ["source", "passages", "embedder", "description", "created"]
        print(_table(rows, header) if rows else f"(no {args.kind} yet)")
        return 0
    finally:
        api.close()


def cmd_add(args) -> int:
    from engine.presets import PresetLibrary

    kind = args.kind + "s"
    if args.file is not None:
        try:
            text = Path(args.file).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise CommandError(f"{args.file} is not UTF-8 text.") from None
        except OSError as e:
            raise CommandError(f"cannot read {args.file}: {e.strerror or e}") from None
    else:
        text = args.text
    with MemGPT(args.home) as api:
        library: PresetLibrary = api.library
        replaced = (library.home / kind / f"{args.name}.txt").exists()
        path = library.add_text(kind, args.name, text)
        print(f"{'Replaced' if replaced else 'Added'} {args.kind} {args.name!r} ({path}).")
        return 0


def cmd_attach(args) -> int:
    with MemGPT(args.home) as api:
        agent = api.get_agent(args.agent)
        source = api.attach(agent.id, args.source)
        print(f"Attached {source.name} ({source.passages} passages) to {agent.name}.")
        return 0


# ---------------------------------------------------------------- export, import, version

def cmd_export(args) -> int:
    with MemGPT(args.home) as api:
        agent = api.get_agent(args.agent)
        counts = api.export_agent(agent.id, args.file)
        print(f"Exported {agent.name} to {args.file}: {counts['messages']} messages, {counts['blocks']} blocks "
              f"({counts['edits']} edits), {counts['passages']} passages, {counts['sources']} attached source(s).")
        return 0


def cmd_import(args) -> int:
    with MemGPT(args.home) as api:
        result = api.import_agent(args.file)
        counts = result.counts
        print(f"Imported {result.agent.name}: {counts['messages']} messages, {counts['blocks']} blocks, "
              f"{counts['passages']} passages.")
        if result.attached:
            print(f"Attached sources: {', '.join(result.attached)}.")
        if result.missing_sources:
            print(f"note: not attached (no such source here, or another embedder): "
                  f"{', '.join(result.missing_sources)}", file=sys.stderr)
        return 0


def cmd_version(args) -> int:
    import platform

    from engine import __version__

    print(f"MemGPT (self-hosted) {__version__}, Python {platform.python_version()}")
    return 0

