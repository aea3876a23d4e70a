"""Settings: where data lives, which models to use, limits for tools.

No global settings object: `load_settings()` builds a `Settings` from the data
home's `config.yaml` and the environment, and callers pass it along.

Provider defaults (docs/ARCHITECTURE.md): an explicit `llm`/`embedding` section in
config.yaml wins; else `OPENAI_API_KEY` selects OpenAI for both; else the
embedded local pair. API keys are read from the environment (filled from
secrets.yaml), each bound to its endpoints, never written into agents or logs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from engine.errors import ConfigError

CONFIG_FILE = "config.yaml"
DB_FILE = "memgpt.db"
LANCEDB_DIR = "lancedb"
ARCHIVAL_STORAGE_TYPES = ("store", "lancedb")  # where archival vectors live (engine/store/lance.py)

OPENAI_CHAT_MODEL = "gpt-4o-mini"
OPENAI_EMBEDDING_MODEL = "text-embedding-3-small"
OPENAI_EMBEDDING_DIM = 1536
LOCAL_CHAT_MODEL = "SmolLM2-135M-Instruct"
# A new agent on the embedded model that gets the default companion preset gets its
# small-model variant (the compressed system prompt): its first step reads ~600 fewer
# prompt tokens, seconds on 2 cores, and a 135M model makes no use of the full text.
# A preset chosen for the agent is always kept as it is.
FULL_PRESET = "memgpt_chat"
SMALL_MODEL_PRESET = "memgpt_small"
LOCAL_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
LOCAL_EMBEDDING_DIM = 384

# The last seven are MemGPT 0.2's local backends, reached through their own endpoints (engine/llm/backends.py).
ENDPOINT_TYPES = ("openai", "azure", "openai-compatible", "completions", "local",
                  "llamacpp", "koboldcpp", "ollama", "webui", "webui-legacy", "lmstudio", "vllm")


@dataclasses.dataclass
class LLMConfig:
    endpoint_type: str = "local"
    model: str = LOCAL_CHAT_MODEL
    endpoint: str | None = None
    context_window: int | None = None
    wrapper: str | None = None
    grammar: bool | str = False  # completions: true = only calls of the agent's functions, or a ready grammar's name


MAX_DIM = 65_536  # embedding dimensions a face accepts (engine/transfer.py checks imports against the same)
MAX_WINDOW = 10_000_000  # tokens of a context window: beyond any model, and not a 300-digit number in config.yaml


@dataclasses.dataclass
class EmbeddingConfig:
    endpoint_type: str = "local"
    model: str = LOCAL_EMBEDDING_MODEL
    dim: int = LOCAL_EMBEDDING_DIM
    endpoint: str | None = None


@dataclasses.dataclass
class ToolSettings:
    allow_private_urls: bool = False  # http_request to loopback/private/link-local hosts
    http_timeout: float = 10.0
    http_max_bytes: int = 1_000_000
    result_char_limit: int = 3000  # longer tool results are cut, with a note to the model


@dataclasses.dataclass
class Settings:
    home: Path
    llm: LLMConfig = dataclasses.field(default_factory=LLMConfig)
    embedding: EmbeddingConfig = dataclasses.field(default_factory=EmbeddingConfig)
    tools: ToolSettings = dataclasses.field(default_factory=ToolSettings)
    default_preset: str = FULL_PRESET
    default_persona: str = "sam"
    default_human: str = "basic"
    block_char_limit: int = 2000
    # A PostgreSQL URL (postgresql://user:pass@host/db) puts the store there instead
    # of the home's SQLite file; MEMGPT_DATABASE_URL overrides config.yaml's `database`.
    database_url: str | None = None
    # "lancedb" keeps archival vectors in a LanceDB directory (MemGPT 0.2's
    # archival_storage_type); passages, full text and everything else stay in the
    # store. MEMGPT_ARCHIVAL_STORAGE overrides config.yaml's `archival_storage`.
    archival_storage: str = "store"
    archival_path: str | None = None  # the LanceDB directory; default <home>/lancedb, relative to the home
    # Token streaming from providers that can (OpenAI-compatible ones); config.yaml `stream: false` or
    # MEMGPT_STREAM=0 asks for whole replies instead.
    stream: bool = True

    @property
    def db_path(self) -> Path:
        return self.home / DB_FILE

    @property
    def lancedb_path(self) -> Path:
        if not self.archival_path:
            return self.home / LANCEDB_DIR
        return self.home / Path(self.archival_path).expanduser()  # an absolute path stays itself

    @property
    def functions_dir(self) -> Path:
        return self.home / "functions"

    @property
    def files_dir(self) -> Path:
        return self.home / "files"


def default_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("MEMGPT_HOME") or Path.home() / ".memgpt").expanduser()


def _build(cls, data: Any, section: str):
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise ConfigError(f"config.yaml: '{section}' must be a mapping.")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"config.yaml: unknown keys in '{section}': {', '.join(sorted(unknown))}.")
    return cls(**data)


def load_settings(home: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    home = Path(home).expanduser() if home is not None else default_home(env)
    path = home / CONFIG_FILE
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping of settings.")
    settings = Settings(
        home=home,
        llm=_build(LLMConfig, data.get("llm"), "llm"),
        embedding=_build(EmbeddingConfig, data.get("embedding"), "embedding"),
        tools=_build(ToolSettings, data.get("tools"), "tools"),
        **{k: data[k] for k in ("default_preset", "default_persona", "default_human", "block_char_limit") if k in data},
        database_url=env.get("MEMGPT_DATABASE_URL") or data.get("database") or None,
        archival_storage=_storage_type(env.get("MEMGPT_ARCHIVAL_STORAGE") or data.get("archival_storage") or "store"),
        archival_path=data.get("archival_path") or None,
        stream=_flag(env.get("MEMGPT_STREAM"), data.get("stream", True), "stream"),
    )
    if settings.archival_storage not in ARCHIVAL_STORAGE_TYPES:
        raise ConfigError(
            f"Unknown archival_storage {settings.archival_storage!r}; use 'store' (vectors in the database, "
            "the default) or 'lancedb' (vectors in a LanceDB directory, see archival_path)."
        )
    if settings.archival_path is not None and not isinstance(settings.archival_path, str):
        raise ConfigError("config.yaml: 'archival_path' must be a directory path.")
    if settings.database_url is not None and not _is_postgres_url(str(settings.database_url)):
        raise ConfigError(
            "The database setting must be a PostgreSQL URL (postgresql://user:password@host:5432/name); "
            "leave it out to use the SQLite file in the data home."
        )
    if env.get("OPENAI_API_KEY"):
        if "llm" not in data:
            settings.llm = LLMConfig(endpoint_type="openai", model=OPENAI_CHAT_MODEL)
        if "embedding" not in data:
            settings.embedding = EmbeddingConfig(
                endpoint_type="openai", model=OPENAI_EMBEDDING_MODEL, dim=OPENAI_EMBEDDING_DIM
            )
    for cfg in (settings.llm, settings.embedding):
        if cfg.endpoint_type not in ENDPOINT_TYPES:
            raise ConfigError(
                f"Unknown endpoint type {cfg.endpoint_type!r}; use one of {', '.join(ENDPOINT_TYPES)}."
            )
    return settings


def uses_embedded_model(llm: LLMConfig) -> bool:
    """True for the shipped small model (not a GGUF file the user named)."""
    return llm.endpoint_type == "local" and not llm.endpoint


def default_preset_for(settings: Settings, llm: LLMConfig | None = None) -> str:
    """The preset a new agent gets when none is chosen for it, given the model it will use."""
    if settings.default_preset == FULL_PRESET and uses_embedded_model(llm or settings.llm):
        return SMALL_MODEL_PRESET
    return settings.default_preset


def _flag(env_value: str | None, value: Any, name: str) -> bool:
    """A yes/no setting: the environment's word wins over config.yaml's boolean."""
    if env_value is not None and env_value.strip():
        word = env_value.strip().lower()
        if word in ("1", "true", "yes", "on"):
            return True
        if word in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"MEMGPT_{name.upper()} must be 1 or 0 (true/false), not {env_value!r}.")
    if not isinstance(value, bool):
        raise ConfigError(f"config.yaml: '{name}' must be true or false.")
    return value


def _storage_type(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value  # "LanceDB" is lancedb; 0.2 wrote it lower


def _is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def save_settings(settings: Settings) -> Path:
    """Write config.yaml (no secrets live in Settings, so none are written)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    data = {
        "llm": dataclasses.asdict(settings.llm),
        "embedding": dataclasses.asdict(settings.embedding),
        "tools": dataclasses.asdict(settings.tools),
        "default_preset": settings.default_preset,
        "default_persona": settings.default_persona,
        "default_human": settings.default_human,
        "block_char_limit": settings.block_char_limit,
    }
    path = settings.home / CONFIG_FILE
    database = settings.database_url
    if os.environ.get("MEMGPT_DATABASE_URL"):  # a URL from the environment stays there; keep the file's own
        try:
            database = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("database")
        except (OSError, yaml.YAMLError, AttributeError):
            database = None
    if database:
        data["database"] = database
    # Written only when not the default, and never from the environment: dropping
    # them would quietly send a LanceDB home's searches to empty vector tables.
    storage = settings.archival_storage
    if os.environ.get("MEMGPT_ARCHIVAL_STORAGE"):
        try:
            storage = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("archival_storage") or "store"
        except (OSError, yaml.YAMLError, AttributeError):
            storage = "store"
    if storage != "store":
        data["archival_storage"] = storage
    if settings.archival_path:
        data["archival_path"] = settings.archival_path
    stream = settings.stream
    if os.environ.get("MEMGPT_STREAM"):  # as for the storage: the environment's choice is not written
        try:
            stream = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("stream", True) is not False
        except (OSError, yaml.YAMLError, AttributeError):
            stream = True
    if not stream:
        data["stream"] = False
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    tmp.replace(path)
    return path


def api_key(endpoint_type: str, base_url: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The key bound to `base_url` for this endpoint type (see engine/secrets.py), or None.

    There is deliberately no lookup by endpoint type alone: the URL may come
    from a stranger, and a key goes only where it was configured to go.
    """
    from engine import secrets

    return secrets.key_for(endpoint_type, base_url, env)
