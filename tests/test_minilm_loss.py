"""The MiniLM / MiniLMv2 relation loss against values computed by hand and by explicit loops,
and its checks in the distiller (relation heads, variants, teacher layer)."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import BertConfig, DistilBertConfig

from bertdistill.distill import Distiller, Term, check_term, load_recipe, resolve_layers
from bertdistill.distill.losses import LOSSES, build_loss
from bertdistill.distill.relations import relation_log_probs


def _softmax(row: list[float]) -> list[float]:
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    return [e / sum(exps) for e in exps]


def expected_relation_kl(s_x, s_y, t_x, t_y, real, heads):
    """The MiniLMv2 formula with loops: per example, mean over relation heads and real query
    tokens of KL(teacher row || student row) over real keys; then mean over examples."""
    per_example = []
    for b in range(len(real)):
        tokens = [i for i, r in enumerate(real[b]) if r]
        total = 0.0
        for a in range(heads):
            rows = {}
            for side, (x, y) in (("s", (s_x, s_y)), ("t", (t_x, t_y))):
                d = len(x[b][0]) // heads
                rows[side] = []
                for i in tokens:
                    scores = [sum(x[b][i][a * d + k] * y[b][j][a * d + k] for k in range(d)) / math.sqrt(d)
                              for j in tokens]
                    rows[side].append(_softmax(scores))
            for p_t, p_s in zip(rows["t"], rows["s"]):
                total += sum(pt * (math.log(pt) - math.log(ps)) for pt, ps in zip(p_t, p_s))
        per_example.append(total / (heads * len(tokens)))
    return sum(per_example) / len(per_example)


def test_one_relation_by_hand():
    """qq only, one head of width 1, two tokens: the student's queries are 0, so its relation
    rows are uniform; the teacher's queries (1, 0) give row 0 = softmax(1, 0), row 1 uniform."""
    student = torch.zeros(1, 2, 3)  # [Q | K | V], width 1 each
    teacher = torch.zeros(1, 2, 3)
    teacher[0, 0, 0] = 1.0
    p = math.e / (math.e + 1)
    row0 = p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p))  # KL(softmax(1, 0) || uniform)
    loss = build_loss("minilm", relation_heads=1, relations={"qq": 1.0})
    assert loss(student, teacher).item() == pytest.approx((row0 + 0.0) / 2, rel=1e-6)
    assert (row0 + 0.0) / 2 == pytest.approx(0.05545, abs=1e-4)
    # a padded third token, whatever its values, changes nothing
    pad_s, pad_t = torch.cat([student, torch.full((1, 1, 3), 7.0)], 1), torch.cat([teacher, -torch.ones(1, 1, 3)], 1)
    mask = torch.tensor([[1, 1, 0]])
    assert loss(pad_s, pad_t, mask).item() == pytest.approx((row0 + 0.0) / 2, rel=1e-6)


def test_v2_relations_with_padding_and_other_widths_match_the_loops():
    torch.manual_seed(0)
    heads = 2
    student = torch.randn(2, 4, 3 * 6)  # student width 6: relation heads of width 3
    teacher = torch.randn(2, 4, 3 * 4) * 2  # teacher width 4: relation heads of width 2
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    real = mask.tolist()
    sq, sk, sv = (t.tolist() for t in student.chunk(3, -1))
    tq, tk, tv = (t.tolist() for t in teacher.chunk(3, -1))
    weights = {"qq": 1.0, "kk": 0.5, "vv": 2.0}
    expected = (1.0 * expected_relation_kl(sq, sq, tq, tq, real, heads)
                + 0.5 * expected_relation_kl(sk, sk, tk, tk, real, heads)
                + 2.0 * expected_relation_kl(sv, sv, tv, tv, real, heads))
    loss = build_loss("minilm", relation_heads=heads, relations=weights)
    value = loss(student, teacher, mask)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    assert value.item() > 0.05
    # the attention-like relation (v1's qk) by the same loops
    qk = build_loss("minilm", variant="v1", relation_heads=heads, relations={"qk": 1.0})(student, teacher, mask)
    assert qk.item() == pytest.approx(expected_relation_kl(sq, sk, tq, tk, real, heads), rel=1e-5)
    # padding really is left out: other values at the padded position, same loss
    changed_s, changed_t = student.clone(), teacher.clone()
    changed_s[1, 3], changed_t[1, 3] = 50.0, -50.0
    assert loss(changed_s, changed_t, mask).item() == pytest.approx(value.item(), rel=1e-6)
    assert loss(changed_s, changed_t).item() != pytest.approx(value.item(), rel=1e-3)  # ...and counted without mask


def test_identical_relations_give_zero_and_the_gradient_is_finite():
    torch.manual_seed(1)
    teacher = torch.randn(2, 5, 3 * 8)
    # the student's width differs but its relations are the teacher's: each relation head of the
    # student holds its teacher head twice over (width 8, dot products doubled), scaled by c with
    # c² · 2 x·y / √8 = x·y / √4, i.e. c = 2^(-1/4), so that X·Yᵀ/√d_r is the same
    t_heads = teacher.reshape(2, 5, 3, 2, 4)
    student = torch.cat([t_heads, t_heads], -1).reshape(2, 5, 3 * 16) * 2 ** -0.25
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    loss = build_loss("minilm", relation_heads=2)
    assert loss(student, teacher, mask).item() == pytest.approx(0.0, abs=1e-6)
    leaf = torch.randn(2, 5, 3 * 16, requires_grad=True)
    loss(leaf, teacher, mask).backward()
    assert torch.isfinite(leaf.grad).all() and leaf.grad[1, 2:].abs().sum() == 0  # padding gets no gradient


