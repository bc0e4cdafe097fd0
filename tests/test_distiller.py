"""Features, layer specs, terms, connectors and the Distiller wiring (tiny real models)."""

import math
from types import SimpleNamespace

import pytest
import torch
from transformers import (BertConfig, BertForSequenceClassification, BertForTokenClassification,
                          DistilBertConfig, DistilBertForSequenceClassification)

from bertdistill.distill import (Distiller, FeatureNeeds, Projection, Term, build_connectors,
                                 extract, feature_key, name_terms, needs, parse_key,
                                 resolve_layers, resolve_term, term_keys)
from bertdistill.distill.terms import check_term
from bertdistill.distill.features import prepare_model

LN2, LN3 = math.log(2.0), math.log(3.0)
VOCAB = 60


def bert_config(layers=4, hidden=32, heads=4, labels=3):
    return BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, intermediate_size=2 * hidden,
                      max_position_embeddings=32, num_labels=labels, attn_implementation="eager")


def distil_config(layers=2, hidden=32, heads=4, labels=3):
    return DistilBertConfig(vocab_size=VOCAB, dim=hidden, n_layers=layers, n_heads=heads,
                            hidden_dim=2 * hidden, max_position_embeddings=32, num_labels=labels,
                            attn_implementation="eager")


def cfg(layers, width, heads=2, labels=2):
    """A bare config for wiring tests that build no model."""
    return SimpleNamespace(num_hidden_layers=layers, hidden_size=width, num_attention_heads=heads,
                           num_labels=labels)


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(0)
    ids = torch.randint(1, VOCAB, (3, 6))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]])
    ids = ids * mask
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 2, 1])}


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(1)
    return BertForSequenceClassification(bert_config()).eval()


def forward_pair(distiller, teacher, student, batch):
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    prepare_model(teacher, distiller.teacher_needs)
    prepare_model(student, distiller.student_needs)
    with torch.no_grad():
        t_out = teacher(**inputs, **distiller.teacher_needs.forward_kwargs())
    s_out = student(**inputs, **distiller.student_needs.forward_kwargs())
    return distiller.compute(s_out, t_out, batch)


def assert_trains(total, student, distiller):
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in student.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    for name, p in distiller.connectors.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


# ----------------------------------------------------------------------------- features


def test_keys_and_needs():
    assert parse_key("hidden:3") == ("hidden", 3)
    assert parse_key("logits") == ("logits", None)
    assert parse_key("embeddings") == ("embeddings", None)
    assert feature_key("attention", 0) == "attention:0"
    for bad in ("hidden", "logits:1", "hidden:-1", "mlp:2", "hidden:x"):
        with pytest.raises(ValueError):
            parse_key(bad)
    with pytest.raises(ValueError):
        feature_key("embeddings", 1)
    assert needs(["logits"]) == FeatureNeeds(False, False)
    assert needs(["logits", "cls:2"]) == FeatureNeeds(True, False)
    assert needs(["embeddings", "attention:1"]) == FeatureNeeds(True, True)
    n = FeatureNeeds(False, True) | FeatureNeeds(True, False)
    assert n.forward_kwargs() == {"output_hidden_states": True, "output_attentions": True}
    assert n.model_kwargs() == {"attn_implementation": "eager"}
    assert FeatureNeeds(True, False).model_kwargs() == {}


def test_extract_bert_and_distilbert_outputs(batch):
    torch.manual_seed(0)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    for model in (BertForSequenceClassification(bert_config(layers=2)),
                  DistilBertForSequenceClassification(distil_config(layers=2))):
        out = model(**inputs, output_hidden_states=True, output_attentions=True)
        feats = extract(out, ["logits", "hidden:2", "attention:1", "cls:1", "embeddings"])
        assert feats["logits"] is out.logits
        assert feats["hidden:2"] is out.hidden_states[2]
        assert feats["attention:1"] is out.attentions[1]
        assert feats["attention:1"].shape == (3, 4, 6, 6)
        assert torch.equal(feats["cls:1"], out.hidden_states[1][:, 0])
        assert feats["embeddings"] is out.hidden_states[0]
        with pytest.raises(ValueError, match=r"0\.\.2"):
            extract(out, ["hidden:3"])
        with pytest.raises(ValueError, match=r"0\.\.1"):
            extract(out, ["attention:2"])


