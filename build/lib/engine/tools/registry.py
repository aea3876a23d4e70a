"""Looking tools up by name: the built-in sets and the user's own functions.

User functions are plain `.py` files in `<data home>/functions/`; every public
function defined in such a file becomes a tool, and one without type hints or a
docstring is refused with an error naming it and its file.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import NotFound, ToolLoadError
from engine.tools.base import BASE_FUNCTIONS
from engine.tools.extras import EXTRA_FUNCTIONS
from engine.tools.schema import function_schema, injected_parameters

FUNCTION_SETS = {
    "base": [fn.__name__ for fn in BASE_FUNCTIONS],
    "extras": [fn.__name__ for fn in EXTRA_FUNCTIONS],
}


@dataclasses.dataclass(frozen=True)
class Tool:
    name: str
    fn: Callable
    schema: dict[str, Any]
    injected: dict[str, type]
    origin: str


class ToolRegistry:
    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def register(self, fn: Callable, origin: str = "builtin") -> Tool:
        name = fn.__name__
        if name in self._tools:
            raise ToolLoadError(
                f"Function {name!r} from {origin} clashes with one already loaded from {self._tools[name].origin}."
            )
        try:
            schema = function_schema(fn)
            injected = injected_parameters(fn)
        except ToolLoadError as e:
            raise ToolLoadError(f"{e} (in {origin})") from e
        tool = Tool(name, fn, schema, injected, origin)
        self._tools[name] = tool
        return tool

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise NotFound(f"No function named {name!r}.") from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def names(self) -> list[str]:
        return sorted(self._tools)

    def schemas(self, names: list[str]) -> list[dict[str, Any]]:
        return [self.get(n).schema for n in names]

    def load_user_functions(self, directory: Path) -> list[str]:
        """Register every public function in `directory/*.py`; return their names."""
        loaded: list[str] = []
        directory = Path(directory)
        if not directory.is_dir():
            return loaded
        for path in sorted(directory.glob("*.py")):
            for fn in _functions_in(path):
                self.register(fn, origin=str(path))
                loaded.append(fn.__name__)
        return loaded


def _functions_in(path: Path) -> list[Callable]:
    module_name = f"memgpt_user_functions.{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ToolLoadError(f"Cannot load user functions from {path}.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(module_name, None)
        raise ToolLoadError(f"User functions in {path} failed to import: {type(e).__name__}: {e}") from e
    return [
        obj
        for name, obj in vars(module).items()
        if inspect.isfunction(obj) and obj.__module__ == module_name and not name.startswith("_")
    ]


def builtin_registry() -> ToolRegistry:
    registry = ToolRegistry()
    for fn in BASE_FUNCTIONS + EXTRA_FUNCTIONS:
        registry.register(fn)
    return registry


def load_registry(functions_dir: Path | None = None) -> ToolRegistry:
    """Built-in functions plus the user's (which may not reuse a built-in name)."""
    registry = builtin_registry()
    if functions_dir is not None:
        registry.load_user_functions(functions_dir)
    return registry
