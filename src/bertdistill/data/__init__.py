"""Task data: examples, readers and the task registry."""

from .corpus import load_corpus
from .errors import DataError
from .examples import Example, TaskData, TaskSpec
from .tasks import TASKS, get_task_spec, list_tasks, load_task

__all__ = [
    "TASKS",
    "DataError",
    "Example",
    "TaskData",
    "TaskSpec",
    "get_task_spec",
    "list_tasks",
    "load_corpus",
    "load_task",
]
