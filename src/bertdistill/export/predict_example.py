"""Predict with the exported model in this folder; needs onnxruntime, numpy and transformers only.

    python predict.py "a gripping, funny film" "a dull mess"
    cat sentences.txt | python predict.py

Prints one line per input: the predicted label and its probability (classification), the score
(regression) or word/tag pairs (token classification).
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from transformers import AutoTokenizer

HERE = Path(__file__).resolve().parent


def predict(texts, max_length=128):
    info = json.loads((HERE / "labels.json").read_text(encoding="utf-8"))
    tokenizer = AutoTokenizer.from_pretrained(str(HERE))
    session = ort.InferenceSession(str(HERE / "model.onnx"), providers=["CPUExecutionProvider"])
    token_level = info["kind"] == "token_classification"
    words = [t.split() for t in texts] if token_level else texts
    enc = tokenizer(words, padding=True, truncation=True, max_length=max_length, return_tensors="np",
                    is_split_into_words=token_level)
    feeds = {}
    for item in session.get_inputs():
        value = enc.get(item.name)
        feeds[item.name] = (value if value is not None else np.zeros_like(enc["input_ids"])).astype(np.int64)
    logits = session.run(["logits"], feeds)[0]
    rows = []
    for i, text in enumerate(texts):
        if info["kind"] == "regression":
            rows.append(f"{float(logits[i].reshape(-1)[0]):.4f}\t{text}")
        elif token_level:
            tags, seen = [], set()
            for pos, word in enumerate(enc.word_ids(i)):
                if word is not None and word not in seen:
                    seen.add(word)
                    tags.append(f"{words[i][word]}/{info['labels'][int(logits[i, pos].argmax())]}")
            rows.append(" ".join(tags))
        else:
            p = np.exp(logits[i] - logits[i].max())
            p /= p.sum()
            best = int(p.argmax())
            rows.append(f"{info['labels'][best]}\t{p[best]:.3f}\t{text}")
    return rows


def main(argv):
    texts = argv or [line.strip() for line in sys.stdin if line.strip()]
    if not texts:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    for row in predict(texts):
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
