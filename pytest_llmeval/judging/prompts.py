"""What the judge is told: plain-text instructions, the tagged sections and the answer schemas.

Users read and override these (`JudgePrompts`); the fingerprint of what a judge was told keys
its calibration, so a changed instruction or rubric needs a new calibration.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

GRADE_INSTRUCTIONS = """\
You grade one output written by an AI assistant against a rubric.
Decide only whether the output meets the rubric. Do not reward length, confidence or style
unless the rubric asks for them. When a reference answer is given, treat it as correct and
check the output's facts against it. When an input is given, it is what the assistant was
asked; judge the output as an answer to it.
Reply with one JSON object and nothing else:
{"reason": "<at most two sentences>", "verdict": "pass" or "fail"}"""

SCORE_INSTRUCTIONS = """\
Also give "score": an integer from {low} to {high}, where {high} means the output meets the
rubric fully and {low} not at all."""

COMPARE_INSTRUCTIONS = """\
You compare two outputs, A and B, written by AI assistants, on one criterion.
Say which output meets the criterion better. Ignore which one comes first and how long each is
unless the criterion is about length. If neither is better, say "tie".
Reply with one JSON object and nothing else:
{"reason": "<at most two sentences>", "better": "A", "B" or "tie"}"""


@dataclass(frozen=True)
class JudgePrompts:
    """The instructions a judge gets; override the `judge_prompts` fixture to change them."""

    grade: str = GRADE_INSTRUCTIONS
    score: str = SCORE_INSTRUCTIONS
    compare: str = COMPARE_INSTRUCTIONS


def section(tag: str, text: str) -> str:
    return f"<{tag}>\n{text.strip()}\n</{tag}>"


def grade_messages(
    prompts: JudgePrompts,
    rubric: str,
    output: str,
    *,
    question: str | None = None,
    reference: str | None = None,
    scale: tuple[int, int] | None = None,
) -> list[dict[str, str]]:
    """System instructions, then the rubric, the optional input and reference, and the output."""
    system = prompts.grade
    parts = [section("rubric", rubric)]
    if scale is not None:
        system += "\n" + prompts.score.format(low=scale[0], high=scale[1])
        parts.append(f"<scale>{scale[0]}-{scale[1]}</scale>")
    if question is not None:
        parts.append(section("input", question))
    if reference is not None:
        parts.append(section("reference", reference))
    parts.append(section("output", output))
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(parts)}]


def compare_messages(
    prompts: JudgePrompts, criterion: str, first: str, second: str, question: str | None = None
) -> list[dict[str, str]]:
    parts = [section("criterion", criterion)]
    if question is not None:
        parts.append(section("input", question))
    parts += [section("output_a", first), section("output_b", second)]
    return [
        {"role": "system", "content": prompts.compare},
        {"role": "user", "content": "\n".join(parts)},
    ]


def grade_schema(scale: tuple[int, int] | None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "reason": {"type": "string"},
        "verdict": {"type": "string", "enum": ["pass", "fail"]},
    }
    if scale is not None:
        properties["score"] = {"type": "integer", "minimum": scale[0], "maximum": scale[1]}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


COMPARE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reason": {"type": "string"},
        "better": {"type": "string", "enum": ["A", "B", "tie"]},
    },
    "required": ["reason", "better"],
    "additionalProperties": False,
}


def response_format(fmt: str, name: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    """The request's `response_format` for the configured `judge_format`; None: plain text."""
    if fmt == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": name, "strict": True, "schema": schema},
        }
    if fmt == "json_object":
        return {"type": "json_object"}
    return None


def rubric_fingerprint(
    prompts: JudgePrompts,
    rubric: str,
    scale: tuple[int, int] | None = None,
    pass_score: int | None = None,
) -> str:
    """Which instructions and rubric a judgement answered, and how its pass was decided: the
    key of its calibration."""
    told: dict[str, Any] = {"instructions": prompts.grade, "rubric": rubric.strip()}
    if scale is not None:
        told.update(scale=list(scale), score=prompts.score, pass_score=pass_score)
    canonical = json.dumps(told, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
