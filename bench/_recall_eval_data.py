"""The recall-quality evaluation set: facts about people, and questions asked four ways.

Each *family* is one kind of fact (diet, pets, commute, …). For every person it gives:
- ``fact``: the memory to find (``{n}`` the person, ``{v}`` their value);
- ``lexical``: a question using the fact's own words;
- ``paraphrase``: the same question in other words (no content word of the fact but the name);
- ``morph``: the fact's words in other forms ("prefers" → "preferring");
- ``distractors``: memories about the same person that share words with the questions but
  answer something else — the trap plain word matching falls into.
Families with a ``second`` fact give a multi-answer question (``multi``) whose answer is both.
Every person has every family, so the name alone never finds the answer.

Split: the first five people are the tuning set (``recall_semantic_weight``, ``MIN_COSINE``,
``CENTRE_SHARE`` and ``TEXT_COVERAGE_GATE`` were
chosen on them), the last three are held out and never looked at while tuning.
"""

from __future__ import annotations

from dataclasses import dataclass

PEOPLE = ["Maya", "Tomas", "Priya", "Jonah", "Elena", "Kofi", "Sven", "Aiko"]
TUNE = PEOPLE[:5]
HELD_OUT = PEOPLE[5:]

FAMILIES: list[dict[str, object]] = [
    {
        "name": "diet",
        "values": [
            "pescatarian",
            "vegan",
            "vegetarian",
            "pescatarian",
            "vegan",
            "vegetarian",
            "pescatarian",
            "vegan",
        ],
        "fact": "{n} is {v} and never eats red meat.",
        "lexical": "{n} {v} red meat",
        "paraphrase": "what are {n}'s current dietary restrictions",
        "morph": "{n} eating meat",
        "distractors": [
            "{n} lifted the restrictions on the current release branch.",
            "{n} met the red team at the meat market conference.",
        ],
    },
    {
        "name": "allergy",
        "values": [
            "peanuts",
            "shellfish",
            "penicillin",
            "pollen",
            "cats",
            "latex",
            "wasps",
            "dust",
        ],
        "fact": "{n} is allergic to {v}.",
        "lexical": "{n} allergic {v}",
        "paraphrase": "does {n} have any adverse immune reactions",
        "morph": "{n} allergies",
        "distractors": [
            "{n} reacted quickly to the outage.",
            "{n} has any number of reasons to skip the offsite.",
        ],
    },
    {
        "name": "editor",
        "values": [
            "dark mode",
            "light mode",
            "dark mode",
            "high contrast",
            "dark mode",
            "light mode",
            "high contrast",
            "dark mode",
        ],
        "fact": "{n} prefers {v} in every code editor.",
        "lexical": "{n} prefers {v} editor",
        "paraphrase": "which colour theme does {n} like for programming",
        "morph": "{n} preferred editors",
        "distractors": [
            "{n} edited the colour palette of the marketing site.",
            "{n} likes programming puzzles on weekends.",
        ],
    },
    {
        "name": "commute",
        "values": ["bicycle", "train", "bus", "bicycle", "car", "train", "scooter", "bicycle"],
        "fact": "{n} commutes to the office by {v}.",
        "lexical": "{n} commutes office {v}",
        "paraphrase": "how does {n} get to work each morning",
        "morph": "{n} commuting",
        "distractors": [
            "{n} gets the morning report from the office manager.",
            "{n} will work on the mobile app each sprint.",
        ],
    },
    {
        "name": "timezone",
        "values": ["Berlin", "Lisbon", "Mumbai", "Toronto", "Madrid", "Accra", "Oslo", "Tokyo"],
        "fact": "{n} lives in {v} and works remotely.",
        "lexical": "{n} lives {v}",
        "paraphrase": "which city is {n}'s home",
        "morph": "{n} living remote working",
        "distractors": [
            "{n} wrote the home page copy for the city council project.",
            "{n} lives by the rule of never deploying late.",
        ],
    },
    {
        "name": "meetings",
        "values": [
            "Tuesday",
            "Monday",
            "Thursday",
            "Wednesday",
            "Friday",
            "Tuesday",
            "Monday",
            "Thursday",
        ],
        "fact": "{n} holds a weekly one-on-one every {v} afternoon.",
        "lexical": "{n} weekly one-on-one {v}",
        "paraphrase": "when does {n} have a regular private catch-up",
        "morph": "{n} holding weekly meeting",
        "distractors": [
            "{n} caught up on the regular expression bugs.",
            "{n} keeps the private keys in a hardware token.",
        ],
    },
    {
        "name": "language",
        "values": ["Rust", "Python", "Go", "TypeScript", "Kotlin", "Python", "Rust", "Go"],
        "fact": "{n} writes most services in {v}.",
        "lexical": "{n} services {v}",
        "paraphrase": "what programming language does {n} favour for backend code",
        "morph": "{n} writing service",
        "distractors": [
            "{n} favours long walks over lunch.",
            "{n} backed up the code review notes to the wiki.",
        ],
    },
    {
        "name": "vacation",
        "values": ["August", "July", "December", "June", "September", "August", "May", "October"],
        "fact": "{n} is on holiday for the whole of {v}.",
        "lexical": "{n} holiday {v}",
        "paraphrase": "when will {n} be away on leave",
        "morph": "{n} holidays",
        "distractors": [
            "{n} will be away from the keyboard during the demo.",
            "{n} asked to leave the legacy scheduler alone.",
        ],
    },
    {
        "name": "sleep",
        "values": [
            "early riser",
            "night owl",
            "early riser",
            "night owl",
            "early riser",
            "night owl",
            "early riser",
            "night owl",
        ],
        "fact": "{n} is an {v} who does deep work at dawn or midnight.",
        "lexical": "{n} deep work",
        "paraphrase": "at what hours is {n} most productive",
        "morph": "{n} works deeply",
        "distractors": [
            "{n} measured the productive hours of the build farm.",
            "{n} logged most hours on the billing project.",
        ],
    },
    {
        "name": "coffee",
        "values": [
            "black coffee",
            "green tea",
            "oat flat white",
            "espresso",
            "chai",
            "black coffee",
            "mint tea",
            "cortado",
        ],
        "fact": "{n} always orders {v} at the café.",
        "lexical": "{n} orders {v}",
        "paraphrase": "what hot drink does {n} like",
        "morph": "{n} ordering café",
        "distractors": [
            "{n} likes hot reloading in the dev server.",
            "{n} drinks in every word of the design reviews.",
        ],
    },
    {
        "name": "pets",
        "values": ["Biscuit", "Luna", "Pepper", "Milo", "Nala", "Otis", "Rex", "Mochi"],
        "fact": "{n} has a dog called {v}.",
        "second": "{n} adopted a rescue cat last spring.",
        "lexical": "{n} dog {v}",
        "paraphrase": "what animals live with {n}",
        "multi": "tell me about {n}'s pets",
        "morph": "{n} dogs",
        "distractors": [
            "{n} called the vendor about the spring release.",
            "{n} lives with a flaky test suite.",
        ],
    },
    {
        "name": "family",
        "values": [
            "two daughters",
            "a son",
            "twins",
            "a daughter",
            "three sons",
            "a son",
            "two daughters",
            "twins",
        ],
        "fact": "{n} has {v} in primary school.",
        "second": "{n} picks the kids up from school on Wednesdays.",
        "lexical": "{n} {v} school",
        "paraphrase": "does {n} have children",
        "multi": "what do we know about {n}'s kids",
        "morph": "{n} schooling",
        "distractors": [
            "{n} has a primary key migration pending.",
            "{n} picks up the on-call pager this week.",
        ],
    },
    {
        "name": "birthday",
        "values": [
            "March 3",
            "June 21",
            "October 9",
            "January 15",
            "May 30",
            "July 4",
            "November 11",
            "February 2",
        ],
        "fact": "{n}'s birthday is on {v}.",
        "lexical": "{n} birthday {v}",
        "paraphrase": "when was {n} born",
        "morph": "{n} birthdays",
        "distractors": [
            "{n} was born to lead the incident reviews.",
            "{n} set the release date for the mobile app.",
        ],
    },
    {
        "name": "role",
        "values": [
            "staff engineer",
            "product manager",
            "designer",
            "data scientist",
            "engineering manager",
            "SRE",
            "security lead",
            "technical writer",
        ],
        "fact": "{n} works as the team's {v}.",
        "lexical": "{n} team {v}",
        "paraphrase": "what is {n}'s job title",
        "morph": "{n} working",
        "distractors": [
            "{n} renamed the title of the roadmap document.",
            "{n} finished the job queue refactor.",
        ],
    },
    {
        "name": "music",
        "values": ["jazz", "techno", "classical", "folk", "metal", "hip hop", "ambient", "jazz"],
        "fact": "{n} listens to {v} while coding.",
        "lexical": "{n} listens {v}",
        "paraphrase": "what songs does {n} enjoy",
        "morph": "{n} listening",
        "distractors": [
            "{n} enjoys reviewing pull requests.",
            "{n} plays the release notes back in the retro.",
        ],
    },
    {
        "name": "sport",
        "values": [
            "climbing",
            "running",
            "swimming",
            "football",
            "tennis",
            "cycling",
            "rowing",
            "yoga",
        ],
        "fact": "{n} trains for {v} three times a week.",
        "lexical": "{n} trains {v}",
        "paraphrase": "how does {n} stay fit",
        "morph": "{n} training weekly",
        "distractors": [
            "{n} trains the new hires on the deploy tooling.",
            "{n} keeps the staging cluster healthy.",
        ],
    },
    {
        "name": "laptop",
        "values": [
            "ThinkPad",
            "MacBook",
            "Framework",
            "Dell XPS",
            "MacBook",
            "ThinkPad",
            "Framework",
            "Surface",
        ],
        "fact": "{n} develops on a {v} running Linux.",
        "lexical": "{n} {v} Linux",
        "paraphrase": "what computer does {n} use",
        "morph": "{n} developing",
        "distractors": [
            "{n} uses the shared test account for demos.",
            "{n} ran the computer vision prototype.",
        ],
    },
    {
        "name": "contact",
        "values": ["Slack", "email", "phone", "Signal", "Slack", "email", "Teams", "phone"],
        "fact": "{n} answers fastest when reached on {v}.",
        "second": "{n} never reads messages after six in the evening.",
        "lexical": "{n} reached {v}",
        "paraphrase": "what is the best way to get hold of {n}",
        "multi": "how and when should I contact {n}",
        "morph": "{n} answering",
        "distractors": [
            "{n} holds the record for the best way to cut build times.",
            "{n} gets the evening digest of failing tests.",
        ],
    },
    {
        "name": "access",
        "values": [
            "production",
            "billing",
            "analytics",
            "staging",
            "production",
            "billing",
            "analytics",
            "staging",
        ],
        "fact": "{n} was granted admin rights on the {v} database.",
        "second": "{n} must rotate database credentials every ninety days.",
        "lexical": "{n} admin {v} database",
        "paraphrase": "what privileges does {n} hold",
        "multi": "what are {n}'s database permissions and obligations",
        "morph": "{n} granting admins",
        "distractors": [
            "{n} holds the opinion that the admin panel needs a redesign.",
            "{n} granted the intern an extension on the report.",
        ],
    },
    {
        "name": "goal",
        "values": [
            "become a staff engineer",
            "learn Japanese",
            "run a marathon",
            "write a book",
            "ship the mobile app",
            "learn piano",
            "move to Canada",
            "mentor juniors",
        ],
        "fact": "{n}'s goal this year is to {v}.",
        "lexical": "{n} goal year",
        "paraphrase": "what is {n} aiming for in the coming months",
        "morph": "{n} goals",
        "distractors": [
            "{n} is aiming the camera at the whiteboard for the recording.",
            "{n} said the coming months are busy for support.",
        ],
    },
]

