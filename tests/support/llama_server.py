"""Run llama-cpp-python's OpenAI-compatible server with our CPU workarounds applied.

`python tests/support/llama_server.py --model FILE --port N ...` takes the same
arguments as `python -m llama_cpp.server`; see engine.llm.local.apply_cpu_workarounds.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.llm.local import apply_cpu_workarounds  # noqa: E402

if __name__ == "__main__":
    apply_cpu_workarounds()
    from llama_cpp.server.__main__ import main

    main()
