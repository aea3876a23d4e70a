"""Chunking, token counting without network, and settings."""

from __future__ import annotations

import pytest

from engine import tokens
from engine.chunking import chunk_text
from engine.config import load_settings, save_settings
from engine.errors import ConfigError


def test_token_counts_use_real_encoding():
    assert tokens.encoding() is not None
    assert tokens.count("hello world") == 2
    assert tokens.count("") == 0


def test_token_count_never_raises_without_encoding(monkeypatch):
    monkeypatch.setattr(tokens, "encoding", lambda: None)
    assert tokens.count("abcdefgh") == 2


def test_chunks_respect_limits_and_keep_text():
    text = "\n\n".join(f"Paragraph {p}. " + " ".join(f"Sentence {s} of {p}." for s in range(30)) for p in range(10))
    chunks = chunk_text(text, max_tokens=100)
    assert all(tokens.count(c) <= 100 for c in chunks)
    assert " ".join(chunks).split() == text.split()


def test_unbroken_runs_are_cut():
    blob = "A" * 20_000
    chunks = chunk_text(blob, max_tokens=300)
    assert "".join(chunks) == blob and len(chunks) > 1
    assert all(tokens.count(c) <= 300 for c in chunks)


def test_short_and_empty():
    assert chunk_text("  hi  ") == ["hi"]
    assert chunk_text("   ") == []


def test_overlap_repeats_the_tail():
    text = " ".join(f"Sentence number {i}." for i in range(100))
    chunks = chunk_text(text, max_tokens=50, overlap_tokens=10)
    first_sentence = " ".join(chunks[1].split()[:3])
    assert first_sentence in chunks[0] and not chunks[0].startswith(first_sentence)
    assert chunks[0].rstrip().endswith(first_sentence) or first_sentence in chunks[0][-60:]


def test_defaults_follow_the_environment(tmp_path):
    assert load_settings(tmp_path, env={}).llm.endpoint_type == "local"
    with_key = load_settings(tmp_path, env={"OPENAI_API_KEY": "sk-test"})
    assert with_key.llm.endpoint_type == "openai" and with_key.embedding.dim == 1536


def test_explicit_config_wins_and_round_trips(tmp_path):
    settings = load_settings(tmp_path, env={})
    settings.llm.endpoint_type = "openai-compatible"
    settings.llm.endpoint = "http://127.0.0.1:8080/v1"
    settings.tools.allow_private_urls = True
    save_settings(settings)
    again = load_settings(tmp_path, env={"OPENAI_API_KEY": "sk-test"})
    assert again.llm.endpoint == "http://127.0.0.1:8080/v1" and again.tools.allow_private_urls
    assert "sk-test" not in (tmp_path / "config.yaml").read_text()


@pytest.mark.parametrize(
    "content,message",
    [("llm: [1]\n", "must be a mapping"), ("llm:\n  colour: red\n", "unknown keys"),
     ("llm:\n  endpoint_type: carrier-pigeon\n", "Unknown endpoint type"), ("a: [\n", "not valid YAML")],
)
def test_bad_config(tmp_path, content, message):
    (tmp_path / "config.yaml").write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path, env={})
