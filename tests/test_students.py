"""Students built from a teacher: layer selection, same-class copies, DistilBERT mapping, random init."""

from __future__ import annotations

import pytest
import torch
import transformers as tf
from transformers.masking_utils import create_bidirectional_mask

from bertdistill.students import (
    StudentInfo,
    build_student,
    count_parameters,
    describe_student,
    select_layers,
    student_from_config,
)

LABELS = {0: "neg", 1: "neu", 2: "pos"}


def tiny_bert_config(**overrides) -> tf.BertConfig:
    args = dict(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=100,
        max_position_embeddings=64,
        id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()},
        problem_type="single_label_classification",
    )
    args.update(overrides)
    return tf.BertConfig(**args)


def randomized(model, seed: int = 0):
    """Eval-mode model whose every weight is random (LayerNorms and biases too), so a weight
    copied to the wrong place cannot go unnoticed."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.2)
    return model.eval()


def teacher(cls=tf.BertForSequenceClassification, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return randomized(cls(tiny_bert_config(**overrides)), seed)


def roberta_teacher(cls=tf.RobertaForSequenceClassification, seed: int = 0):
    torch.manual_seed(seed)
    config = tf.RobertaConfig(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
        vocab_size=100, max_position_embeddings=66, pad_token_id=1, type_vocab_size=1,
        id2label=LABELS, label2id={v: k for k, v in LABELS.items()},
    )
    return randomized(cls(config), seed)


def batch(seed: int = 1, pad_id: int = 0):
    """Two sequences, the second right-padded, ids avoiding the pad id."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, 100, (2, 9), generator=gen)
    mask = torch.ones_like(ids)
    ids[1, 6:] = pad_id
    mask[1, 6:] = 0
    return ids, mask


def run_teacher_layers(base, ids, mask, layers):
    """The teacher's own embeddings followed by its layers `layers`, one after the other."""
    h = base.embeddings(input_ids=ids)
    attn = create_bidirectional_mask(config=base.config, inputs_embeds=h, attention_mask=mask)
    for i in layers:
        h = base.encoder.layer[i](h, attn)
    return h


def storages(model) -> set[int]:
    return {t.untyped_storage().data_ptr() for t in model.state_dict().values()}


# ---------------------------------------------------------------------------------------------
# select_layers


def test_every_other_is_the_default():
    assert select_layers(teacher_layers=6) == [0, 2, 4]
    assert select_layers("every_other", 12) == [0, 2, 4, 6, 8, 10]
    assert select_layers("every_other", 4) == [0, 2]
    assert select_layers("every-other", 5, 3) == [0, 2, 4]


@pytest.mark.parametrize(
    "spec,teacher_layers,num_layers,expected",
    [
        ("skip", 12, None, [1, 3, 5, 7, 9, 11]),
        ("skip", 12, 6, [1, 3, 5, 7, 9, 11]),
        ("skip", 12, 4, [2, 5, 8, 11]),
        ("skip", 12, 3, [3, 7, 11]),
        ("skip", 6, None, [1, 3, 5]),
        ("skip", 6, 2, [2, 5]),
        ("skip", 6, 4, [0, 2, 3, 5]),
        ("last", 12, None, [6, 7, 8, 9, 10, 11]),
        ("last", 6, 2, [4, 5]),
        ("first", 12, 4, [0, 1, 2, 3]),
        ("first", 6, None, [0, 1, 2]),
        (4, 12, None, [0, 3, 6, 9]),
        (6, 12, 6, [0, 2, 4, 6, 8, 10]),
        (3, 6, None, [0, 2, 4]),
        (5, 12, None, [0, 2, 4, 7, 9]),
        (12, 12, None, list(range(12))),
        (1, 6, None, [0]),
        ("4", 12, None, [0, 3, 6, 9]),
        ([0, 5, 11], 12, None, [0, 5, 11]),
        ((1, 2), 6, 2, [1, 2]),
        ("0, 5,11", 12, None, [0, 5, 11]),
    ],
)
def test_presets_counts_and_lists(spec, teacher_layers, num_layers, expected):
    assert select_layers(spec, teacher_layers, num_layers) == expected