NOISE = [
    "The deploy pipeline runs integration tests before every merge.",
    "The staging database is refreshed from a masked snapshot nightly.",
    "The office kitchen restocks coffee on Mondays.",
    "The quarterly planning meeting is on the first Tuesday.",
    "The support rota rotates every week.",
    "The design system lives in its own repository.",
    "The incident channel is muted outside incidents.",
    "The build cache is shared across branches.",
    "The API rate limit is one hundred requests per second.",
    "Release notes are written by the on-call engineer.",
    "The company offsite is in the mountains this year.",
    "The analytics dashboard refreshes every hour.",
    "Code owners must approve changes to the billing module.",
    "The wiki has a page for every service.",
    "Security training is due every autumn.",
    "The mobile app ships every second Thursday.",
    "Lunch is catered on Fridays.",
    "The VPN must be on to reach the staging cluster.",
    "The backlog is groomed on Wednesday mornings.",
    "Hackathon week is in November.",
]


@dataclass(frozen=True)
class Query:
    text: str
    kind: str  # lexical, paraphrase, morphology, multi
    answers: tuple[str, ...]  # the memories' contents
    split: str  # tune or held_out


def memories() -> list[str]:
    out: list[str] = []
    for i, person in enumerate(PEOPLE):
        for family in FAMILIES:
            value = family["values"][i]  # type: ignore[index]
            out.append(str(family["fact"]).format(n=person, v=value))
            if "second" in family:
                out.append(str(family["second"]).format(n=person))
            for distractor in family["distractors"]:  # type: ignore[attr-defined]
                out.append(str(distractor).format(n=person))
    return out + NOISE


def queries() -> list[Query]:
    out: list[Query] = []
    for i, person in enumerate(PEOPLE):
        split = "tune" if person in TUNE else "held_out"
        for family in FAMILIES:
            value = family["values"][i]  # type: ignore[index]
            fact = str(family["fact"]).format(n=person, v=value)
            for kind, key in (
                ("lexical", "lexical"),
                ("paraphrase", "paraphrase"),
                ("morphology", "morph"),
            ):
                text = str(family[key]).format(n=person, v=value)
                out.append(Query(text, kind, (fact,), split))
            if "multi" in family:
                second = str(family["second"]).format(n=person)
                text = str(family["multi"]).format(n=person)
                out.append(Query(text, "multi", (fact, second), split))
    return out
