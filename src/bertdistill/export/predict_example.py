"""Predict with the exported model in this folder; needs onnxruntime, numpy and transformers only.

    python predict.py "a gripping, funny film" "a dull mess"
    cat sentences.txt | python predict.py

Prints one line per input: the predicted label and its probability (classification), the score
(regression) or word/tag pairs (token classification).

A question-answering model takes a question and its context:

    python predict.py --question "Who won?" --context "The Broncos won the game."
    cat questions.jsonl | python predict.py      # {"question": ..., "context": ...} per line

and prints one JSON line per question: the answer, its start / end characters in the context.
Long contexts are read in overlapping windows (the window options in export.json); every span
of a window is scored, not only the n best starts and ends, and questions are not cut, so a
rare answer may differ from `bertdistill predict`'s, which decodes as evaluation does.
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


def answer(questions, contexts):
    """The best span of each question in its context (the highest start + end logit over its
    windows, end not before start, at most max_answer_length tokens)."""
    opts = json.loads((HERE / "export.json").read_text(encoding="utf-8"))["qa_options"]
    tokenizer = AutoTokenizer.from_pretrained(str(HERE))
    session = ort.InferenceSession(str(HERE / "model.onnx"), providers=["CPUExecutionProvider"])
    enc = tokenizer([q.lstrip() for q in questions], contexts, truncation="only_second",
                    max_length=opts["max_length"], stride=opts["doc_stride"], return_overflowing_tokens=True,
                    return_offsets_mapping=True, padding=True, return_tensors="np")
    feeds = {}
    for item in session.get_inputs():
        value = enc.get(item.name)
        feeds[item.name] = (value if value is not None else np.zeros_like(enc["input_ids"])).astype(np.int64)
    starts, ends = session.run(["start_logits", "end_logits"], feeds)
    best = [(-np.inf, 0, 0)] * len(questions)
    for w, q in enumerate(enc["overflow_to_sample_mapping"]):
        context = np.array([t for t, s in enumerate(enc.sequence_ids(w)) if s == 1])
        for s in context:
            for e in context[(context >= s) & (context < s + opts["max_answer_length"])]:
                score = float(starts[w, s] + ends[w, e])
                if score > best[q][0]:
                    offsets = enc["offset_mapping"][w]
                    best[q] = (score, int(offsets[s][0]), int(offsets[e][1]))
    return [{"question": q, "answer": c[b[1]:b[2]], "start": b[1], "end": b[2]}
            for q, c, b in zip(questions, contexts, best)]


def main_qa(argv):
    if "--question" in argv and "--context" in argv:
        pairs = [(argv[argv.index("--question") + 1], argv[argv.index("--context") + 1])]
    else:
        pairs = [(row["question"], row["context"]) for row in map(json.loads, filter(str.strip, sys.stdin))]
    if not pairs:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    for row in answer([q for q, _ in pairs], [c for _, c in pairs]):
        print(json.dumps(row, ensure_ascii=False))
    return 0


def main(argv):
    if json.loads((HERE / "labels.json").read_text(encoding="utf-8"))["kind"] == "qa":
        return main_qa(argv)
    texts = argv or [line.strip() for line in sys.stdin if line.strip()]
    if not texts:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    for row in predict(texts):
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
