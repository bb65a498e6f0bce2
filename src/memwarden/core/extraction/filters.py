"""What the rule-based extractor checks besides the cues: clauses that state nothing yet
(questions, suppositions), transient states, hedging and emphasis, labels to trim, complaints
and the instructions that follow them."""

from __future__ import annotations

import re

# A state of the moment ("the build is broken again") is not a fact worth keeping.
TRANSIENT = re.compile(
    r"\b(?:today|tonight|right now|at the moment|currently|again|still|this morning|broken"
    r"|down|failing|failed|slow|green|red|flaky|fixed|stuck|hanging|crashing|crashed)\b",
    re.IGNORECASE,
)
_HEDGE = re.compile(
    r"\b(?:i think|i guess|i suppose|maybe|perhaps|probably|might|not sure|kind of|sort of"
    r"|possibly|i'm not certain|it seems|apparently)\b",
    re.IGNORECASE,
)
_EMPHASIS = re.compile(
    r"\b(?:always|never|really|definitely|strongly|must|absolutely|important)\b", re.IGNORECASE
)
# Clauses that ask, wish or suppose state nothing yet.
QUESTION = re.compile(
    r"\?\s*$|^(?:what|how|why|which|who|whom|whose|where|when(?! i\b)|is|are|am|was|were"
    r"|do(?!n't| not)|does|did|can|could|would|should|will|shall|have you|has|any idea)\b",
    re.IGNORECASE,
)
SUPPOSITION = re.compile(
    r"^(?:if|suppose|imagine|let's say|what if|in case)\b(?! i (?:say|ask|write|type|mention))"
    r"|^(?:please\s+)?(?:would you|could you|can you|do you|are you|help me)\b"
    r"|\b(?:i wonder|i'm wondering|i'd like you to|i want you to write)\b",
    re.IGNORECASE,
)

LABEL = re.compile(
    r"^(?:(?:also|btw|by the way|fyi|oh and|and|but|so|ok|okay|well|ah|oh|hey|hi|just so you"
    r" know|for the record|quick note|please note|one more thing|ps|p\.s\.)\b[,:]?\s*)+"
    r"|^(?:lessons? learn(?:ed|t)(?: [^:]{0,40})?|note to self|gotcha|til|today i learned|pro"
    r" tip|tip|caveat|important|reminder|update|decision|heads[- ]up(?: [^:]{0,30})?|note|fyi"
    r"|(?:the )?plan|context|background)\s*[:\-–—]\s*"
    r"|^(?:it )?turn(?:s|ed) out(?: that)?,?\s+",
    re.IGNORECASE,
)


# Feedback on what the agent just did: the instructions after it are corrections.
COMPLAINT = re.compile(
    r"\byou\b.{0,60}\b(?:again|wrong|without asking|instead of what)\b"
    r"|\bthat'?s not what i\b|\bnot what i (?:asked|wanted|meant)\b|\bthat (?:was|is) wrong\b",
    re.IGNORECASE,
)
IMPERATIVE = re.compile(
    r"^(?:please\s+)?(?!(?:i|i'm|we|you|he|she|they|it|it's|this|that|that's|these|those"
    r"|there|the|a|an|my|our|your|his|her|their|its|thanks|thank|ok|okay|sorry|and|but|so"
    r"|ugh|hmm|well|yes|no|not|also|just|what|why|how|good|great|nice|cool)\b)"
    r"[a-z][a-z-]+\s+\w+(?:\s+\S+){2,}",
    re.IGNORECASE,
)


def hedged(text: str) -> bool:
    return _HEDGE.search(text) is not None


def emphatic(text: str) -> bool:
    return _EMPHASIS.search(text) is not None
