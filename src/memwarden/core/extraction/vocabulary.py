"""Word lists the cue patterns are built from (regular-expression fragments)."""

from __future__ import annotations

WEEKDAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
MONTH = (
    r"(?:january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)"
)
# When something happened, and a verb that says it did.
WHEN = (
    rf"(?:yesterday|last (?:week|night|month|year|sprint|quarter|weekend|{WEEKDAY})"
    rf"|this (?:morning|afternoon|week|month)|earlier today|on {WEEKDAY}"
    r"|(?:\w+|a) (?:days?|weeks?|months?|years?) ago"
    rf"|on (?:the )?\d{{1,2}}(?:st|nd|rd|th)? (?:of )?{MONTH}|on {MONTH} \d{{1,2}}(?:st|nd|rd|th)?)"
)
PAST = (
    r"(?:(?!(?:need|speed|feed|seed|indeed|embed|bed|red|shed)\b)\w{2,}ed|had|met|went|ran"
    r"|got|saw"
    r"|gave|took|made|did|won|lost|broke|left|began|spoke|wrote|sent|found|held|hit|came"
    r"|flew|drove|bought|sold|built|chose|fell|fought|forgot|froze|grew|knew|led|paid|rode"
    r"|rose|sang|sat|slept|stood|swam|taught|threw|told|understood|woke|wore)"
)
ROLE = (
    r"(?:engineer|developer|dev|programmer|designer|manager|scientist|researcher|student"
    r"|lead|founder|co-founder|cto|ceo|cfo|vp|analyst|administrator|admin|sre|architect"
    r"|consultant|teacher|professor|lecturer|postdoc|nurse|doctor|physician|lawyer|writer"
    r"|editor|journalist|intern|contractor|freelancer|maintainer|director|accountant"
    r"|translator|photographer|musician|artist|chef|owner|parent|mother|father|mom|dad"
    r"|member|officer|specialist|technician|coordinator|product owner|pm|em|tester)"
)
TRAIT = (
    r"(?:vegetarian|vegan|pescatarian|left-handed|right-handed|colou?r-?blind|dyslexic|deaf"
    r"|diabetic|allergic to|lactose intolerant|coeliac|celiac|gluten intolerant|a native"
    r"|fluent in|based in|located in|from|originally from|married|single|retired|pregnant)"
)
PERSON = (
    r"(?:partner|wife|husband|spouse|son|daughter|kids?|children|child|baby|dog|cat|mother"
    r"|father|mom|dad|mum|brother|sister|manager|boss|supervisor|advisor|advisee|doctor"
    r"|landlord|cofounder|co-founder)"
)
PROJECT_NOUN = (
    r"(?:stack|database|db|backend|frontend|api|apis|repo|repository|monorepo|codebase"
    r"|service|services|app|application|cluster|clusters|pipeline|pipelines|ci|cd|deploys?"
    r"|deployments?|releases?|staging|production|prod|infra|infrastructure|conventions?"
    r"|style guide|branching model|branches|workflow|process|deadline|launch|budget|rotation"
    r"|handover|backups?|retention|architecture|schema|migrations|test suite|tests|builds?"
    r"|sprints?|milestone|roadmap|scope|thesis|paper|draft|chapter|dataset|corpus"
    r"|experiments?|baseline|licen[cs]e|policy|sla|slo|on-call|standup|stand-up|reviews?"
    r"|servers?|hosting|logs|logging|monitoring|alerts|secrets|domain|dns|cdn|queue|cache"
    r"|frontend framework|language|linter|formatter|target|customers?|users|client"
    r"|guidelines|rules|spec|specification|contract|requirements|readme|docs|documentation"
    r"|instructions|protocol|jobs?|etl|cron|cronjobs?|batch|tasks?|workers?|credentials"
    r"|tokens|passwords|dashboards?|reports?|invoices?)"
)
PROJECT_VERB = (
    r"(?:is|are|was|runs?|uses?|lives?|goes|go|happens?|must|should|will be|has|have|targets?"
    r"|needs?|requires?|starts?|ends?|sits?|relies on|depends on|is on|are on|stays?|expires?"
    r"|gets?|is due|is hosted|are hosted|is deployed|are deployed|is stored|are stored"
    r"|is written|are written|is built|are built|follows?|supports?|says?|states?|defines?"
    r"|specif(?:y|ies)|forbids?|allows?|expects?|counts?|finish(?:es)?|rotates?"
    r"|refresh(?:es)?)"
)
