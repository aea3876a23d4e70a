"""Presets and texts: shipped ones are valid; user files add and override; bad ones are clear errors."""

from __future__ import annotations

import inspect

import pytest

from engine.errors import PresetError
from engine.presets import PresetLibrary


def test_every_shipped_preset_is_valid(library, registry):
    names = library.preset_names()
    assert {"memgpt_chat", "memgpt_docs", "memgpt_extras"} <= set(names)
    for name in names:
        preset = library.preset(name, registry)
        for fn in preset.functions:
            tool = registry.get(fn)
            assert inspect.getdoc(tool.fn), fn
        assert library.text("system_prompts", preset.system_prompt)


def test_shipped_texts(library):
    assert len(library.names("personas")) >= 3
    assert len(library.names("humans")) >= 2
    for kind in ("personas", "humans"):
        for name in library.names(kind):
            text = library.text(kind, name)
            assert 0 < len(text) < 1500, (kind, name)
    prompt = library.text("system_prompts", "memgpt_chat")
    for needed in ("send_message", "request_heartbeat", "core_memory_append", "conversation_search",
                   "archival_memory_search", "archival_memory_insert", "inner monologue"):
        assert needed in prompt, needed


def test_user_files_add_and_override(home, registry):
    (home / "presets").mkdir()
    (home / "system_prompts").mkdir()
    (home / "system_prompts" / "terse.txt").write_text("Be terse.")
    (home / "presets" / "mine.yaml").write_text("system_prompt: terse\nfunctions: [send_message, conversation_search]\n")
    library = PresetLibrary(home)
    library.add_text("personas", "sam", "I am a different Sam.")
    preset = library.preset("mine", registry)
    assert preset.functions == ["send_message", "conversation_search"]
    assert library.text("personas", "sam") == "I am a different Sam."
    assert "mine" in library.preset_names()


@pytest.mark.parametrize(
    "content,message",
    [
        ("system_prompt: memgpt_chat\nfunctions: [send_message, teleport]\n", "unknown functions: teleport"),
        ("system_prompt: memgpt_chat\nfunctions: [conversation_search]\n", "must include send_message"),
        ("system_prompt: nope\nfunctions: [send_message]\n", "No system prompt named 'nope'"),
        ("functions: [send_message]\n", "needs 'system_prompt"),
        ("system_prompt: memgpt_chat\n", "needs 'functions:'"),
        ("- just\n- a list\n", "must be a mapping"),
        ("system_prompt: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_presets(home, registry, content, message):
    (home / "presets").mkdir()
    (home / "presets" / "bad.yaml").write_text(content)
    with pytest.raises(PresetError, match=message.replace("(", r"\(").replace("[", r"\[")):
        PresetLibrary(home).preset("bad", registry)


@pytest.mark.parametrize("name", ["../etc/passwd", "", "a/b", ".hidden"])
def test_bad_names(library, name):
    with pytest.raises(PresetError, match="Bad"):
        library.text("personas", name)


def test_memgpts_persona_human_and_prompt_names_are_shipped(library, registry):
    """Written fresh, under the names MemGPT 0.2 users pass (--persona sam_pov, --human cs_phd...)."""
    import re

    assert {"sam", "sam_pov", "sam_simple_pov_gpt35", "memgpt_doc", "memgpt_starter", "anna_pa"} <= set(
        library.names("personas"))
    assert {"basic", "cs_phd"} <= set(library.names("humans"))
    prompts = {"memgpt_base", "memgpt_chat", "memgpt_chat_compressed", "memgpt_doc", "memgpt_gpt35_extralong"}
    assert prompts <= set(library.names("system_prompts"))
    known = set(registry.names())
    for name in prompts:
        text = library.text("system_prompts", name)
        assert "send_message" in text and "core_memory_append" in text, name
        named = set(re.findall(r"`([a-z_]+)`", text)) & {n for n in re.findall(r"[a-z]+_[a-z_]+", text)}
        functions = {n for n in named if n.startswith(("core_", "archival_", "conversation_", "send_", "pause_"))}
        assert functions <= known, (name, functions - known)  # never a function the agent does not have
    assert len(library.text("system_prompts", "memgpt_chat_compressed").split()) <= 250