@pytest.mark.parametrize(
    "spec,teacher_layers,num_layers,message",
    [
        ([0, 6], 6, None, "teacher layer index 6 is out of range: the teacher has 6 layers"),
        ([-1, 2], 6, None, "teacher layer index -1 is out of range: the teacher has 6 layers"),
        ("0,-1", 6, None, "teacher layer index -1"),
        ([0, 3, 3], 6, None, "teacher layer index 3 (position 2) does not come after 3"),
        ([4, 2], 6, None, "strictly increasing (the teacher has 6 layers)"),
        ([], 6, None, "empty (the teacher has 6 layers)"),
        ([0, 1.5], 6, None, "1.5"),
        ([0, True], 6, None, "True"),
        ([0, 2], 6, 3, "num_layers=3"),
        (7, 6, None, "not possible for a teacher with 6 layers"),
        (0, 6, None, "not possible for a teacher with 6 layers"),
        (True, 6, None, "True"),
        (3, 6, 2, "contradicts num_layers=2"),
        ("skip", 6, 7, "num_layers=7 is not possible for a teacher with 6 layers"),
        ("every_other", 12, 4, "keeps 6 of 12"),
        ("pkd", 12, None, "unknown layer selection 'pkd'"),
        (None, 12, None, "None"),
    ],
)
def test_bad_selections_raise_with_a_message(spec, teacher_layers, num_layers, message):
    with pytest.raises(ValueError) as err:
        select_layers(spec, teacher_layers, num_layers)
    assert message in str(err.value)


# ---------------------------------------------------------------------------------------------
# arch="same"


