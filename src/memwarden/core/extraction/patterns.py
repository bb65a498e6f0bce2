"""The cue patterns of the rule-based extractor, in the order they are tried.

The taxonomy they implement (the default memory types):

- ``identity``: who the user is and the people around them (name, role, employer, where they
  live, diet, health, languages, household).
- ``preference``: what the user likes or dislikes and how they want things done in general.
- ``adaptation``: a standing correction of the agent's own behaviour, usually after feedback
  ("next time ...", "from now on ...", "stop ...", "when I say X I mean Y").
- ``project``: facts and decisions about the work: stack, conventions, scope, deadlines,
  owners, what was decided, switched or migrated.
- ``episodic``: a dated event that happened (a release yesterday, an outage on Tuesday).
- ``knowledge``: a lesson or fact learned (a root cause, a gotcha, what turned out to be true).

Each pattern names its type, its base confidence and the side of the exchange it reads: the
user's prompt (``user``), both sides (``any``: explicit lessons and root causes), or the
assistant's response only (``assistant``: a team decision it states — "we decided to use
PostgreSQL" — or a fact it flags to remember — "remember that the staging cluster lives in
Frankfurt"; never what the assistant itself prefers, plans or did). The first pattern that
matches a clause wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from memwarden.core.extraction.vocabulary import (
    MONTH,
    PAST,
    PERSON,
    PROJECT_NOUN,
    PROJECT_VERB,
    ROLE,
    TRAIT,
    WEEKDAY,
    WHEN,
)


@dataclass(frozen=True)
class Cue:
    name: str
    type: str
    confidence: float
    pattern: re.Pattern[str]
    sides: str = "user"  # "user", "any" or "assistant"
    durable: bool = False  # only a lasting fact: a transient state does not match
    relabel: bool = False  # a "remember this" label: what follows decides the type


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# "I love it" reacts to what is on the table; "I hate it when ..." states a preference.
_NOT_REACTION = r"(?!\s+(?:it|this|that|these|those|them)\b(?!\s+(?:when|if|whenever)\b))"
CUES: tuple[Cue, ...] = (
    # -- explicit lessons, root causes, gotchas: the strongest signal, on either side -------
    Cue(
        "lesson_label",
        "knowledge",
        0.75,
        _re(
            r"\b(?:lessons? learn(?:ed|t)|note to self|today i learned|til\b|gotcha\b)"
            r"|\b(?:i|we)(?:'ve| have)? (?:learned|learnt|found out|discovered|realised|realized)"
            r" (?:that\b|the hard way|:)|\bthings? (?:i|we)(?:'ve)? (?:learned|learnt)\b"
        ),
        "any",
    ),
    Cue(
        "reminder_label",
        "knowledge",
        0.7,
        relabel=True,
        pattern=_re(
            r"\b(?:pro tip|caveat\b|heads[- ]up\b|worth (?:knowing|remembering"
            r"|noting)|for future reference|word of warning)"
            r"|^(?:please\s+)?(?:remember|keep in mind|note|bear in mind) that\b"
            r"(?!\s*(?:[,.!;]|$|if|when|for|next|in case|too|as well))"
        ),
    ),
    Cue("turns_out", "knowledge", 0.7, _re(r"\b(?:it )?turn(?:s|ed) out\b"), "any"),
    Cue(
        "root_cause",
        "knowledge",
        0.7,
        _re(
            r"\b(?:the )?root cause\b|\bthe (?:real )?(?:cause|culprit) (?:is|was)\b"
            r"|\bturned out to be\b|\b(?:was|were) (?:actually |ultimately )?caused by\b"
        ),
        "any",
    ),
    Cue(
        "the_fix_was",
        "knowledge",
        0.65,
        _re(
            r"\bthe (?:real )?(?:fix|solution|workaround|trick|catch) (?:is|was)\b"
            r"|\bthe (?:problem|issue|reason) was\b|\b(?:is|are) caused by\b"
        ),
    ),
    # -- standing corrections of the agent -------------------------------------------------
    Cue(
        "from_now_on",
        "adaptation",
        0.75,
        _re(
            r"\b(?:from now on|going forward|in (?:the )?future|next time|for next time"
            r"|moving forward|from here on)\b"
        ),
    ),
    Cue(
        "not_again",
        "adaptation",
        0.7,
        _re(r"\b(?:don't|do not|never|stop)\b(?:\s+\S+){1,8}?\s+(?:again|anymore|any more)\b"),
    ),
    Cue("stop_doing", "adaptation", 0.7, _re(r"^(?:please\s+)?stop\s+\w+ing\b")),
    Cue(
        "when_i_say",
        "adaptation",
        0.75,
        _re(
            r"^(?:when|whenever|if) i (?:say|ask|write|type|mention|send|give|paste|share"
            r"|request|tell)\b"
        ),
    ),
    Cue(
        "should_have",
        "adaptation",
        0.6,
        _re(r"\byou should(?: have|'ve) (?:asked|checked|told|run|used|waited|confirmed|tested)\b"),
    ),
    # -- who the user is -------------------------------------------------------------------
    Cue("name", "identity", 0.8, _re(r"\bmy name(?:'s| is)\b|\bcall me\b|\bi(?:'m| am) called\b")),
    Cue(
        "my_attribute",
        "identity",
        0.75,
        _re(
            r"\bmy (?:pronouns|role|job|job title|title|position|timezone|time zone|email"
            r"|github(?: handle)?|handle|username|native language|first language|employer"
            r"|birthday|address|home town|hometown) (?:is|are)\b"
        ),
    ),
    Cue(
        "role",
        "identity",
        0.75,
        _re(rf"\bi(?:'m| am) (?:a|an|the|one of the)\s+(?:[\w-]+\s+){{0,4}}?{ROLE}s?\b"),
    ),
    Cue("trait", "identity", 0.75, _re(rf"\bi(?:'m| am) (?:also |now )?{TRAIT}\b")),
    Cue(
        "setup",
        "identity",
        0.65,
        _re(
            r"\bi(?:'m| am) (?:on|using|running|working on) (?:a |an |the )?(?:mac|macbook|windows"
            r"|linux|ubuntu|debian|fedora|arch|nixos|iphone|ipad|android|pixel|chromebook"
            r"|thinkpad|pc|laptop|desktop|m1|m2|m3|m4)\b|\bmy (?:laptop|machine|computer|phone"
            r"|os|setup|editor|ide|shell|keyboard|workstation) (?:is|runs|has)\b"
        ),
    ),
    Cue(
        "where_i_work",
        "identity",
        0.7,
        _re(
            r"\bi (?:live|work|study|teach|grew up|was born|research|volunteer)"
            r" (?:in|at|for|as|on|with)\b|\bi speak\b|\bi(?:'ve| have) been (?:a|an|working)\b"
        ),
    ),
    Cue(
        "my_person",
        "identity",
        0.65,
        _re(
            rf"\bmy {PERSON}(?:'s [\w-]+(?: [\w-]+)?)? (?:is|are|has|have|was|can't|cannot"
            r"|doesn't|does not|\w+s)\b"
        ),
    ),
    # -- what the user likes and how they want things done -----------------------------------
    Cue(
        "i_prefer",
        "preference",
        0.7,
        _re(
            r"\bi (?:really |strongly |much |generally |usually |always |definitely |do )?"
            rf"(?:prefer|hate|dislike|can't stand|cannot stand|detest|loathe|avoid)\b{_NOT_REACTION}"
        ),
    ),
    Cue(
        "i_like",
        "preference",
        0.6,
        _re(
            rf"\bi (?:really |generally |usually |do )?(?:like|love|enjoy)\b{_NOT_REACTION}"
            rf"|\bi (?:really )?(?:don't|do not) (?:like|enjoy|care for|want)\b{_NOT_REACTION}"
        ),
    ),
    Cue("favourite", "preference", 0.75, _re(r"\bmy (?:favou?rite|preferred|go-to|usual)\b")),
    Cue(
        "rather",
        "preference",
        0.65,
        _re(
            r"\bi(?:'d| would) (?:much )?rather\b|\bi(?:'m| am) (?:a (?:big |huge )?|not a )fan of\b"
        ),
    ),
    Cue(
        "habit",
        "preference",
        0.6,
        _re(
            r"\bi (?:usually|always|never|normally|tend to|typically|mostly)"
            r" (?:use|take|go|write|work|drink|eat|read|run|code|book|fly|travel|choose|pick|buy"
            r"|order|sleep|wake|start|keep|listen|watch|cook)\b"
        ),
    ),
    Cue(
        "always_never",
        "preference",
        0.7,
        _re(
            r"^(?:please\s+)?(?:always|never)\s+(?!mind\b)[a-z][\w-]+"
            r"|\bplease,?\s+always\b|\balways,?\s+please\b"
            r"|^(?:please\s+)?only\s+(?:use|write|include|reply|answer|respond|give|show|cite"
            r"|send|book)\b"
        ),
    ),
    Cue(
        "please_default",
        "preference",
        0.65,
        _re(
            r"^(?:please\s+)?(?:use|write|prefer|stick to|default to|format|give|reply|answer"
            r"|respond|cite|keep)\b.*\b(?:instead of|rather than|over|by default|in general"
            r"|whenever|each time|every time|at all times)\b"
        ),
    ),
    Cue(
        "please_dont",
        "preference",
        0.65,
        _re(
            r"^(?:please\s+)?(?:do not|don't|dont|never)\s+(?:schedule|use|add|send|book|write|put"
            r"|include|call|email|ping|suggest|recommend|order|cc|share|post|reply|translate"
            r"|abbreviate|round|autoplay|wake)\b"
        ),
    ),
    # -- facts and decisions about the work --------------------------------------------------
    # Stated by the assistant: a decision of the team's ("we", never "I": what an assistant
    # decided for itself is no one's memory), and a fact it explicitly flags to remember.
    Cue(
        "agent_decision",
        "project",
        0.75,
        _re(
            r"^(?:(?:ok(?:ay)?|so|right|noted|great|got it|understood|sure)[,.:!]?\s+)?"
            r"(?:as (?:discussed|agreed),?\s+)?we(?:'ve| have)? (?:decided|agreed|chose|chosen"
            r"|settled on|opted|committed to|standardi[sz]ed on)\b"
            r"|^(?:the )?(?:team's |final )?decision (?:is|was)\b"
        ),
        "assistant",
    ),
    Cue(
        "agent_reminder",
        "knowledge",
        0.7,
        relabel=True,
        pattern=_re(
            r"^(?:please\s+)?(?:remember|for future reference,?) that\b"
            r"(?!\s*(?:[,.!;]|$|if|when|for|next|in case|too|as well))"
        ),
        sides="assistant",
    ),
    Cue(
        "decision",
        "project",
        0.75,
        _re(
            r"\bwe(?:'ve| have)? (?:decided|agreed|chose|chosen|settled on|opted|committed to"
            r"|standardi[sz]ed on|voted)\b|\bwe(?:'re| are) (?:going with|standardi[sz]ing on"
            r"|switching to|moving to|migrating to|deprecating|dropping|sunsetting|adopting)\b"
            r"|\b(?:the )?decision (?:is|was)\b|\b(?:i|we|they|\w+) agreed (?:that|to|on)\b"
            r"|\b(?:is|are) (?:now )?(?:out of|in) scope\b|\bdecided (?:to|that|on|against)\b"
        ),
    ),
    Cue(
        "migration",
        "project",
        0.7,
        _re(
            r"\bwe(?:'ve| have)? (?:migrated|switched|moved|upgraded|standardi[sz]ed|replaced"
            r"|adopted|deprecated|retired|pinned|rewrote)\b"
        ),
    ),
    Cue(
        "plan",
        "project",
        0.65,
        _re(
            r"\bwe(?:'re| are) (?:going to|planning to|planning on|about to)\b|\bwe plan to\b"
            r"|\bthe plan is\b"
        ),
    ),
    Cue(
        "we_use",
        "project",
        0.65,
        durable=True,
        pattern=_re(
            r"\b(?:we|the team|our team|everyone here)(?:'re| are)? (?:use|uses|using|run|runs"
            r"|running|deploy|deploys|host|hosts|build|builds|store|stores|rely on|target|targets"
            r"|support|supports|follow|follows|require|requires|ship|ships|release|releases"
            r"|work in|write|publish|only accept|never merge|squash)\b"
        ),
    ),
    Cue(
        "we_practice",
        "project",
        0.6,
        durable=True,
        pattern=_re(
            r"^(?:[\w-]+,?\s+){0,2}?we (?:always |usually |normally |only |never |also )?"
            r"(?!(?:need|want|should|could|would|can|will|might|must|may|have|had|are|were|did"
            r"|do|does|don't|got|get|think|thought|see|saw|know|knew|tried|try|just|talked|said"
            r"|went|love|like|hope|guess|mean|feel|wonder|agree|really|still)\b)"
            r"[a-z]{3,}(?<!ed)\s+(?:the|our|all|every|each|a|an|it|them|[a-z]+s)\b"
        ),
    ),
    Cue(
        "project_fact",
        "project",
        0.65,
        durable=True,
        pattern=_re(
            rf"(?:\b(?:our|the|all|every)\s+|^)(?:[\w-]+\s+){{0,2}}?{PROJECT_NOUN}\s+{PROJECT_VERB}\b"
            rf"|\bour\s+(?:[\w-]+\s+){{0,3}}?[\w-]+\s+(?:{PROJECT_VERB}|(?:is|are|get|gets)"
            r"\s+(?!\w+ing\b)\w+ed)\b"
        ),
    ),
    Cue(
        "deadline",
        "project",
        0.7,
        _re(
            r"\b(?:deadline|due date|go-live|launch date|release date|code freeze|cut-?off|demo day)"
            rf"\b.{{0,50}}\b(?:\d|{WEEKDAY}|{MONTH}|next week|next month|end of|tomorrow)"
        ),
    ),
    Cue(
        "owner",
        "project",
        0.6,
        _re(r"\b[A-Z]\w+ (?:owns|is responsible for|is the owner of|maintains|is in charge of)\b"),
    ),
    # -- dated events ------------------------------------------------------------------------
    Cue(
        "dated_event",
        "episodic",
        0.6,
        _re(rf"\b{WHEN}\b.{{0,60}}\b{PAST}\b|\b{PAST}\b.{{0,80}}\b{WHEN}\b"),
    ),
    # -- weaker lessons ----------------------------------------------------------------------
    Cue(
        "never_because",
        "knowledge",
        0.55,
        _re(r"\b(?:never|always|don't|do not)\b.{3,80}\b(?:because|otherwise|or else)\b"),
    ),
    Cue(
        "works_only",
        "knowledge",
        0.5,
        _re(
            r"\b(?:doesn't|does not|won't|will not|can't|cannot) (?:work|run|build|start|connect)"
            r" (?:with|on|when|if|without|unless)\b|\bonly works (?:with|when|if|on)\b"
        ),
    ),
)

# A correction found by context (an instruction after a complaint), not by a pattern.
CORRECTION = Cue("after_complaint", "adaptation", 0.6, re.compile(r"$^"))
