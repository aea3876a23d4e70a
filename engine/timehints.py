"""The times a search query names ("in October 2023", "on May 3, 2023", "in June").

Memory searches boost what was said in the time a query names (engine/retrieval.py).
Only explicit calendar words are read: relative ones ("last week") depend on when the
question is about, which the query alone does not say.

A named time is widened by a week after it, because what is said about a day is often
said a few days later ("I went to the group yesterday", "last weekend we...").
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import re

LATER = dt.timedelta(days=8)  # what is said about a time is often said up to a week after it

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_MONTH_DAY_YEAR = re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+(\d{{4}})\b", re.IGNORECASE)
_DAY_MONTH_YEAR = re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH},?\s+(\d{{4}})\b", re.IGNORECASE)
_ISO_DAY = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_MONTH_YEAR = re.compile(rf"\b{_MONTH},?\s+(\d{{4}})\b", re.IGNORECASE)
# A month or a year alone only after a preposition: "may" and "march" are verbs too.
_MONTH_ALONE = re.compile(rf"\b(?:in|during|of|since|until|before|after|early|late|mid)\s+{_MONTH}(?!\w)", re.IGNORECASE)
_YEAR_ALONE = re.compile(r"\b(?:in|during|of|since)\s+((?:19|20)\d\d)\b", re.IGNORECASE)
MAX_HINTS = 8  # a query listing dozens of dates must not make every check slow


@dataclasses.dataclass(frozen=True)
class TimeHint:
    """A span of days (since <= day < until), or a month of any year (`month`)."""

    since: dt.date | None = None
    until: dt.date | None = None
    month: int | None = None

    def covers(self, created_at: str) -> bool:
        """Whether a stored time (ISO 8601, as the store writes it) falls in this hint."""
        try:
            day = dt.date.fromisoformat(created_at[:10])
        except ValueError:
            return False
        if self.month is not None:
            return day.month == self.month or (day - LATER).month == self.month
        return self.since is not None and self.until is not None and self.since <= day < self.until


def _day(year: int, month: int, day: int) -> TimeHint | None:
    try:
        date = dt.date(year, month, day)
    except ValueError:  # "February 30": not a time at all
        return None
    return TimeHint(date - dt.timedelta(days=1), date + LATER)


def time_hints(query: str) -> list[TimeHint]:
    """The times `query` names, the most precise kind found (days, else months, else years)."""
    query = query[:2000]
    days = [_day(int(y), _MONTHS[m.lower()], int(d)) for m, d, y in _MONTH_DAY_YEAR.findall(query)]
    days += [_day(int(y), _MONTHS[m.lower()], int(d)) for d, m, y in _DAY_MONTH_YEAR.findall(query)]
    days += [_day(int(y), int(m), int(d)) for y, m, d in _ISO_DAY.findall(query)]
    found = [h for h in days if h is not None]
    if not found:
        for name, year in _MONTH_YEAR.findall(query):
            first = dt.date(int(year), _MONTHS[name.lower()], 1)
            after = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
            found.append(TimeHint(first, after + LATER))
    if not found:
        found = [TimeHint(month=_MONTHS[name.lower()]) for name in _MONTH_ALONE.findall(query)]
    if not found:
        found = [TimeHint(dt.date(int(y), 1, 1), dt.date(int(y) + 1, 1, 1) + LATER) for y in _YEAR_ALONE.findall(query)]
    return list(dict.fromkeys(found))[:MAX_HINTS]
