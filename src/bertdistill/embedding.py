"""The feature-extraction baseline: a frozen encoder's pooled vectors + logistic regression."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .data.encode import Collator, encode
from .data.examples import Example, TaskData
from .evaluation import forward_arguments
from .metrics import compute_metrics
from .models.loading import hub_errors, load_tokenizer, pretrained_kwargs, quiet_transformers, resolve_model

POOLINGS = ("cls", "mean")


def pooled_features(
    model,
    tokenizer,
    task,
    examples: Sequence[Example],
    *,
    pooling: str = "cls",
    batch_size: int = 64,
    max_length: int = 128,
    device: str | torch.device = "cpu",
    desc: str = "embed",
) -> np.ndarray:
    """One vector per example from a (frozen) encoder: the [CLS] state or the masked mean."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    unlabelled = [Example(ex.text, ex.text_pair, None, ex.source) for ex in examples]
    features = encode(task, unlabelled, tokenizer, max_length=max_length)
    collator = Collator(tokenizer.pad_token_id)
    accepted = forward_arguments(model)
    order = sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))
    hidden = int(model.config.hidden_size)
    out = np.zeros((len(features), hidden), dtype=np.float32)
    model.to(device)
    model.eval()
    with torch.inference_mode():
        starts = range(0, len(order), batch_size)
        for start in tqdm(starts, total=len(starts), desc=desc, disable=None, leave=False):
            index = order[start : start + batch_size]
            batch = collator([features[i] for i in index])
            inputs = {k: v.to(device) for k, v in batch.items() if k in accepted}
            states = model(**inputs).last_hidden_state.float()
            if pooling == "cls":
                vectors = states[:, 0]
            else:
                mask = inputs["attention_mask"].unsqueeze(-1).to(states.dtype)
                vectors = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            out[index] = vectors.cpu().numpy()
    return out


def embed_baseline(
    model_name: str,
    task_data: TaskData,
    *,
    pooling: str = "cls",
    batch_size: int = 64,
    max_length: int = 128,
    max_train: int | None = None,
    C: float = 1.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
    eval_split: str | None = None,
    standardize: bool = True,
) -> dict:
    """Frozen encoder features + sklearn LogisticRegression(max_iter=1000), scored on dev.

    Pools the encoder's last layer (``cls`` or ``mean``) for the train split (at most
    ``max_train`` examples, sampled with ``seed``) and the eval split (``dev``, else a
    labelled ``test``), standardises the features (``standardize``), fits the classifier
    with inverse regularisation ``C`` and returns the task's metrics on the eval split with
    counts and timings (seconds). Classification tasks only.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from transformers import AutoModel

    task = task_data.task
    if task.kind != "classification":
        raise ValueError(
            f"the embedding baseline fits a classifier; task {task.name!r} is {task.kind} "
            "(only classification tasks are supported)"
        )
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if max_train is not None and max_train < 2:
        raise ValueError(f"max_train must be at least 2, got {max_train}")
    train = [ex for ex in task_data.split("train") if ex.label is not None]
    if eval_split is None:
        candidates = [s for s in ("dev", "test") if s in task_data.splits]
        labelled = [s for s in candidates if any(ex.label is not None for ex in task_data.splits[s])]
        if not labelled:
            raise ValueError(
                f"task {task.name!r} has no labelled dev or test split to score the baseline on"
            )
        eval_split = labelled[0]
    evaluation = [ex for ex in task_data.split(eval_split) if ex.label is not None]
    if not evaluation:
        raise ValueError(f"task {task.name!r}: split {eval_split!r} has no labelled examples")
    if max_train is not None and len(train) > max_train:
        keep = sorted(random.Random(seed).sample(range(len(train)), max_train))
        train = [train[i] for i in keep]
    y_train = np.array([int(ex.label) for ex in train])
    if len(set(y_train.tolist())) < 2:
        raise ValueError(f"task {task.name!r}: the training examples hold fewer than two classes")
    y_eval = [int(ex.label) for ex in evaluation]

    t0 = time.perf_counter()
    tokenizer = load_tokenizer(model_name)
    with quiet_transformers(), hub_errors(model_name):
        model = AutoModel.from_pretrained(resolve_model(model_name), **pretrained_kwargs())
    t_load = time.perf_counter()
    common = dict(pooling=pooling, batch_size=batch_size, max_length=max_length, device=device)
    x_train = pooled_features(model, tokenizer, task, train, desc="embed train", **common)
    t_train = time.perf_counter()
    x_eval = pooled_features(model, tokenizer, task, evaluation, desc=f"embed {eval_split}", **common)
    t_eval = time.perf_counter()
    classifier = LogisticRegression(max_iter=1000, C=C, random_state=seed)
    probe = make_pipeline(StandardScaler(), classifier) if standardize else classifier
    probe.fit(x_train, y_train)
    t_fit = time.perf_counter()
    predictions = probe.predict(x_eval).tolist()
    metrics = compute_metrics(task, predictions, y_eval)
    return {
        "task": task.name,
        "model": str(model_name),
        "pooling": pooling,
        "eval_split": eval_split,
        "train_examples": len(train),
        "eval_examples": len(evaluation),
        "feature_dim": int(x_train.shape[1]),
        **metrics,
        "train_accuracy": float(probe.score(x_train, y_train)),
        "timings": {
            "load_s": t_load - t0,
            "embed_train_s": t_train - t_load,
            "embed_eval_s": t_eval - t_train,
            "fit_s": t_fit - t_eval,
            "total_s": time.perf_counter() - t0,
        },
    }
