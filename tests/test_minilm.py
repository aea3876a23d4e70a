"""The embedded MiniLM embedder against reference vectors from sentence-transformers.

tests/data/minilm_reference.json was made once by tests/data/make_minilm_reference.py
in a throw-away environment with sentence-transformers and torch; this project
never imports either.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine import minilm
from engine.config import EmbeddingConfig
from engine.embeddings import make_embedder
from engine.errors import ConfigError

REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_text())


@pytest.fixture(scope="module")
def model():
    return minilm.shared_embedder()


def test_matches_reference_vectors(model):
    ours = model.embed_array(REFERENCE["sentences"])
    reference = np.array(REFERENCE["vectors"], dtype=np.float32)
    cosines = (ours * reference).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1))
    assert cosines.min() >= 0.999, dict(zip(REFERENCE["sentences"], cosines.round(6)))


def test_shape_norm_and_order_do_not_depend_on_batching(model):
    texts = REFERENCE["sentences"]
    together = model.embed_array(texts)
    one_by_one = np.vstack([model.embed_array([t]) for t in texts])
    reversed_ = model.embed_array(texts[::-1])[::-1]
    assert together.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.allclose(together, one_by_one, atol=1e-5)
    assert np.allclose(together, reversed_, atol=1e-5)


def test_truncates_at_the_model_limit(model):
    long = "word " * 2000
    assert np.allclose(model.embed_array([long]), model.embed_array([long + " and more words at the end"]), atol=1e-6)


def test_similar_texts_are_close(model):
    a, b, c = model.embed_array(["Paris is the capital of France.", "What is France's capital city?",
                                 "Octopuses have three hearts."])
    assert a @ b > 0.6 > a @ c


def test_odd_inputs(model):
    vectors = model.embed(["", "   ", "\x00\x01 binary junk", "🐙" * 500])
    assert len(vectors) == 4 and all(len(v) == 384 for v in vectors)
    assert model.embed([]) == []


def test_weights_are_checked(monkeypatch):
    monkeypatch.setattr(minilm, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(ConfigError, match="do not match the expected sha256"):
        minilm.MiniLMEmbedder()


def test_missing_weights_are_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="weights not found"):
        minilm.MiniLMEmbedder(tmp_path)


def test_local_embedding_config_selects_it():
    assert make_embedder(EmbeddingConfig()) is minilm.shared_embedder()
    with pytest.raises(ConfigError, match="needs an embedding endpoint"):
        make_embedder(EmbeddingConfig(endpoint_type="local", model="other", dim=768))
