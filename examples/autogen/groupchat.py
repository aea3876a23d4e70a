"""A group chat: a user proxy, a product manager (plain AutoGen) and a MemGPT coder with a long memory.

    OPENAI_API_KEY=... python examples/autogen/groupchat.py

Speakers take turns in order (round robin), so the run does not depend on a model choosing who
speaks. Run it twice: the second time the coder still knows what the first run told it.
"""

from _config import HOME, llm_config, show  # noqa: I001  (sets up the import path first)
from autogen import AssistantAgent, GroupChat, GroupChatManager, UserProxyAgent

from engine.autogen import create_memgpt_autogen_agent_from_config

user = UserProxyAgent("User_proxy", human_input_mode="NEVER", code_execution_config=False, default_auto_reply="")
pm = AssistantAgent("Product_manager", llm_config=llm_config,
                    system_message="You are a product manager. Turn the user's idea into two or three clear, "
                                   "short requirements for the coder.")
coder = create_memgpt_autogen_agent_from_config(
    "MemGPT_coder", llm_config=llm_config, home=HOME,
    system_message="I am a careful software engineer. I keep the project's requirements in my core memory and "
                   "write short, working Python.",
    interface_kwargs={"show_inner_thoughts": False, "show_function_outputs": True},
)
group = GroupChat(agents=[user, pm, coder], messages=[], max_round=5, speaker_selection_method="round_robin")
manager = GroupChatManager(groupchat=group, llm_config=False)
user.initiate_chat(manager, message="I want a tiny tool that tells me tonight's moon phase.")
show(group.messages)
coder.memgpt.close()
