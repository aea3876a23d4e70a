"""Refresh the README's screenshots in docs/screenshots from the UI tests that take them.

    .venv/bin/python scripts/screenshots.py

A normal test run writes its screenshots to a temporary folder and never touches the
tracked ones (tests/ui/conftest.py checks that); this is the one way to rewrite them.
It runs on SQLite only, so a PostgreSQL run cannot overwrite them a second time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The tests that call page.screenshot() into SCREENSHOTS, and the files they write.
TESTS = ["test_create_chat_memory_context", "test_archival_insert_and_search",
         "test_config_persists_and_dead_endpoint_is_readable", "test_browse_and_search_the_whole_history",
         "test_rename_duplicate_export_import_delete"]


def main() -> int:
    env = dict(os.environ, UPDATE_SCREENSHOTS="1")
    selection = " or ".join(TESTS)
    command = [sys.executable, "-m", "pytest", "tests/ui", "-q", "-k", f"({selection}) and not postgres"]
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
