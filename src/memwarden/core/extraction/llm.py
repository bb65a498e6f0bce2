"""The optional LLM extractor: any OpenAI-compatible chat-completions endpoint, asked for JSON.

Configured with ``MEMWARDEN_LLM_URL`` (the API base, e.g. ``http://127.0.0.1:11434/v1``, or
the full ``.../chat/completions`` URL), ``MEMWARDEN_LLM_MODEL`` and, when the server wants one,
``MEMWARDEN_LLM_API_KEY``; ``MEMWARDEN_LLM_TIMEOUT_S`` bounds each call.

The answer is validated against a schema. What goes wrong is logged and counted, never raised
past the run: an answer that is prose, broken JSON or the wrong shape skips that interaction
(asking again would give the same answer); an endpoint that is unreachable, times out, is
overloaded (429) or fails (5xx) stops the run before that interaction, so the next run retries
it instead of losing it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from memwarden.config import Settings
from memwarden.core.capture import Interaction
from memwarden.core.extraction.base import Candidate, ExtractionFailure
from memwarden.errors import InvalidInputError

log = structlog.get_logger(__name__)

NAME = "llm"
VERSION = "1.0"
MAX_INPUT_CHARS = 12_000
MAX_CANDIDATES = 20
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL | re.IGNORECASE)

SYSTEM_PROMPT = """You extract long-term memories from one exchange between a user and an AI \
assistant. Keep only what is worth remembering in later conversations: who the user is \
(identity), what they like or how they want things done (preference), corrections of the \
assistant's behaviour (adaptation), facts and decisions about their work (project), dated \
events (episodic) and lessons learned (knowledge). Ignore one-off requests, questions, \
greetings and anything the assistant merely suggests. Write each memory as one short, \
self-contained statement. Answer with JSON only, exactly in this shape:
{"candidates": [{"type": "<one of: TYPES>", "content": "<the statement>", \
"confidence": <0.0 to 1.0>}]}
Answer {"candidates": []} when there is nothing worth remembering."""


class LLMCandidate(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    type: str = Field(min_length=1, max_length=50)
    content: str = Field(min_length=1, max_length=2000)
    confidence: float = Field(ge=0.0, le=1.0)


class LLMAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    candidates: list[LLMCandidate] = Field(max_length=MAX_CANDIDATES)


def endpoint(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else f"{url}/chat/completions"


class LLMExtractor:
    name = NAME

    def __init__(self, settings: Settings, client: httpx.Client | None = None) -> None:
        if not settings.llm_url or not settings.llm_model:
            raise InvalidInputError(
                "the LLM extractor needs MEMWARDEN_LLM_URL and MEMWARDEN_LLM_MODEL"
            )
        self.url = endpoint(settings.llm_url)
        self.model = settings.llm_model
        self.version = f"{VERSION}/{settings.llm_model}"[:100]
        self.types = settings.memory_types
        headers = {"Content-Type": "application/json"}
        if settings.llm_api_key is not None:
            headers["Authorization"] = f"Bearer {settings.llm_api_key.get_secret_value()}"
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(settings.llm_timeout_s), headers=headers
        )

    def close(self) -> None:
        self.client.close()

    def _request(self, interaction: Interaction) -> dict[str, Any]:
        exchange = (
            f"USER:\n{interaction.prompt[:MAX_INPUT_CHARS]}\n\n"
            f"ASSISTANT:\n{interaction.response[:MAX_INPUT_CHARS]}"
        )
        return {
            "model": self.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [
                {
                    "role": "system",
                    "content": SYSTEM_PROMPT.replace("TYPES", ", ".join(self.types)),
                },
                {"role": "user", "content": exchange},
            ],
        }

    def _fail(
        self, interaction: Interaction, kind: str, message: str, *, fatal: bool = False
    ) -> ExtractionFailure:
        log.warning(
            "llm_extraction_failed",
            kind=kind,
            interaction=interaction.id,
            url=self.url,
            error=message[:300],
            stops_run=fatal,
        )
        return ExtractionFailure(kind, message, fatal=fatal)

    def _call(self, interaction: Interaction) -> str:
        try:
            response = self.client.post(self.url, json=self._request(interaction))
        except httpx.TimeoutException as exc:
            raise self._fail(
                interaction, "timeout", f"no answer in time ({exc})", fatal=True
            ) from None
        except httpx.TransportError as exc:
            raise self._fail(
                interaction, "unreachable", f"{type(exc).__name__}: {exc}", fatal=True
            ) from None
        if response.status_code == 429 or response.status_code >= 500:
            raise self._fail(interaction, "http_error", f"HTTP {response.status_code}", fatal=True)
        if response.status_code >= 400:
            raise self._fail(
                interaction, "http_error", f"HTTP {response.status_code}: {response.text[:200]}"
            )
        try:
            body = response.json()
            content = body["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise self._fail(
                interaction, "invalid_response", "not a chat-completions answer"
            ) from None
        if not isinstance(content, str):
            raise self._fail(interaction, "invalid_response", "the message content is not text")
        return content

    def extract(self, interaction: Interaction) -> list[Candidate]:
        text = self._call(interaction).strip()
        fenced = _FENCE.match(text)
        if fenced:
            text = fenced.group(1)
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise self._fail(interaction, "invalid_json", f"not JSON: {text[:120]!r}") from None
        try:
            answer = LLMAnswer.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise self._fail(
                interaction, "invalid_schema", f"{where or 'answer'}: {first.get('msg')}"
            ) from None
        # Types and sizes are checked by the run, like every extractor's candidates.
        return [
            Candidate(
                item.type.strip().lower(),
                item.content.strip(),
                round(item.confidence, 2),
                interaction.id,
                "llm",
            )
            for item in answer.candidates
        ]