def test_extract_from_dicts_and_missing_outputs():
    h = [torch.zeros(1, 2, 4), torch.ones(1, 2, 4)]
    out = {"logits": torch.zeros(1, 2), "hidden_states": h, "attentions": ()}
    assert extract(out, ["hidden:1"])["hidden:1"] is h[1]
    with pytest.raises(ValueError, match="eager"):
        extract(out, ["attention:0"])
    with pytest.raises(ValueError, match="output_hidden_states"):
        extract({"logits": torch.zeros(1, 2)}, ["hidden:0"])
    cached = {"logits": torch.ones(1, 2), "hidden:4": torch.full((1, 2, 4), 7.0)}
    assert extract(cached, ["hidden:4"])["hidden:4"] is cached["hidden:4"]


# ----------------------------------------------------------------------------- layer specs


def test_resolve_layers_follows_the_papers():
    # BERT-PKD, 12 -> 6: PKD-Skip teacher {2,4,6,8,10}, PKD-Last teacher {7,8,9,10,11}
    assert resolve_layers("skip", 6, 12) == [(1, 2), (2, 4), (3, 6), (4, 8), (5, 10)]
    assert resolve_layers("last_k", 6, 12) == [(1, 7), (2, 8), (3, 9), (4, 10), (5, 11)]
    # TinyBERT, 12 -> 4: g(m) = 3m
    assert resolve_layers("uniform", 4, 12) == [(1, 3), (2, 6), (3, 9), (4, 12)]
    assert resolve_layers("uniform", 4, 12, feature="attention") == [(0, 2), (1, 5), (2, 8), (3, 11)]
    assert resolve_layers("all_plus_embeddings", 2, 4) == [(0, 0), (1, 2), (2, 4)]
    assert resolve_layers("last", 3, 6) == [(3, 6)]
    assert resolve_layers("last", 3, 6, feature="attention") == [(2, 5)]
    assert resolve_layers(None, 3, 6, feature="cls") == [(3, 6)]
    # student layers copied from teacher layers 1, 3, 5 (0-based) -> hidden 2, 4, 6
    assert resolve_layers("copied", 3, 6, kept=[1, 3, 5]) == [(1, 2), (2, 4), (3, 6)]
    assert resolve_layers("copied", 3, 6, kept=[1, 3, 5], feature="attention") == [(0, 1), (1, 3), (2, 5)]
    assert resolve_layers([[1, 2], [2, 3]], 2, 4) == [(1, 2), (2, 3)]
    # not divisible: rounded down, the last student layer still meets the last teacher layer
    assert resolve_layers("uniform", 4, 6) == [(1, 1), (2, 3), (3, 4), (4, 6)]


def test_resolve_layers_errors():
    with pytest.raises(ValueError, match="kept"):
        resolve_layers("copied", 2, 4)
    with pytest.raises(ValueError, match="kept lists 3"):
        resolve_layers("copied", 2, 4, kept=[0, 1, 2])
    with pytest.raises(ValueError, match="out of range"):
        resolve_layers("copied", 2, 4, kept=[0, 4])
    with pytest.raises(ValueError, match="1-layer"):
        resolve_layers("skip", 1, 4)
    with pytest.raises(ValueError, match="at least as deep"):
        resolve_layers("uniform", 6, 4)
    with pytest.raises(ValueError, match="embedding"):
        resolve_layers("all_plus_embeddings", 2, 4, feature="attention")
    with pytest.raises(ValueError, match="unknown layers spec"):
        resolve_layers("middle", 2, 4)


# ----------------------------------------------------------------------------- terms