def test_same_arch_student_runs_the_kept_teacher_layers_exactly():
    t = teacher()
    student, info = build_student(t, layers=[0, 2])
    assert type(student) is tf.BertForSequenceClassification
    assert info == StudentInfo(arch="same", kept=[0, 2], teacher_layers=4)
    assert student.config.num_hidden_layers == 2 and len(student.bert.encoder.layer) == 2
    ids, mask = batch()
    with torch.no_grad():
        out = student(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        expected = run_teacher_layers(t.bert, ids, mask, [0, 2])
        # the head is the teacher's too: classifier(pooler(h))
        expected_logits = t.classifier(t.bert.pooler(expected))
    assert torch.equal(out.hidden_states[-1], expected)
    assert torch.equal(out.logits, expected_logits)
    # and not what the teacher's first two layers compute
    assert not torch.allclose(out.hidden_states[-1], run_teacher_layers(t.bert, ids, mask, [0, 1]))


def test_same_arch_keeping_every_layer_reproduces_the_teacher():
    t = teacher()
    student, info = build_student(t, layers=4)
    assert info.kept == [0, 1, 2, 3]
    ids, mask = batch()
    with torch.no_grad():
        assert torch.equal(student(input_ids=ids, attention_mask=mask).logits,
                           t(input_ids=ids, attention_mask=mask).logits)
    assert student.config.id2label == LABELS
    assert student.config.label2id == {v: k for k, v in LABELS.items()}
    assert student.config.problem_type == "single_label_classification"
    assert student.config.num_hidden_layers == 4 and t.config.num_hidden_layers == 4


def test_same_arch_shares_no_storage_with_the_teacher():
    t = teacher()
    before = {k: v.clone() for k, v in t.state_dict().items()}
    student, _ = build_student(t, layers=[1, 3])
    assert not storages(student) & storages(t)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    for key, value in t.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize(
    "cls",
    [tf.BertForTokenClassification, tf.BertForMaskedLM, tf.BertModel],
)
def test_same_arch_other_heads(cls):
    t = teacher(cls)
    student, _ = build_student(t, layers="skip", num_layers=2)
    assert type(student) is cls
    ids, mask = batch()
    with torch.no_grad():
        out = student(input_ids=ids, attention_mask=mask)
        h = run_teacher_layers(t.base_model, ids, mask, [1, 3])
        if cls is tf.BertForTokenClassification:
            assert torch.equal(out.logits, t.classifier(h))
        elif cls is tf.BertForMaskedLM:
            assert torch.equal(out.logits, t.cls(h))
            assert student.cls.predictions.decoder.weight is student.bert.embeddings.word_embeddings.weight
        else:
            assert torch.equal(out.last_hidden_state, h)
            assert torch.equal(out.pooler_output, t.pooler(h))


def test_same_arch_base_model_without_pooler_stays_without():
    torch.manual_seed(0)
    t = randomized(tf.BertModel(tiny_bert_config(), add_pooling_layer=False))
    student, _ = build_student(t, layers=[0, 3])
    assert student.pooler is None
    assert not any("pooler" in name for name, _ in student.named_parameters())


def test_same_arch_roberta():
    t = roberta_teacher()
    ids, mask = batch(pad_id=1)
    student, _ = build_student(t, layers=[1, 2])
    assert type(student) is tf.RobertaForSequenceClassification
    with torch.no_grad():
        h = run_teacher_layers(t.roberta, ids, mask, [1, 2])
        assert torch.equal(student(input_ids=ids, attention_mask=mask).logits, t.classifier(h))
    full, _ = build_student(t, layers=[0, 1, 2, 3])
    with torch.no_grad():
        assert torch.equal(full(input_ids=ids, attention_mask=mask).logits,
                           t(input_ids=ids, attention_mask=mask).logits)


def test_same_arch_mlm_saves_and_reloads(tmp_path):
    t = teacher(tf.BertForMaskedLM)
    student, _ = build_student(t, layers="first", num_layers=2)
    student.save_pretrained(tmp_path)
    reloaded = tf.AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
    assert type(reloaded) is tf.BertForMaskedLM and reloaded.config.num_hidden_layers == 2
    ids, mask = batch()
    with torch.no_grad():
        assert torch.allclose(reloaded(input_ids=ids, attention_mask=mask).logits,
                              student(input_ids=ids, attention_mask=mask).logits, atol=1e-6)


def test_attention_implementation_follows_the_request():
    t = teacher()
    student, _ = build_student(t, layers=[0, 2], attn_implementation="eager")
    assert student.config._attn_implementation == "eager"
    ids, mask = batch()
    with torch.no_grad():
        out = student(input_ids=ids, attention_mask=mask, output_attentions=True)
    assert len(out.attentions) == 2 and out.attentions[0].shape == (2, 2, 9, 9)
    dstudent, _ = build_student(t, layers=[0, 2], arch="distilbert", attn_implementation="eager")
    assert dstudent.config._attn_implementation == "eager"
    with torch.no_grad():
        out = dstudent(input_ids=ids, attention_mask=mask, output_attentions=True)
    assert len(out.attentions) == 2 and out.attentions[0].shape == (2, 2, 9, 9)


def test_student_follows_teacher_mode_and_dtype():
    t = teacher().train()
    student, _ = build_student(t, layers=[0, 2])
    assert student.training
    t16 = teacher(tf.BertForTokenClassification).to(torch.bfloat16)
    for arch in ("same", "distilbert"):
        student, _ = build_student(t16, layers=[0, 2], arch=arch)
        assert {p.dtype for p in student.parameters()} == {torch.bfloat16}
        assert not student.training


def test_a_qa_teacher_gives_a_qa_student_with_its_span_head():
    config = tiny_bert_config()
    config.num_labels = 2  # start and end
    t = tf.BertForQuestionAnswering(config).eval()
    ids = torch.tensor([[2, 7, 8, 9, 3]])
    for arch, cls in (("same", tf.BertForQuestionAnswering), ("distilbert", tf.DistilBertForQuestionAnswering)):
        student, info = build_student(t, layers=list(range(t.config.num_hidden_layers)), arch=arch)
        assert type(student) is cls
        with torch.no_grad():  # every layer kept, one segment: the same span logits as the teacher
            s_out, t_out = student(input_ids=ids), t(input_ids=ids, token_type_ids=torch.zeros_like(ids))
        assert torch.allclose(s_out.start_logits, t_out.start_logits, atol=1e-5)
        assert torch.allclose(s_out.end_logits, t_out.end_logits, atol=1e-5)


def test_unsupported_teachers_and_archs_are_refused():
    mc = tf.BertForMultipleChoice(tiny_bert_config())
    with pytest.raises(TypeError, match="BertForMultipleChoice"):
        build_student(mc)
    with pytest.raises(TypeError, match="Linear"):
        build_student(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="unknown student arch 'tinybert'"):
        build_student(teacher(), arch="tinybert")
    with pytest.raises(ValueError, match="the teacher has 4 layers"):
        build_student(teacher(), layers=[0, 4])
    with pytest.raises(ValueError, match="RobertaForSequenceClassification.*arch='same'"):
        build_student(roberta_teacher(), arch="distilbert")


# ---------------------------------------------------------------------------------------------
# arch="distilbert"


def test_distilbert_sequence_classification_student():
    t = teacher()
    student, info = build_student(t, layers=[1, 3], arch="distilbert")
    assert isinstance(student, tf.DistilBertForSequenceClassification)
    assert info == StudentInfo(arch="distilbert", kept=[1, 3], teacher_layers=4)
    c = student.config
    assert c.model_type == "distilbert"
    assert (c.n_layers, c.dim, c.hidden_dim, c.n_heads, c.vocab_size) == (2, 32, 64, 2, 100)
    assert c.activation == "gelu" and c.sinusoidal_pos_embds is False
    assert c.max_position_embeddings == 64 and c.pad_token_id == 0
    assert c.id2label == LABELS and c.problem_type == "single_label_classification"
    names = [name for name, _ in student.named_parameters()]
    assert not [n for n in names if "token_type" in n or "pooler" in n]
    assert not storages(student) & storages(t)

    ids, mask = batch()
    with torch.no_grad():
        out = student(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        h = run_teacher_layers(t.bert, ids, mask, [1, 3])
        # same computation with explicit all-zero token types
        h_typed = t.bert(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
        # BERT's pooler applies tanh where DistilBERT's pre_classifier applies ReLU: the head's
        # weights are copied but its activation is DistilBERT's own.
        pooled = torch.relu(t.bert.pooler.dense(h[:, 0]))
        expected_logits = t.classifier(pooled)
    hidden = out.hidden_states[-1]
    assert (hidden - h)[mask.bool()].abs().max() < 1e-5
    assert (out.hidden_states[0] - t.bert.embeddings(input_ids=ids)).abs().max() < 1e-5
    assert torch.allclose(out.logits, expected_logits, atol=1e-5)
    assert not torch.allclose(out.logits, t.classifier(t.bert.pooler(h)), atol=1e-3)
    full, _ = build_student(t, layers=4, arch="distilbert")
    with torch.no_grad():
        full_h = full.distilbert(input_ids=ids, attention_mask=mask).last_hidden_state
    assert (full_h - h_typed)[mask.bool()].abs().max() < 1e-5


def test_distilbert_token_classification_logits_match_the_teacher():
    t = teacher(tf.BertForTokenClassification)
    student, _ = build_student(t, layers=[0, 1, 2, 3], arch="distilbert")
    assert isinstance(student, tf.DistilBertForTokenClassification)
    ids, mask = batch()
    with torch.no_grad():
        got = student(input_ids=ids, attention_mask=mask).logits
        want = t(input_ids=ids, attention_mask=mask).logits
    assert (got - want)[mask.bool()].abs().max() < 1e-5


def test_distilbert_student_saves_and_reloads_with_plain_transformers(tmp_path):
    t = teacher()
    student, _ = build_student(t, layers="every_other", arch="distilbert")
    student.save_pretrained(tmp_path)
    reloaded = tf.AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(reloaded) is tf.DistilBertForSequenceClassification
    assert reloaded.config.model_type == "distilbert" and reloaded.config.id2label == LABELS
    ids, mask = batch()
    with torch.no_grad():
        assert torch.allclose(reloaded(input_ids=ids, attention_mask=mask).logits,
                              student(input_ids=ids, attention_mask=mask).logits, atol=1e-6)


def test_distilbert_mlm_matches_the_teacher_and_reloads(tmp_path):
    t = teacher(tf.BertForMaskedLM)
    student, _ = build_student(t, layers=[0, 1, 2, 3], arch="distilbert")
    assert isinstance(student, tf.DistilBertForMaskedLM)
    assert student.vocab_projector.weight is student.distilbert.embeddings.word_embeddings.weight
    ids, mask = batch()
    with torch.no_grad():
        logits = student(input_ids=ids, attention_mask=mask).logits
        want = t(input_ids=ids, attention_mask=mask).logits
    assert (logits - want)[mask.bool()].abs().max() < 1e-5

    small, _ = build_student(t, layers=[0, 3], arch="distilbert")
    small.save_pretrained(tmp_path)
    reloaded = tf.AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
    assert type(reloaded) is tf.DistilBertForMaskedLM and reloaded.config.n_layers == 2
    assert reloaded.vocab_projector.weight is reloaded.distilbert.embeddings.word_embeddings.weight
    with torch.no_grad():
        assert torch.allclose(reloaded(input_ids=ids, attention_mask=mask).logits,
                              small(input_ids=ids, attention_mask=mask).logits, atol=1e-6)


def test_distilbert_from_base_model_and_from_a_distilbert_teacher():
    t = teacher(tf.BertModel)
    student, _ = build_student(t, layers=[2], arch="distilbert")
    assert type(student) is tf.DistilBertModel
    ids, mask = batch()
    with torch.no_grad():
        got = student(input_ids=ids, attention_mask=mask).last_hidden_state
        want = run_teacher_layers(t, ids, mask, [2])
    assert (got - want)[mask.bool()].abs().max() < 1e-5

    deep, _ = build_student(teacher(tf.BertForTokenClassification), layers=4, arch="distilbert")
    for arch in ("same", "distilbert"):
        shallow, info = build_student(deep, layers="last", num_layers=2, arch=arch)
        assert type(shallow) is tf.DistilBertForTokenClassification
        assert shallow.config.n_layers == 2 and info.kept == [2, 3]
        with torch.no_grad():
            h = deep.distilbert.embeddings(ids)
            attn = create_bidirectional_mask(config=deep.config, inputs_embeds=h, attention_mask=mask)
            for i in (2, 3):
                h = deep.distilbert.transformer.layer[i](h, attn)
            assert torch.equal(shallow(input_ids=ids, attention_mask=mask).logits, deep.classifier(h))


def test_distilbert_warns_about_another_layer_norm_eps():
    t = teacher(tf.BertForTokenClassification, layer_norm_eps=1e-5)
    with pytest.warns(UserWarning, match="layer_norm_eps=1e-05"):
        student, _ = build_student(t, layers=[0, 1], arch="distilbert")
    assert isinstance(student, tf.DistilBertForTokenClassification)


# ---------------------------------------------------------------------------------------------
# student_from_config and describe_student


@pytest.mark.parametrize("arch", ["bert", "distilbert"])
def test_student_from_config_builds_the_requested_shape(arch):
    model = student_from_config(
        {"hidden_size": 128, "num_hidden_layers": 2},
        "classification",
        3,
        arch=arch,
        tokenizer_vocab_size=120,
        id2label=["neg", "neu", "pos"],
    )
    expected_cls = tf.BertForSequenceClassification if arch == "bert" else tf.DistilBertForSequenceClassification
    assert type(model) is expected_cls
    c = model.config
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.vocab_size) == (128, 2, 2, 120)
    assert c.id2label == LABELS and c.num_labels == 3
    assert model.get_input_embeddings().weight.shape == (120, 128)
    assert model.classifier.out_features == 3
    ffn = model.bert.encoder.layer[0].intermediate.dense if arch == "bert" else model.distilbert.transformer.layer[0].ffn.lin1
    assert ffn.out_features == 512
    ids = torch.randint(0, 120, (2, 5))
    assert model.eval()(input_ids=ids).logits.shape == (2, 3)


def test_student_from_config_other_tasks_and_sources():
    reg = student_from_config({"hidden_size": 64, "num_hidden_layers": 1, "intermediate_size": 96},
                              "regression", 1, arch="distilbert")
    assert reg.config.problem_type == "regression" and reg.config.num_labels == 1
    assert reg.config.hidden_dim == 96
    tok = student_from_config({"dim": 48, "n_layers": 3, "n_heads": 4}, "token_classification", 5,
                              arch="distilbert")
    assert type(tok) is tf.DistilBertForTokenClassification
    assert (tok.config.dim, tok.config.n_layers, tok.config.n_heads, tok.config.num_labels) == (48, 3, 4, 5)
    mlm = student_from_config({"hidden_size": 64, "num_hidden_layers": 2}, "masked_lm", 2, tokenizer_vocab_size=50)
    assert type(mlm) is tf.BertForMaskedLM and mlm.config.vocab_size == 50
    # from a teacher's config: its sizes (depth included), converted to DistilBERT names
    base = student_from_config(tiny_bert_config(), "base", 2, arch="distilbert", attn_implementation="eager")
    assert type(base) is tf.DistilBertModel
    assert (base.config.dim, base.config.n_layers, base.config.hidden_dim) == (32, 4, 64)
    assert base.config._attn_implementation == "eager"


def test_student_from_config_errors():
    with pytest.raises(ValueError, match="hiden_size"):
        student_from_config({"hiden_size": 64}, "classification", 2)
    with pytest.raises(ValueError, match="'dim' is a DistilBERT name"):
        student_from_config({"dim": 64}, "classification", 2, arch="bert")
    with pytest.raises(ValueError, match="layer_norm_eps"):
        student_from_config({"hidden_size": 64, "layer_norm_eps": 1e-5}, "classification", 2, arch="distilbert")
    with pytest.raises(ValueError, match="not divisible"):
        student_from_config({"hidden_size": 100, "num_attention_heads": 3}, "classification", 2)
    with pytest.raises(ValueError, match="num_labels=3"):
        student_from_config({"hidden_size": 64}, "regression", 3)
    with pytest.raises(ValueError, match="id2label has 2 labels"):
        student_from_config({"hidden_size": 64}, "classification", 3, id2label=["a", "b"])
    with pytest.raises(ValueError, match="unknown task kind 'qa'"):
        student_from_config({"hidden_size": 64}, "qa", 2)
    with pytest.raises(ValueError, match="unknown student arch"):
        student_from_config({"hidden_size": 64}, "classification", 2, arch="albert")


def test_describe_student():
    t = teacher()
    student, info = build_student(t, layers=[0, 2], arch="distilbert")
    line = describe_student(student, info)
    assert "DistilBertForSequenceClassification" in line
    assert "arch=distilbert" in line and "[0, 2] of 4" in line and "2 layers" in line
    n = count_parameters(student)
    assert n == sum(p.numel() for p in set(student.parameters()))
    assert f"{n / 1e3:.1f}K parameters" in line
    assert "\n" not in line
    random = student_from_config({"hidden_size": 32, "num_hidden_layers": 1}, "classification", 2)
    assert "randomly initialised" in describe_student(random, StudentInfo("bert", None, 0))
