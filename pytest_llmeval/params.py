"""pytest glue for datasets: tasks as `pytest.param` lists named by their ids."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

SUBJECT_MARKER = "llmeval_subject"


def params(tasks: Iterable[Any]) -> list[Any]:
    """One `pytest.param(task, id=task.id)` per task; a task's `subject` becomes its
    `llmeval_subject` mark, so suite rows break the rate down per subject."""
    out = []
    for task in tasks:
        subject = getattr(task, "subject", None)
        marks = [getattr(pytest.mark, SUBJECT_MARKER)(subject)] if subject else []
        out.append(pytest.param(task, id=task.id, marks=marks))
    return out