def test_term_defaults_and_keys():
    assert Term(loss="hidden_mse").student == "hidden"
    assert Term(loss="pkd_cls").teacher == "cls"
    assert Term(loss="attention_kl").student == "attention"
    assert Term(loss="embedding_mse").student == "embeddings"
    assert Term(loss="kd_kl").student == "logits"
    assert Term(loss="hidden_mse", layers=[[1, 2]]).layers == [(1, 2)]
    with pytest.raises(ValueError, match="pairs"):
        Term(loss="hidden_mse", layers=[[1, 2, 3]])

    t = resolve_term(Term(loss="hidden_mse", layers="uniform", name="h"), 2, 4)
    assert term_keys(t) == (["hidden:1", "hidden:2"], ["hidden:2", "hidden:4"])
    t = resolve_term(Term(loss="attention_mse", layers="uniform"), 2, 4)
    assert term_keys(t) == (["attention_scores:0", "attention_scores:1"],
                            ["attention_scores:1", "attention_scores:3"])
    t = resolve_term(Term(loss="attention_kl", layers="uniform"), 2, 4)
    assert term_keys(t) == (["attention:0", "attention:1"], ["attention:1", "attention:3"])
    assert term_keys(Term(loss="hard")) == (["logits"], [])
    assert term_keys(Term(loss="embedding_mse")) == (["embeddings"], ["embeddings"])
    t = resolve_term(Term(loss="pkd_cls", layers="skip"), 3, 6)
    assert term_keys(t) == (["cls:1", "cls:2"], ["cls:2", "cls:4"])
    with pytest.raises(ValueError, match="not resolved"):
        term_keys(Term(loss="hidden_mse", layers="last"))


def test_name_terms():
    named = name_terms([Term(loss="hidden_mse"), Term(loss="kd_kl"), Term(loss="hidden_mse"),
                        Term(loss="cosine", name="cos")])
    assert [t.name for t in named] == ["hidden_mse", "kd_kl", "hidden_mse_2", "cos"]
    with pytest.raises(ValueError, match="'x'"):
        name_terms([Term(loss="kd_kl", name="x"), Term(loss="hard", name="x")])
    with pytest.raises(ValueError, match="may not contain"):
        name_terms([Term(loss="kd_kl", name="a.b")])


def test_check_term_static_errors():
    cases = [
        (Term(loss="hidden_mse", temperature=2.0, name="h"), "takes no temperature"),
        (Term(loss="kd_kl", params={"positions": "real"}, name="k"), "unknown parameter"),
        (Term(loss="kd_kl", projection=True, name="k"), "takes no projection"),
        (Term(loss="kd_kl", layers="last", name="k"), "take no layers"),
        (Term(loss="hidden_mse", student="attention", teacher="attention", name="h"), "compares"),
        (Term(loss="hidden_mse", layers="middle", name="h"), "unknown layers spec"),
        (Term(loss="kd_kl", weight=-1, name="k"), "weight"),
        (Term(loss="kd_kl", temperature=0, name="k"), "temperature"),
        (Term(loss="cosine", student="hidden", teacher="cls", name="c"), "same type"),
    ]
    for term, message in cases:
        with pytest.raises(ValueError, match=message) as err:
            check_term(term)
        assert repr(term.name) in str(err.value)


# ----------------------------------------------------------------------------- connectors


def test_projection_init_and_width_check():
    torch.manual_seed(0)
    p = Projection(16, 32, label="term 'h'").requires_grad_(False)
    bound = math.sqrt(6.0 / (16 + 32))  # xavier-uniform bound
    assert p.weight.shape == (32, 16) and float(p.weight.abs().max()) <= bound
    assert float(p.weight.abs().max()) > bound / 2
    assert float(p.bias.abs().sum()) == 0.0
    q = Projection(200, 300, init="normal").requires_grad_(False)
    assert abs(float(q.weight.std()) - 0.02) < 0.002 and float(q.bias.abs().sum()) == 0.0
    assert p(torch.ones(2, 3, 16)).shape == (2, 3, 32)
    with pytest.raises(ValueError, match="term 'h'.*width 16.*12"):
        p(torch.ones(2, 3, 12))
    with pytest.raises(ValueError, match="init"):
        Projection(2, 2, init="kaiming")


