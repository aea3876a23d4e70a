"""Everything a face needs to work with the engine, opened in one place.

A face (web app, WebSocket server, terminal) calls `open_runtime()` once and
passes the `Runtime` along; nothing in the engine holds it globally.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from engine.config import Settings, load_settings
from engine.endpoints import OperatorEndpoints
from engine.llm.public_only import PublicOnly
from engine.presets import PresetLibrary
from engine.store import Store, open_store
from engine.tools.registry import ToolRegistry, load_registry


@dataclasses.dataclass
class Runtime:
    settings: Settings
    store: Store
    library: PresetLibrary
    registry: ToolRegistry
    # The endpoints the settings named when the runtime opened: the operator's, before any
    # face could rewrite config.yaml (engine/endpoints.py).
    operator_endpoints: OperatorEndpoints = dataclasses.field(init=False)
    # Set on a public app (MemGPT.restrict_endpoints): every model and embedding call of this runtime connects
    # only to checked public addresses, except the operator's endpoints (engine/llm/public_only.py).
    public_only: PublicOnly | None = dataclasses.field(default=None, init=False)

    def __post_init__(self) -> None:
        self.operator_endpoints = OperatorEndpoints.snapshot(self.settings)

    def close(self) -> None:
        self.store.close()


def open_runtime(home: str | Path | None = None) -> Runtime:
    from engine import secrets
    from engine.config import default_home

    secrets.apply(Path(home).expanduser() if home is not None else default_home())
    settings = load_settings(home)
    store = open_store(settings)
    return Runtime(settings, store, PresetLibrary(settings.home), load_registry(settings.functions_dir))
