"""What every example shares: the model from the environment, the data home, and printing the transcript."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

MODEL = os.environ.get("MEMGPT_EXAMPLE_MODEL", "gpt-4o-mini")
BASE_URL = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
HOME = os.environ.get("MEMGPT_HOME", str(Path.home() / ".memgpt"))

# AutoGen's own agents and the MemGPT agent use the same model here; any OpenAI-compatible server works.
config_list = [{"model": MODEL, "base_url": BASE_URL, "api_key": os.environ.get("OPENAI_API_KEY", "not-needed")}]
llm_config = {"config_list": config_list, "cache_seed": None}


def show(chat_messages) -> None:
    for message in chat_messages:
        print(f"--- {message.get('name') or message.get('role')}:\n{message.get('content')}")