def test_build_connectors():
    terms = [resolve_term(t, 2, 4) for t in name_terms([
        Term(loss="hidden_mse", layers="uniform", projection=True),
        Term(loss="embedding_mse", projection=True),
        Term(loss="kd_kl")])]
    connectors = build_connectors(terms, 16, 32)
    assert sorted(connectors) == ["embedding_mse[0->0]", "hidden_mse[1->2]", "hidden_mse[2->4]"]
    assert connectors["hidden_mse[1->2]"].weight.shape == (32, 16)
    with pytest.raises(ValueError, match="term 'cos'.*16.*32"):
        build_connectors([resolve_term(Term(loss="cosine", name="cos"), 2, 4)], 16, 32)
    bad = resolve_term(Term(loss="attention_mse", name="att"), 2, 4)
    bad.projection = True
    with pytest.raises(ValueError, match="term 'att'.*cannot be projected"):
        build_connectors([bad], 32, 32)


# ----------------------------------------------------------------------------- Distiller: validation


def make(terms, student=None, teacher=None, **kw):
    return Distiller(terms, student_config=student or cfg(2, 8), teacher_config=teacher or cfg(4, 8), **kw)


def test_unknown_loss_names_the_term_and_lists_losses():
    with pytest.raises(ValueError) as err:
        make([Term(loss="kd_kl"), Term(loss="kd_klx", name="soft")])
    msg = str(err.value)
    assert "'soft'" in msg and "kd_klx" in msg and "kd_kl" in msg and "attention_mse" in msg
    with pytest.raises(ValueError, match=r"term #1 \(nope\)"):
        make([Term(loss="kd_kl"), Term(loss="nope")])


def test_layer_out_of_range_names_term_and_range():
    with pytest.raises(ValueError) as err:
        make([Term(loss="hidden_mse", layers=[(1, 5)], name="deep")])
    msg = str(err.value)
    assert "'deep'" in msg and "student indices 0..2" in msg and "teacher indices 0..4" in msg
    with pytest.raises(ValueError, match=r"'att'.*student indices 0\.\.1.*teacher indices 0\.\.3"):
        make([Term(loss="attention_mse", layers=[(2, 3)], name="att")])
    with pytest.raises(ValueError, match="'copy'.*kept"):
        make([Term(loss="hidden_mse", layers="copied", name="copy")])


def test_width_mismatch_names_term_and_widths():
    with pytest.raises(ValueError) as err:
        make([Term(loss="hidden_mse", name="hid")], student=cfg(2, 16), teacher=cfg(4, 32))
    msg = str(err.value)
    assert "'hid'" in msg and "16" in msg and "32" in msg and "projection" in msg
    d = make([Term(loss="hidden_mse", name="hid", projection=True)], student=cfg(2, 16),
             teacher=cfg(4, 32))
    assert list(d.connectors) == ["hid[2->4]"]


def test_attention_head_mismatch():
    with pytest.raises(ValueError, match="'att'.*2 attention heads.*4.*head_reduce"):
        make([Term(loss="attention_mse", name="att")], student=cfg(2, 8, heads=2),
             teacher=cfg(4, 8, heads=4))
    make([Term(loss="attention_kl", name="att", params={"head_reduce": "mean"})],
         student=cfg(2, 8, heads=2), teacher=cfg(4, 8, heads=4))


def test_kd_on_regression_and_task_mismatches():
    for loss in ("kd_kl", "soft_ce"):
        with pytest.raises(ValueError, match=f"'{loss}'.*regression.*logits_mse"):
            make([Term(loss=loss)], student=cfg(2, 8, labels=1), teacher=cfg(4, 8, labels=1),
                 task_kind="regression")
    make([Term(loss="logits_mse"), Term(loss="hard")], student=cfg(2, 8, labels=1),
         teacher=cfg(4, 8, labels=1), task_kind="regression")
    with pytest.raises(ValueError, match="'token_kd'.*token classification"):
        make([Term(loss="token_kd")])
    with pytest.raises(ValueError, match="'kd_kl'.*2 labels.*3"):
        make([Term(loss="kd_kl")], student=cfg(2, 8, labels=2), teacher=cfg(4, 8, labels=3))
    with pytest.raises(ValueError, match="task_kind"):
        make([Term(loss="kd_kl")], task_kind="ranking")


