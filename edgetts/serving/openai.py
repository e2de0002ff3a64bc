"""OpenAI's chat completion shapes (a response, and the chunks of a stream) from edgetts answers.

Each choice is one sample of the vote: its text is what that sample said (reasoning, then its
answer), ``finish_reason`` is "stop" where it ended by itself and "length" where the budget or
the deadline cut it. The voted answer and what it cost ride along in the extension field
``edgetts`` (the JSON of ``edgetts run --json``), as vLLM and llama.cpp add their own fields.
"""

from __future__ import annotations

import time
import uuid


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def usage(data: dict) -> dict[str, int]:
    tokens = data.get("tokens") or {}
    completion = sum(tokens.get("think", [])) + sum(tokens.get("answer", []))
    prompt = int(tokens.get("prompt", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def finish_reasons(answer) -> list[str]:
    """OpenAI's finish_reason per sample: "length" where the budget or the deadline cut it; a
    sample that ended by itself (and was then asked for its answer under the grammar) stopped."""
    return ["length" if forced in ("budget", "deadline") else "stop" for forced in answer.sample_forced_by]


def response(cid: str, answer) -> dict:
    data = answer.to_json()
    reasons = finish_reasons(answer)
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.config.model,
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": reasons[i]}
            for i, text in enumerate(answer.samples)
        ],
        "usage": usage(data),
        "edgetts": data,
    }


def chunk(cid: str, model: str, choices: list[dict], **extra) -> dict:
    return {
        "id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
        "choices": choices, **extra,
    }  # fmt: skip
