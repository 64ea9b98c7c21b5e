"""Baseline and current side by side: the prompt diff of the test's own messages and an example
answer from each run."""

from __future__ import annotations

from typing import Any

from pytest_llmeval.report.diff import prompt_lines, transcript_diff


def sample(index: int, outcome: str, messages: list[tuple[str, str]], answer: str) -> Any:
    call = {"role": "model", "endpoint": "chat", "answer": answer, "error": None,
            "finish_reason": "stop", "tool_calls": [],
            "messages": [{"role": r, "content": c} for r, c in messages]}  # fmt: skip
    judge = {**call, "role": "judge", "answer": '{"pass": true}'}
    return {"index": index, "outcome": outcome, "message": None if outcome == "passed" else "no",
            "transcript": {"calls": [judge, call], "truncated": False}}  # fmt: skip


def result(*samples: Any) -> Any:
    return {"samples": list(samples)}


def test_the_diff_is_of_what_the_test_wrote_not_of_earlier_answers() -> None:
    before = [("system", "Be kind.\nBe brief."), ("user", "Hi"), ("assistant", "Hello!")]
    after = [("system", "Be kind.\nBe curt."), ("user", "Hi"), ("assistant", "What?")]
    diff = transcript_diff(
        result(sample(0, "failed", before, "no"), sample(1, "passed", before, "fine")),
        result(sample(0, "passed", after, "ok"), sample(1, "failed", after, "go away")),
    )
    assert diff is not None
    assert diff["prompt_diff"] == [
        "@@ -1,3 +1,3 @@",
        " system: Be kind.",
        "-system: Be brief.",
        "+system: Be curt.",
        " user: Hi",
    ]
    assert diff["baseline"] == {"index": 1, "outcome": "passed", "answer": "fine", "message": None}
    assert diff["current"] == {
        "index": 1,
        "outcome": "failed",
        "answer": "go away",
        "message": "no",
    }


def test_the_same_prompt_has_an_empty_diff_and_a_missing_side_is_none() -> None:
    same = [("user", "Hi")]
    diff = transcript_diff(
        result(sample(0, "passed", same, "a")), result(sample(0, "failed", same, "b"))
    )
    assert diff is not None and diff["prompt_diff"] == []
    only_now = transcript_diff(result(), result(sample(0, "failed", same, "b")))
    assert only_now is not None and only_now["baseline"] is None and only_now["prompt_diff"] == []
    assert transcript_diff(result(), result()) is None
    assert transcript_diff(result({"index": 0, "outcome": "passed"}), result()) is None


def test_an_empty_message_is_one_line() -> None:
    call: Any = {"messages": [{"role": "user", "content": ""}]}
    assert prompt_lines(call) == ["user: "]