def test_zero_weight_terms_are_skipped_and_not_requested():
    d = make([Term(loss="kd_kl"), Term(loss="attention_mse", weight=0.0)])
    assert [t.name for t in d.terms] == ["kd_kl"]
    assert [t.name for t in d.all_terms] == ["kd_kl", "attention_mse"]
    assert d.student_keys == ["logits"] and d.teacher_keys == ["logits"]
    assert d.teacher_needs == FeatureNeeds(False, False)
    with pytest.raises(ValueError, match="weight 0"):
        make([Term(loss="kd_kl", weight=0.0)])


def test_keys_and_needs_of_a_distiller():
    d = make([Term(loss="hard"), Term(loss="pkd_cls", layers="skip"),
              Term(loss="attention_kl", layers="last")])
    assert d.student_keys == ["attention:1", "cls:1", "logits"]
    assert d.teacher_keys == ["attention:3", "cls:2"]
    assert d.student_needs == FeatureNeeds(True, True)
    only_hard = make([Term(loss="hard")])
    assert only_hard.teacher_keys == [] and only_hard.teacher_needs == FeatureNeeds(False, False)


# ----------------------------------------------------------------------------- Distiller: values


def test_forward_golden_total_and_parts():
    terms = [Term(loss="kd_kl", weight=0.5), Term(loss="hard", weight=0.5),
             Term(loss="hidden_mse", weight=2.0, layers=[(1, 2), (2, 4)])]
    d = make(terms, student=cfg(2, 2), teacher=cfg(4, 2), detail=True)
    s_logits = torch.tensor([[0.0, 0.0]], requires_grad=True)
    student = {"logits": s_logits,
               "hidden:1": torch.tensor([[[1.0, 1.0], [5.0, 5.0]]]),
               "hidden:2": torch.tensor([[[2.0, 0.0], [5.0, 5.0]]])}
    teacher = {"logits": torch.tensor([[LN3, 0.0]]),
               "hidden:2": torch.tensor([[[0.0, 1.0], [0.0, 0.0]]]),
               "hidden:4": torch.tensor([[[0.0, 0.0], [0.0, 0.0]]])}
    batch = {"labels": torch.tensor([1]), "attention_mask": torch.tensor([[1, 0]])}
    total, parts = d(student, teacher, batch)
    kd = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    hard = LN2  # softmax([0, 0]) = [1/2, 1/2], label 1
    h1 = (1.0 + 0.0) / 2  # real token only: errors 1, 0 over width 2
    h2 = (4.0 + 0.0) / 2
    assert abs(float(total.detach()) - (0.5 * kd + 0.5 * hard + 2.0 * (h1 + h2))) < 1e-5
    expected = {"kd_kl": kd, "hard": hard, "hidden_mse": h1 + h2,
                "hidden_mse[1->2]": h1, "hidden_mse[2->4]": h2}
    assert set(parts) == set(expected)
    for k, v in expected.items():
        assert isinstance(parts[k], float) and abs(parts[k] - v) < 1e-5, k
    total.backward()
    # d total / d s = 0.5·(p_s - p_t) + 0.5·(p_s - onehot(1)) = 0.5·[-.25, .25] + 0.5·[.5, -.5]
    assert torch.allclose(s_logits.grad, torch.tensor([[0.125, -0.125]]), atol=1e-6)


def test_forward_missing_feature_and_runtime_errors_name_the_term():
    d = make([Term(loss="hidden_mse", name="hid")], student=cfg(2, 2), teacher=cfg(4, 2))
    with pytest.raises(ValueError, match="'hid'.*'hidden:2'"):
        d({"logits": torch.zeros(1, 2)}, {"hidden:4": torch.zeros(1, 1, 2)}, {})
    with pytest.raises(ValueError, match="'hid'.*shape"):
        d({"hidden:2": torch.zeros(1, 2, 2)}, {"hidden:4": torch.zeros(1, 3, 2)}, {})


