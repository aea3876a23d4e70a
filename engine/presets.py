"""Presets, system prompts, personas and humans: files shipped here or added by the user.

Shipped files live in the repository's `presets/` folder; the user adds their own
with the same layout in the data home (`<home>/presets/*.yaml`,
`<home>/system_prompts/*.txt`, `<home>/personas/*.txt`, `<home>/humans/*.txt`),
and a user file with the same name as a shipped one wins.
A preset is YAML: `system_prompt: <name>` and `functions: [...]`, validated
against the function registry when loaded.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import yaml

from engine.errors import PresetError
from engine.tools.registry import ToolRegistry


def _shipped() -> Path:
    # A source checkout has presets/ beside engine/; an installed package ships it as `memgpt_presets`.
    beside = Path(__file__).resolve().parent.parent / "presets"
    if beside.is_dir():
        return beside
    import importlib.util

    spec = importlib.util.find_spec("memgpt_presets")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The shipped presets are missing: reinstall the package.")
    return Path(list(spec.submodule_search_locations)[0])


SHIPPED = _shipped()
KINDS = {"system_prompts": ".txt", "personas": ".txt", "humans": ".txt"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]{0,63}$")
MAX_TEXT_CHARS = 100_000


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    system_prompt: str  # the prompt's name
    functions: list[str]


class PresetLibrary:
    """Lookup of presets and texts over the shipped folder and the user's data home."""

    def __init__(self, home: Path | None = None, shipped: Path = SHIPPED):
        self.home = Path(home) if home is not None else None
        self.shipped = Path(shipped)

    def _roots(self, kind: str) -> list[Path]:
        """Folders for `kind` ("" means presets), user first so user files win."""
        shipped = self.shipped / kind if kind else self.shipped
        if self.home is None:
            return [shipped]
        user = self.home / (kind or "presets")
        return [user, shipped]

    def _names(self, kind: str, suffix: str) -> list[str]:
        names: set[str] = set()
        for root in self._roots(kind):
            if root.is_dir():
                names.update(p.stem for p in root.glob(f"*{suffix}") if p.is_file())
        return sorted(names)

    def _find(self, kind: str, name: str, suffix: str) -> Path:
        check_name(name, kind.rstrip("s") or "preset")
        for root in self._roots(kind):
            path = root / f"{name}{suffix}"
            if path.is_file():
                return path
        label = {"": "preset", "system_prompts": "system prompt", "personas": "persona", "humans": "human"}[kind]
        options = ", ".join(self._names(kind, suffix)) or "none"
        raise PresetError(f"No {label} named {name!r}. Available: {options}.")

    # texts --------------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        return self._names(kind, KINDS[kind])

    def text(self, kind: str, name: str) -> str:
        path = self._find(kind, name, KINDS[kind])
        try:
            return path.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError as e:
            raise PresetError(f"{path} is not UTF-8 text.") from e

    def add_text(self, kind: str, name: str, text: str) -> Path:
        """Save a user persona/human/system prompt in the data home."""
        if self.home is None:
            raise PresetError("No data home to save into.")
        check_name(name, kind.rstrip("s"))
        if not text.strip():
            raise PresetError("The text is empty.")
        if len(text) > MAX_TEXT_CHARS:
            raise PresetError(f"The text is longer than {MAX_TEXT_CHARS} characters.")
        folder = self.home / kind
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}{KINDS[kind]}"
        path.write_text(text.strip() + "\n", encoding="utf-8")
        return path

    # presets ------------------------------------------------------------------------------
    def preset_names(self) -> list[str]:
        return self._names("", ".yaml")

    def preset(self, name: str, registry: ToolRegistry) -> Preset:
        path = self._find("", name, ".yaml")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise PresetError(f"Preset {name!r} ({path}) is not valid YAML: {e}") from e
        if not isinstance(data, dict):
            raise PresetError(f"Preset {name!r} must be a mapping with system_prompt and functions.")
        prompt = data.get("system_prompt")
        functions = data.get("functions")
        if not isinstance(prompt, str) or not prompt:
            raise PresetError(f"Preset {name!r} needs 'system_prompt: <prompt name>'.")
        if not isinstance(functions, list) or not functions or not all(isinstance(f, str) for f in functions):
            raise PresetError(f"Preset {name!r} needs 'functions:' as a list of function names.")
        unknown = [f for f in functions if f not in registry]
        if unknown:
            raise PresetError(f"Preset {name!r} names unknown functions: {', '.join(unknown)}.")
        if "send_message" not in functions:
            raise PresetError(f"Preset {name!r} must include send_message, or the agent cannot speak.")
        self.text("system_prompts", prompt)
        return Preset(name, prompt, list(dict.fromkeys(functions)))


def check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise PresetError(
            f"Bad {what} name {name!r}: use 1-64 letters, digits, spaces, '.', '-' or '_', starting with a letter or digit."
        )
    return name
