"""A user proxy talks to a MemGPT agent: the simplest AutoGen conversation.

    OPENAI_API_KEY=... python examples/autogen/autoreply.py
"""

from _config import HOME, llm_config, show  # noqa: I001  (sets up the import path first)
from autogen import UserProxyAgent

from engine.autogen import create_memgpt_autogen_agent_from_config

memgpt_agent = create_memgpt_autogen_agent_from_config(
    "MemGPT_autoreply", llm_config=llm_config, home=HOME,
    system_message="I am a friendly assistant with a long memory. I remember what people tell me about themselves.",
    interface_kwargs={"show_inner_thoughts": True, "show_function_outputs": True},
)
user = UserProxyAgent("user", human_input_mode="NEVER", max_consecutive_auto_reply=0, code_execution_config=False,
                      default_auto_reply="")
result = user.initiate_chat(memgpt_agent, message="Hi! I'm Kim, and I build telescopes. Please remember that.",
                            max_turns=1)
show(result.chat_history)
memgpt_agent.memgpt.close()
