"""The data types every reader returns and every recipe consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("classification", "regression", "token_classification", "qa")
# kinds without a label set: regression (one score), extractive QA (a span of the context)
UNLABELLED_KINDS = ("regression", "qa")


class MissingSplitError(KeyError, ValueError):
    """A split that the data does not have (a KeyError for lookups, a ValueError for users)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass
class TaskSpec:
    """What a task is: its kind, its label set and the metrics that judge it."""

    name: str
    kind: str
    labels: list[str] | None
    metrics: tuple[str, ...]
    pair: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"task {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind not in UNLABELLED_KINDS and not self.labels:
            raise ValueError(f"task {self.name!r}: a {self.kind} task needs a label set")

    @property
    def main_metric(self) -> str:
        return self.metrics[0]

    @property
    def num_labels(self) -> int:
        """Outputs per position of the task head: 1 score, 2 for QA (start and end), or one per label."""
        return {"regression": 1, "qa": 2}.get(self.kind, len(self.labels or []))

    @property
    def id2label(self) -> dict[int, str]:
        return {i: name for i, name in enumerate(self.labels or ["score"])}


@dataclass(frozen=True)
class Answer:
    """A gold answer of extractive QA: its text and the character where it starts in the context."""

    text: str
    start: int

    @property
    def end(self) -> int:
        """The character just after the answer."""
        return self.start + len(self.text)


@dataclass
class Example:
    """One input: a sentence (or a list of words for token classification), maybe a pair.

    Extractive QA: ``text`` is the question, ``text_pair`` the context, ``label`` the list of
    gold ``Answer``s and ``id`` the question id the metric keys on.
    """

    text: str | list[str]
    text_pair: str | None = None
    label: int | float | list[int] | list[Answer] | None = None
    source: str = ""
    id: str = ""


@dataclass
class TaskData:
    """A task and its splits ("train", "dev", "test"; only those present)."""

    task: TaskSpec
    splits: dict[str, list[Example]] = field(default_factory=dict)
    skipped: int = 0

    def split(self, name: str) -> list[Example]:
        if name not in self.splits:
            hint = ""
            if name == "dev":
                hint = "; give a dev.* or validation.* file, or hold out part of train with --validation-split"
            raise MissingSplitError(
                f"task {self.task.name!r} has no {name!r} split; available: {sorted(self.splits)}{hint}"
            )
        return self.splits[name]
