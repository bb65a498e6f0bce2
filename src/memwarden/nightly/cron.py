"""``MEMWARDEN_NIGHTLY_CRON``: a crontab line's five fields, read with crontab's own meaning.

APScheduler 3's ``CronTrigger.from_crontab`` numbers weekdays from Monday = 0, where crontab
has Sunday = 0 (and 7): ``0 3 * * 0`` would run on Mondays. Here the day-of-week field is
expanded with crontab's numbering and handed over as names. Crontab also fires when *either*
a restricted day of month or a restricted day of week matches, which APScheduler cannot say
(it wants both): such a line is refused with a clear error rather than run on other days.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

from apscheduler.triggers.cron import CronTrigger

from memwarden.errors import InvalidInputError

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab's 0..6
APS_ORDER = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ITEM = re.compile(r"^(?:(\*)|([a-z0-9]+)(?:-([a-z0-9]+))?)(?:/(\d+))?$")


class CronError(InvalidInputError):
    pass


def _day(token: str, expr: str) -> int:
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7
    if token[:3] in DAY_NAMES and len(token) == 3:
        return DAY_NAMES.index(token)
    raise CronError(f"invalid MEMWARDEN_NIGHTLY_CRON {expr!r}: {token!r} is not a day of week")


def weekdays(field: str, expr: str) -> str:
    """The day-of-week field in APScheduler's terms (names), with crontab's numbering."""
    field = field.strip().lower()
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for item in field.split(","):
        match = _ITEM.match(item)
        if match is None:
            raise CronError(f"invalid MEMWARDEN_NIGHTLY_CRON {expr!r}: bad day of week {item!r}")
        star, first, last, step = match.groups()
        if star:
            low, high = 0, 6
        else:
            low = _day(first, expr)
            # 7 closes a range as Sunday: 5-7 is fri, sat, sun.
            high = (7 if last == "7" else _day(last, expr)) if last else low
            if step and not last:
                high = 6
            if high < low:
                raise CronError(
                    f"invalid MEMWARDEN_NIGHTLY_CRON {expr!r}: day range {item!r} runs backwards"
                )
        stride = int(step) if step else 1
        if stride < 1:
            raise CronError(f"invalid MEMWARDEN_NIGHTLY_CRON {expr!r}: step 0 in {item!r}")
        days.update(day % 7 for day in range(low, high + 1, stride))
    return ",".join(name for name in APS_ORDER if DAY_NAMES.index(name) in days)


def parse(expr: str, timezone: tzinfo | str | None = None) -> CronTrigger:
    """A trigger for the five-field crontab line ``expr``; ``CronError`` with the reason."""
    fields = expr.split()
    if len(fields) != 5:
        raise CronError(
            f"invalid MEMWARDEN_NIGHTLY_CRON {expr!r}: a crontab line has 5 fields (minute hour "
            f"day-of-month month day-of-week), this has {len(fields)}; e.g. '30 2 * * *'"
        )
    minute, hour, day, month, dow = fields
    if day not in ("*", "?") and dow not in ("*", "?"):
        raise CronError(
            f"invalid MEMWARDEN_NIGHTLY_CRON {expr!r}: restrict the day of month or the day of "
            "week, not both (crontab would run on either, this scheduler only on both)"
        )
    try:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=weekdays(dow, expr),
            timezone=timezone,
        )
    except ValueError as exc:
        raise CronError(f"invalid MEMWARDEN_NIGHTLY_CRON {expr!r}: {exc}") from None


def next_times(trigger: CronTrigger, count: int, now: datetime) -> list[datetime]:
    """The next ``count`` moments the trigger fires after ``now``."""
    found: list[datetime] = []
    previous: datetime | None = None
    moment = now
    while len(found) < count:
        fire = trigger.get_next_fire_time(previous, moment)
        if fire is None:
            break
        found.append(fire)
        previous, moment = fire, fire
    return found