def test_teacher_features_are_detached():
    d = make([Term(loss="logits_mse")])
    t = torch.tensor([[1.0, 2.0]], requires_grad=True)
    s = torch.tensor([[0.0, 0.0]], requires_grad=True)
    total, _ = d({"logits": s}, {"logits": t}, {})
    total.backward()
    assert t.grad is None and s.grad is not None


# ----------------------------------------------------------------------------- Distiller: real models


def test_narrow_bert_student_with_projections(batch, teacher):
    torch.manual_seed(2)
    s_cfg = bert_config(layers=2, hidden=16, heads=4)
    student = BertForSequenceClassification(s_cfg)
    terms = [Term(loss="kd_kl", temperature=2.0, weight=0.5), Term(loss="hard", weight=0.5),
             Term(loss="hidden_mse", layers="all_plus_embeddings", projection=True),
             Term(loss="attention_mse", layers="uniform"),
             Term(loss="attention_kl", layers="last"),
             Term(loss="cosine", projection=True, layers="last"),
             Term(loss="pkd_cls", layers="skip", projection=True, weight=10.0),
             Term(loss="embedding_mse", projection=True)]
    d = Distiller(terms, student_config=s_cfg, teacher_config=teacher.config)
    assert len(d.connectors) == 3 + 1 + 1 + 1
    total, parts = forward_pair(d, teacher, student, batch)
    assert set(parts) == {t.name for t in d.terms}
    assert all(math.isfinite(v) and v >= 0 for v in parts.values())
    assert_trains(total, student, d)
    assert all(p.grad is None for p in teacher.parameters())


def test_distilbert_student_from_bert_teacher(batch, teacher):
    torch.manual_seed(3)
    s_cfg = distil_config(layers=2, hidden=32, heads=4)
    student = DistilBertForSequenceClassification(s_cfg)
    d = Distiller([Term(loss="kd_kl", temperature=2.0), Term(loss="hard"),
                   Term(loss="cosine", layers="copied"),
                   Term(loss="attention_kl", layers="copied")],
                  student_config=s_cfg, teacher_config=teacher.config, kept=[1, 3])
    assert d.student_keys == ["attention:0", "attention:1", "hidden:1", "hidden:2", "logits"]
    assert d.teacher_keys == ["attention:1", "attention:3", "hidden:2", "hidden:4", "logits"]
    total, parts = forward_pair(d, teacher, student, batch)
    assert_trains(total, student, d)


def test_token_classification_distillation(batch):
    torch.manual_seed(4)
    t_model = BertForTokenClassification(bert_config(labels=5)).eval()
    s_cfg = bert_config(layers=2, labels=5)
    student = BertForTokenClassification(s_cfg)
    labels = torch.tensor([[-100, 1, -100, 2, 3, -100], [-100, 0, 4, -100, -100, -100],
                           [-100, 1, -100, -100, -100, -100]])
    tok_batch = {**batch, "labels": labels}
    d = Distiller([Term(loss="token_kd", temperature=2.0, params={"positions": "labelled"}),
                   Term(loss="hard"), Term(loss="logits_mse", weight=0.1)],
                  student_config=s_cfg, teacher_config=t_model.config,
                  task_kind="token_classification")
    total, parts = forward_pair(d, t_model, student, tok_batch)
    assert_trains(total, student, d)


def test_regression_distillation(batch):
    torch.manual_seed(5)
    t_model = BertForSequenceClassification(bert_config(labels=1)).eval()
    s_cfg = bert_config(layers=2, labels=1)
    student = BertForSequenceClassification(s_cfg)
    reg_batch = {**batch, "labels": torch.tensor([0.5, 3.0, 4.5])}
    d = Distiller([Term(loss="logits_mse"), Term(loss="hard")], student_config=s_cfg,
                  teacher_config=t_model.config, task_kind="regression")
    assert d._losses["hard"].regression
    total, parts = forward_pair(d, t_model, student, reg_batch)
    assert_trains(total, student, d)
