"""A MemGPT agent with a loaded document answers questions in a group chat, citing the file.

    OPENAI_API_KEY=... python examples/autogen/docs.py [FILE]

Without FILE, a short notes file next to the data home is written and loaded.
"""

import sys
from pathlib import Path

from _config import HOME, llm_config, show  # noqa: I001  (sets up the import path first)
from autogen import GroupChat, GroupChatManager, UserProxyAgent

from engine.autogen import create_memgpt_autogen_agent_from_config

if len(sys.argv) > 1:
    document = Path(sys.argv[1])
else:
    document = Path(HOME).parent / "observatory-notes.md"
    document.write_text("# Observatory notes\nThe dome opens at 21:00. The main telescope is a 400 mm reflector.\n")

librarian = create_memgpt_autogen_agent_from_config(
    "MemGPT_librarian", llm_config=llm_config, home=HOME, preset="memgpt_docs", skip_verify=True,  # may search first
    system_message="I answer questions from the documents in my archival memory and say which file I used.",
    interface_kwargs={"show_inner_thoughts": False, "show_function_outputs": True},
)
librarian.load_and_attach("observatory", type="file", paths=[document])
user = UserProxyAgent("User_proxy", human_input_mode="NEVER", code_execution_config=False, default_auto_reply="")
group = GroupChat(agents=[user, librarian], messages=[], max_round=2, speaker_selection_method="round_robin")
manager = GroupChatManager(groupchat=group, llm_config=False)
user.initiate_chat(manager, message="How big is the main telescope? Say where you found it.")
show(group.messages)
librarian.memgpt.close()