def test_qk_relation_over_the_models_heads_is_its_attention():
    """v1's attention distributions: qk over the model's own heads is what BERT attends with."""
    from transformers import BertModel

    from bertdistill.distill.qkv import record_qkv

    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=32), add_pooling_layer=False).eval()
    model.set_attn_implementation("eager")
    record_qkv(model, [1])
    ids, mask = torch.randint(3, 30, (2, 6)), torch.tensor([[1] * 6, [1, 1, 1, 1, 0, 0]])
    out = model(input_ids=ids, attention_mask=mask, output_attentions=True)
    q, k, _ = out["qkv:1"].chunk(3, -1)
    probs = relation_log_probs(q, k, 4, mask).exp()
    torch.testing.assert_close(probs[0], out.attentions[1][0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(probs[1, :, :4, :4], out.attentions[1][1, :, :4, :4], rtol=1e-5, atol=1e-6)


def test_registry_entry_and_parameter_checks():
    assert LOSSES["minilm"].features == ("qkv",)
    term = Term(loss="minilm")
    assert (term.student, term.teacher) == ("qkv", "qkv")
    for params, message in (({"relations": {"qv": 1}}, "unknown relation 'qv'"),
                            ({"relations": {"qq": -1}}, "must be a number >= 0"),
                            ({"relations": {"qq": 0}}, "every relation has weight 0"),
                            ({"relation_heads": 0}, "relation_heads must be an integer >= 1"),
                            ({"variant": "v3"}, "variant must be 'v2' or 'v1'"),
                            ({"heads": 2}, "unknown parameter")):
        with pytest.raises(ValueError, match=message):
            check_term(Term(loss="minilm", params=params))
    with pytest.raises(ValueError, match="relation_heads is not set"):
        build_loss("minilm")(torch.zeros(1, 2, 6), torch.zeros(1, 2, 6))


def _configs(s_width=12, s_heads=2, t_width=24, t_heads=4):
    student = DistilBertConfig(vocab_size=30, dim=s_width, n_layers=2, n_heads=s_heads, hidden_dim=32)
    teacher = BertConfig(vocab_size=30, hidden_size=t_width, num_hidden_layers=3, num_attention_heads=t_heads,
                         intermediate_size=32)
    return {"student_config": student, "teacher_config": teacher, "task_kind": "token_classification"}


def test_distiller_fills_relation_heads_and_refuses_what_cannot_serve():
    d = Distiller([Term(loss="minilm")], **_configs())
    loss = d._losses["minilm"]
    assert (loss.variant, loss.relation_heads) == ("v2", 4)  # the teacher's head count
    assert d.terms[0].layers == [(1, 2)] and d.student_keys == ["qkv:1"] and d.teacher_keys == ["qkv:2"]
    assert d.student_needs.qkv_layers == frozenset({1}) and not d.student_needs.attentions
    with pytest.raises(ValueError, match=r"term 'minilm': minilm: 5 relation heads do not divide the student width 12"):
        Distiller([Term(loss="minilm", params={"relation_heads": 5})], **_configs())
    with pytest.raises(ValueError, match="minilm v1 compares the models' own attention heads.*2 and the teacher 4"):
        Distiller([Term(loss="minilm", params={"variant": "v1"})], **_configs())
    v1 = Distiller([Term(loss="minilm", params={"variant": "v1"})], **_configs(s_heads=4))
    assert v1._losses["minilm"].relation_heads == 4 and v1._losses["minilm"].relations == {"qk": 1.0, "vv": 1.0}
    with pytest.raises(ValueError, match="out of range for qkv features"):
        Distiller([Term(loss="minilm", layers=[[2, 2]])], **_configs())


def test_negative_layer_indices_count_from_the_end():
    assert resolve_layers([[-1, -1]], 4, 12, feature="qkv") == [(3, 11)]
    assert resolve_layers([[-1, 8]], 4, 12, feature="qkv") == [(3, 8)]
    assert resolve_layers([[-1, -2]], 4, 12, feature="hidden") == [(4, 11)]  # hidden: 0 is the embeddings
    d = Distiller([Term(loss="minilm", layers=[[-1, 0]])], **_configs())
    assert d.terms[0].layers == [(1, 0)] and d.teacher_keys == ["qkv:0"]


def test_the_shipped_recipe():
    recipe = load_recipe("general_minilm")
    (term,) = recipe.terms
    assert (term.loss, term.student, term.layers) == ("minilm", "qkv", [(-1, -1)])
    assert term.params == {"variant": "v2", "relations": {"qq": 1.0, "kk": 1.0, "vv": 1.0}}
    d = Distiller(recipe.terms, **_configs())
    assert d.terms[0].layers == [(1, 2)]  # student's last <- teacher's last
