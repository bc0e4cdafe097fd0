"""The public Python API. The CLI only parses arguments and calls these functions.

Every function takes the same data keywords as the CLI's data flags (``text_column``,
``text_pair_column``, ``label_column``, ``task_kind``, ``labels``, ``delimiter``,
``validation_split``, ``skip_bad_rows``) and the same model keywords (``revision``,
``trust_remote_code``); training options are a dict or a ``TrainConfig`` everywhere.
``task=None`` with ``data`` given reads the format from the file's extension.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .data import load_task
from .metrics import format_metrics
from .models.loading import check_length_fits, hub_options
from .pipelines.distill import DistillConfig
from .pipelines.finetune import FinetuneConfig, FinetuneRecipe
from .pipelines.qa_finetune import QA_MAX_LENGTH, QaFinetuneRecipe
from .training.engine import TrainConfig

DATA_KEYS = ("text_column", "text_pair_column", "label_column", "task_kind", "labels", "delimiter",
             "validation_split")


def data_options(data_options: dict | None = None, **given) -> dict:
    """The ``load_task`` keywords of a call: ``data_options`` plus the keywords given (not None)."""
    out = dict(data_options or {})
    unknown = sorted(set(out) - set(DATA_KEYS))
    if unknown:
        raise ValueError(f"unknown data option(s) {unknown}; known: {list(DATA_KEYS)}")
    out.update({k: v for k, v in given.items() if v is not None})
    return out


def train_options(train: TrainConfig | dict | None) -> dict:
    """Training options as a dict of the keys given: a TrainConfig gives every field."""
    if train is None:
        return {}
    if isinstance(train, TrainConfig):
        return dataclasses.asdict(train)
    if not isinstance(train, dict):
        raise ValueError(f"train= must be a dict or a TrainConfig, got {type(train).__name__}")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(train) - known)
    if unknown:
        raise ValueError(f"unknown training option(s) {unknown}; known: {sorted(known)}")
    return dict(train)


def finetune(task: str | None = None, model: str = "minilm-l6", output: str = "runs/teacher",
             data: str | None = None, *, train: TrainConfig | dict | None = None, max_length: int | None = None,
             max_train_examples: int | None = None, max_eval_examples: int | None = None,
             skip_bad_rows: bool = False, text_column: str | None = None, text_pair_column: str | None = None,
             label_column: str | None = None, task_kind: str | None = None, labels: list[str] | str | None = None,
             delimiter: str | None = None, validation_split: float = 0.1, revision: str | None = None,
             trust_remote_code: bool = False, data_options: dict | None = None, **options) -> dict:
    """Fine-tune ``model`` on ``task``; the best dev checkpoint lands in ``output/best``.

    ``train``: a dict of the TrainConfig fields to change (``{"epochs": 3, "lr": 5e-5}``) or a
    TrainConfig. Other keywords of ``FinetuneConfig`` (``eval_split``, ``test_split``, ...)
    pass through ``options``. Returns the results dict (``best_dir``, dev/test metrics, and a
    ``verdict``: the dev metric against the best constant answer). Unless ``train`` sets
    ``epochs`` or ``max_steps``, a small train split gets a smaller batch and more epochs
    (``bertdistill.pipelines.small_data``; said in one line, recorded as ``small_data``).
    ``max_length`` defaults to 128 tokens, and to 384-token windows for question answering
    (``task="squad"``), whose other window options go in ``qa_options``
    (``{"doc_stride": 128, "max_question_length": 64, "n_best": 20, "max_answer_length": 30}``).

    Example::

        import bertdistill
        result = bertdistill.finetune(data="reviews.csv", model="minilm-l6", output="runs/teacher",
                                      train={"epochs": 3})
        print(result["best_dir"], result["dev"]["accuracy"])
    """
    options["data_options"] = _data(locals_=locals(), base=data_options)
    qa = _is_qa(task)
    _check_qa_options(qa, options.get("qa_options"))
    if max_length is None:
        max_length = QA_MAX_LENGTH if qa else 128
    config = FinetuneConfig(task=task, model=model, output=output, data=data, max_length=max_length,
                            max_train_examples=max_train_examples, max_eval_examples=max_eval_examples,
                            skip_bad_rows=skip_bad_rows, **options)
    config.train = TrainConfig(**train_options(train))
    config.train_given = sorted(train_options(train))  # the rest may follow the data size (small data)
    with hub_options(revision=revision, trust_remote_code=trust_remote_code):
        config.max_length = check_length_fits(model, max_length)  # within the model's positions, before any work
        return (QaFinetuneRecipe if qa else FinetuneRecipe)(config).run()


def distill(teacher: str, task: str | None = None, output: str = "runs/student", data: str | None = None, *,
            recipe: str = "distilbert", train: TrainConfig | dict | None = None,
            student_arch: str | None = None, student_layers: int | str | list[int] | None = None,
            student: str | None = None, student_config: dict | None = None, temperature: float | None = None,
            weights: dict[str, float] | None = None, max_length: int | None = None,
            max_train_examples: int | None = None, max_eval_examples: int | None = None,
            skip_bad_rows: bool = False, cache_teacher: bool = True, cache_dir: str | None = None,
            text_column: str | None = None, text_pair_column: str | None = None, label_column: str | None = None,
            task_kind: str | None = None, labels: list[str] | str | None = None, delimiter: str | None = None,
            validation_split: float = 0.1, revision: str | None = None, trust_remote_code: bool = False,
            allow_untrained_teacher: bool = False, latency_runs: int = 30, data_options: dict | None = None,
            transfer_data: str | None = None, **options) -> dict:
    """Distil a fine-tuned ``teacher`` into a student; the best student lands in ``output/student``.

    Defaults for the student, the loss terms and training come from the YAML ``recipe``
    (``bertdistill recipes``); ``train`` (a dict: only its keys override the recipe's
    training section; a TrainConfig: every field), ``temperature`` and ``weights``
    (``{"cosine": 0.5}``) override them. The plan is printed and written to
    ``output/run_config.json`` before training; at the end the student's folder, its
    retention of the teacher's metric, size and batch-1 latency (``latency_runs`` forwards
    each; 0 skips timing) are printed and returned under ``summary``. A teacher without a
    fine-tuned head is refused unless ``allow_untrained_teacher``. A recipe with stages or a
    layer-wise strategy runs each stage in its own sub-folder (``bertdistill.pipelines.stages``);
    ``transfer_data`` is the augmented transfer set read by the stages marked ``transfer``.
    On a small train split the recipe's training length follows the data unless ``train`` sets
    ``epochs`` or ``max_steps`` (``bertdistill.pipelines.small_data``); a student no better than a
    constant answer, or below 90 % of the teacher, is warned about and flagged under ``verdict``.

    Example::

        import bertdistill
        result = bertdistill.distill("runs/teacher/best", data="reviews.csv", output="runs/student",
                                     recipe="distilbert", student_layers=3, train={"epochs": 2})
        print(result["student_dir"], result["summary"]["retention"])
    """
    from .distill.recipe import load_recipe
    from .pipelines.bilstm import check_bilstm_student, check_bilstm_terms, recipe_for, wants_bilstm
    from .pipelines.plan import check_teacher, report
    from .pipelines.stages import check_transfer_data, is_staged, preflight, run_staged
    from .training.validate import check_distill_options

    opts = _data(locals_=locals(), base=data_options)
    hint = "".join(f" --{k.replace('_', '-')} {','.join(v) if isinstance(v, list) else v}"
                   for k, v in {"task": task, "data": data, **opts}.items()
                   if v is not None and not (k == "validation_split" and v == 0.1))
    config = DistillConfig(
        teacher=teacher, task=task, output=output, data=data, recipe=recipe, student_arch=student_arch,
        student_layers=student_layers, student=student, student_config=student_config, temperature=temperature,
        weights=weights, max_length=max_length, max_train_examples=max_train_examples,
        max_eval_examples=max_eval_examples, skip_bad_rows=skip_bad_rows, cache_teacher=cache_teacher,
        cache_dir=cache_dir, train=train_options(train), data_options=opts, **options)
    with hub_options(revision=revision, trust_remote_code=trust_remote_code):
        check_distill_options(config)  # bad options first, before any model is read
        plan = load_recipe(recipe).with_overrides(temperature=temperature, weights=weights)
        _check_qa_options(_is_qa(task), config.qa_options)
        if _is_qa(task):  # stages, augmentation, a BiLSTM student refused; window options checked
            from .pipelines.qa_distill import check_qa_plan

            check_qa_plan(config, plan)
        check_transfer_data(transfer_data, plan)  # a missing set, or no stage to read it
        TrainConfig.merged(plan.training, config.train)  # training numbers (--lr, ...) before any model
        if wants_bilstm(config):  # terms a BiLSTM cannot serve are refused before the teacher is read
            check_bilstm_terms(plan.terms, None, plan.name)
            check_bilstm_student(plan.student)
        check_teacher(teacher, allow_untrained=allow_untrained_teacher, finetune_hint=hint)
        config.max_length = check_length_fits(teacher, max_length)
        if is_staged(plan):
            return run_staged(config, transfer_data, latency_runs=latency_runs)
        if wants_bilstm(config):  # the word-level BiLSTM student has its own recipe class
            runner = recipe_for(config)
            return report(runner, runner.run(), latency_runs=latency_runs)
        preflight(config, plan)  # terms checked against the models' configs before weights load
        runner = recipe_for(config)
        return report(runner, runner.run(), latency_runs=latency_runs)


def evaluate(model: str, task: str | None = None, data: str | None = None, *, split: str = "dev",
             output: str | None = None, batch_size: int = 64, max_length: int | None = None,
             skip_bad_rows: bool = False,
             text_column: str | None = None, text_pair_column: str | None = None, label_column: str | None = None,
             task_kind: str | None = None, labels: list[str] | str | None = None, delimiter: str | None = None,
             validation_split: float = 0.1, revision: str | None = None, trust_remote_code: bool = False,
             data_options: dict | None = None, qa_options: dict | None = None) -> dict:
    """Evaluate a saved model on one split; prints the metrics table, writes JSON to ``output``.

    With csv/tsv/jsonl data the label names and kind default to those saved with the model,
    and a single file's ``dev`` split is the same seeded part that fine-tuning held out.
    ``max_length`` defaults to 128, and to 384-token windows for question answering
    (``task="squad"``: exact match and F1; window options in ``qa_options``).

    Example::

        import bertdistill
        metrics = bertdistill.evaluate("runs/student/student", data="reviews.csv", split="dev")
        print(metrics["accuracy"])
    """
    from .evaluation import evaluate_model
    from .export.runtime import load_for_inference
    from .models.loading import load_tokenizer
    from .writable import check_writable_file

    if output:
        check_writable_file(output)  # before the model runs, not after
    if _is_qa(task):
        from .data import get_task_spec
        from .qa_prediction import evaluate_saved_qa

        metrics = evaluate_saved_qa(model, task, data, split=split, batch_size=batch_size, max_length=max_length,
                                    skip_bad_rows=skip_bad_rows, qa_options=qa_options, revision=revision,
                                    trust_remote_code=trust_remote_code,
                                    data_options=_data(locals_=locals(), base=data_options))
        return _write_metrics(output, get_task_spec(task).name, split, model, metrics)
    _check_qa_options(False, qa_options)
    max_length = 128 if max_length is None else max_length
    opts = _with_model_labels(model, task, data, _data(locals_=locals(), base=data_options))
    with hub_options(revision=revision, trust_remote_code=trust_remote_code):
        max_length = check_length_fits(model, max_length)
        task_data = load_task(task, data, skip_bad_rows=skip_bad_rows, **opts)
        examples = task_data.split(split)
        if any(e.label is None for e in examples):
            raise ValueError(f"--split {split}: this split of {task_data.task.name!r} has no labels; "
                             "evaluate on a labelled split")
        from .students.bilstm import evaluate_bilstm, is_bilstm_dir

        if is_bilstm_dir(model):  # a word-level BiLSTM student reads its own vocabulary
            metrics = evaluate_bilstm(model, task_data.task, examples, batch_size=batch_size, max_length=max_length)
        else:
            tokenizer = load_tokenizer(model)
            net = load_for_inference(model, task_data.task)  # a saved PyTorch model or an exported ONNX folder
            metrics = evaluate_model(net, tokenizer, task_data.task, examples, batch_size=batch_size,
                                     max_length=max_length)
    name = task_data.task.name
    print(format_metrics(task_data.task, metrics, title=f"{name} {split} ({model})"))
    return _write_metrics(output, name, split, model, metrics)


def _write_metrics(output: str | None, task: str, split: str, model: str, metrics: dict) -> dict:
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(json.dumps({"task": task, "split": split, "model": model, "metrics": metrics},
                                           indent=2))
    return metrics


def _is_qa(task: str | None) -> bool:
    from .data.tasks import task_kind

    return task_kind(task) == "qa"


def _check_qa_options(qa: bool, given: dict | None) -> None:
    """Window options are for question answering only (a ValueError naming the flags otherwise)."""
    if given and not qa:
        flags = ", ".join("--" + k.replace("_", "-") for k in sorted(given))
        raise ValueError(f"{flags}: for question answering only (--task squad)")


def embed(model: str = "minilm-l6", task: str | None = None, data: str | None = None, *, pooling: str = "cls",
          output: str | None = None, max_train: int | None = None, max_length: int = 128,
          skip_bad_rows: bool = False, text_column: str | None = None, text_pair_column: str | None = None,
          label_column: str | None = None, task_kind: str | None = None, labels: list[str] | str | None = None,
          delimiter: str | None = None, validation_split: float = 0.1, revision: str | None = None,
          trust_remote_code: bool = False, data_options: dict | None = None, **options) -> dict:
    """Feature-extraction baseline: frozen encoder + logistic regression, scored on dev.

    Example::

        import bertdistill
        result = bertdistill.embed("minilm-l6", data="reviews.csv", pooling="mean")
        print(result["accuracy"])
    """
    from .embedding import embed_baseline
    from .writable import check_writable_file

    if output:
        check_writable_file(output)  # before the encoder runs, not after
    opts = _data(locals_=locals(), base=data_options)
    with hub_options(revision=revision, trust_remote_code=trust_remote_code):
        max_length = check_length_fits(model, max_length)
        task_data = load_task(task, data, skip_bad_rows=skip_bad_rows, **opts)
        result = embed_baseline(model, task_data, pooling=pooling, max_train=max_train, max_length=max_length,
                                **options)
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(json.dumps(result, indent=2, default=str))
    return result


def embed_eval(models: str | list[str] = "minilm-l6", *, stsb: str | bool = True, squad: str | bool = True,
               output: str | None = None, batch_size: int = 64, max_length: int | None = None,
               max_questions: int | None = None, device: str | None = None) -> dict:
    """Sentence-embedding models scored with no fine-tuning: STS-B dev/test Spearman of cosine
    similarity, SQuAD paragraph retrieval (recall@1, recall@5, MRR). ``stsb`` / ``squad``: a path,
    ``True`` for the shared data (``glue/STS-B``, ``squad/dev-v1.1.json``) or ``False`` to skip.

    Example::

        import bertdistill
        result = bertdistill.embed_eval(["minilm-l6", "runs/embedding/student"])
        for row in result["models"]:
            print(row["model"], row["stsb_test_spearman"], row["squad_recall@1"])
    """
    from .embedding_eval import embed_eval as run_embed_eval
    from .paths import shared_data_dir
    from .writable import check_writable_file

    if output:
        check_writable_file(output)
    data = shared_data_dir()
    result = run_embed_eval([models] if isinstance(models, str) else list(models),
                            stsb=data / "glue" / "STS-B" if stsb is True else (stsb or None),
                            squad=data / "squad" / "dev-v1.1.json" if squad is True else (squad or None),
                            batch_size=batch_size, max_length=max_length, max_questions=max_questions,
                            device=device)
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(json.dumps(result, indent=2, default=str))
    return result


def predict(model: str, texts: str | list[str], *, output: str | None = None, batch_size: int = 32,
            max_length: int = 128, revision: str | None = None, trust_remote_code: bool = False) -> list[dict]:
    """Predict with a saved model: one dict per text (label and probabilities for
    classification, score for regression, words/tags/entities for token classification);
    ``output`` also writes them as JSONL.

    Example::

        import bertdistill
        rows = bertdistill.predict("runs/student/student", ["a great film", "dull and long"])
        print(rows[0]["label"], rows[0]["score"])
    """
    from .prediction import predict_texts
    from .qa_prediction import is_qa_model
    from .writable import check_writable_file

    if is_qa_model(model):
        raise ValueError(f"{model} answers questions: give it questions and contexts "
                         "(`bertdistill predict --question Q --context C`, or bertdistill.answer)")
    if output:
        check_writable_file(output)  # before the model runs, not after
    with hub_options(revision=revision, trust_remote_code=trust_remote_code):
        rows = predict_texts(model, [texts] if isinstance(texts, str) else texts, batch_size=batch_size,
                             max_length=max_length)
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return rows


def answer(model: str, questions: str | list[str], contexts: str | list[str], *, output: str | None = None,
           batch_size: int = 32, max_length: int | None = None, qa_options: dict | None = None,
           revision: str | None = None, trust_remote_code: bool = False) -> list[dict]:
    """Extractive QA with a saved model: the answer span of each question in its context, one dict
    each (``question``, ``answer``, ``start`` / ``end`` characters of the context, ``score``: the
    span's start x end probability); ``output`` also writes them as JSONL. Long contexts are read
    in 384-token windows (``max_length``; ``qa_options`` as for ``finetune``).

    Example::

        import bertdistill
        rows = bertdistill.answer("runs/squad-teacher/best", "Who won?", "The Broncos won the game.")
        print(rows[0]["answer"], rows[0]["score"])
    """
    from .qa_prediction import answer_questions
    from .writable import check_writable_file

    if output:
        check_writable_file(output)  # before the model runs, not after
    questions = [questions] if isinstance(questions, str) else list(questions)
    contexts = [contexts] if isinstance(contexts, str) else list(contexts)
    with hub_options(revision=revision, trust_remote_code=trust_remote_code):
        rows = answer_questions(model, questions, contexts, batch_size=batch_size, max_length=max_length,
                                qa_options=qa_options)
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return rows


def demo(output: str = "runs/demo", *, teacher: str = "minilm-l6", teacher_epochs: float = 2.0,
         student_epochs: float = 3.0, max_train_examples: int | None = None, max_eval_examples: int | None = None,
         latency_runs: int = 100, **options) -> dict:
    """The README's main job: teacher fine-tune, student distillation, comparison table.

    Example::

        import bertdistill
        summary = bertdistill.demo("runs/demo")
        print(summary["retention"], summary["speedup"])
    """
    from .pipelines.demo import run_demo

    return run_demo(output, teacher=teacher, teacher_epochs=teacher_epochs, student_epochs=student_epochs,
                    max_train_examples=max_train_examples, max_eval_examples=max_eval_examples,
                    latency_runs=latency_runs, **options)


def _data(*, locals_: dict, base: dict | None) -> dict:
    return data_options(base, **{k: locals_[k] for k in DATA_KEYS})


def _with_model_labels(model: str, task: str | None, data, opts: dict) -> dict:
    """For csv/tsv/jsonl data, the label names and kind saved with the model (unless given)."""
    from .data.tasks import GENERIC, infer_task
    from .models.loading import LABELS_FILE, load_labels, resolve_model

    if data is None or (task or infer_task(data)) not in GENERIC or "labels" in opts or "task_kind" in opts:
        return opts
    source = Path(resolve_model(model))
    if not (source / LABELS_FILE).is_file():
        return opts
    saved = load_labels(source)
    if saved["kind"] not in ("classification", "regression"):
        return opts
    return {**opts, "task_kind": saved["kind"], **({"labels": saved["labels"]} if saved["labels"] else {})}


def mlm_head(model: str, corpus: str, output: str = "runs/mlm-teacher", *,
             eval_corpus: str | None = None, unfreeze_top_layers: int = 0, train: TrainConfig | dict | None = None,
             mlm_probability: float = 0.15, smoothing: float = 0.7, whole_word: bool = False,
             max_eval_sequences: int | None = None, eval_batch_size: int = 16, eval_seed: int = 1234,
             revision: str | None = None, trust_remote_code: bool = False, **options) -> dict:
    """Fit a masked-LM head on an encoder (frozen by default); the teacher lands in ``output/model``.

    ``corpus`` (and ``eval_corpus``, scored at the end) are folders written by
    ``bertdistill corpus prepare`` with the model's tokenizer. ``unfreeze_top_layers`` also
    trains the top K encoder layers. ``train``: a dict of the TrainConfig fields to change
    from the head-fitting defaults (one epoch, lr 1e-3, batch 32) or a TrainConfig (every
    field). Returns the results dict (``model_dir``, ``held_out`` accuracy and loss).

    Example::

        import bertdistill
        result = bertdistill.mlm_head("minilm-l6", "runs/corpus/train", "runs/mlm-teacher",
                                      eval_corpus="runs/corpus/test", train={"epochs": 1, "lr": 1e-3})
        print(result["model_dir"], result["held_out"]["mlm_accuracy"])
    """
    from .pipelines.mlm_head import MlmHeadConfig, MlmHeadRecipe

    config = MlmHeadConfig(model=model, corpus=corpus, output=output, eval_corpus=eval_corpus,
                           unfreeze_top_layers=unfreeze_top_layers, mlm_probability=mlm_probability,
                           smoothing=smoothing, whole_word=whole_word, max_eval_sequences=max_eval_sequences,
                           eval_batch_size=eval_batch_size, eval_seed=eval_seed, train=train_options(train),
                           **options)
    with hub_options(revision=revision, trust_remote_code=trust_remote_code):
        return MlmHeadRecipe(config).run()


def general_distill(teacher: str, corpus: str, output: str = "runs/general", *, recipe: str = "general_distilbert",
                    eval_corpus: str | None = None, train: TrainConfig | dict | None = None,
                    tokenizer: str | None = None, student_arch: str | None = None,
                    student_layers: int | str | list[int] | None = None, student_config: dict | None = None,
                    temperature: float | None = None, weights: dict[str, float] | None = None,
                    mlm_probability: float = 0.15, smoothing: float = 0.7, whole_word: bool = False,
                    max_eval_sequences: int | None = None, eval_batch_size: int = 16, eval_seed: int = 1234,
                    init_only: bool = False, revision: str | None = None, trust_remote_code: bool = False,
                    **options) -> dict:
    """General (masked-LM) distillation on prepared shards; the student lands in ``output/student``.

    ``teacher`` is a masked-LM checkpoint (folder, hub id; ``mlm_head`` makes one), ``corpus``
    a folder written by ``bertdistill corpus prepare`` with its tokenizer. Defaults for the
    student, the loss terms and training come from the YAML ``recipe`` (``general_distilbert``,
    ``general_tinybert``, or ``general_minilm``: MiniLMv2 relations from any encoder, no
    masked-LM head, a plain encoder student; ``general_mobilebert``: progressive knowledge
    transfer into a MobileBERT student, one stage per layer, ``pipelines.general_stages``);
    ``train`` (a dict: only its keys override the recipe's training section; a TrainConfig:
    every field), ``temperature`` and ``weights`` override them.
    RoBERTa teachers need ``student_arch="same"``. Returns the results dict (``student_dir``,
    ``held_out`` scores of teacher and student when ``eval_corpus`` is given).

    Example::

        import bertdistill
        result = bertdistill.general_distill("runs/mlm-teacher/model", "runs/corpus/train", "runs/general",
                                             eval_corpus="runs/corpus/test", train={"max_steps": 1000})
        print(result["student_dir"], result["held_out"]["student"]["mlm_accuracy"])
    """
    from .distill.recipe import load_recipe
    from .pipelines.general_distill import GeneralDistillConfig, GeneralDistillRecipe
    from .pipelines.stages import is_staged

    config = GeneralDistillConfig(
        teacher=teacher, corpus=corpus, output=output, recipe=recipe, eval_corpus=eval_corpus, tokenizer=tokenizer,
        student_arch=student_arch, student_layers=student_layers, student_config=student_config,
        temperature=temperature, weights=weights, mlm_probability=mlm_probability, smoothing=smoothing,
        whole_word=whole_word, max_eval_sequences=max_eval_sequences, eval_batch_size=eval_batch_size,
        eval_seed=eval_seed, init_only=init_only, train=train_options(train), **options)
    with hub_options(revision=revision, trust_remote_code=trust_remote_code):
        if not init_only and is_staged(load_recipe(recipe)):  # e.g. general_mobilebert: one stage per layer
            from .pipelines.general_stages import run_general_staged

            return run_general_staged(config)
        return GeneralDistillRecipe(config).run()
