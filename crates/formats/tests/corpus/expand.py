"""Reference occurrences for the differential recurrence test.

Usage: expand.py FROM TO ITEM.ics...

FROM and TO are Unix seconds of a half-open UTC window. For every item the
script prints one JSON object (one line per item, in argument order):

    {"item": "<path>", "occurrences": [[uid, start, end], ...]}
    {"item": "<path>", "error": "<why recurring-ical-events failed>"}

`start` and `end` are Unix seconds; floating times and dates count as UTC
(as Tandem reads them for window purposes); `end` is null when the
occurrence has none (a task without DUE). Occurrences come from
recurring-ical-events, the expansion library the test compares against.
"""

import datetime
import json
import sys

import icalendar
import recurring_ical_events

UTC = datetime.timezone.utc


def seconds(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp())
    if isinstance(value, datetime.date):
        return int(datetime.datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp())
    return None


def end_of(component):
    try:
        return seconds(component.end)
    except Exception:  # a task without DUE or DURATION has no end
        return None


def start_of(component):
    try:
        return seconds(component.start)
    except Exception:  # a task with only DUE occurs at its due date
        return seconds(component.decoded("DUE"))


def occurrences(path, start, stop):
    with open(path, "rb") as f:
        calendar = icalendar.Calendar.from_ical(f.read())
    found = []
    query = recurring_ical_events.of(calendar, components=["VEVENT", "VTODO"])
    for component in query.between(start, stop):
        found.append([str(component.get("UID", "")), start_of(component), end_of(component)])
    found.sort(key=lambda o: (o[0], o[1], o[2] if o[2] is not None else -1))
    return found


def main(argv):
    start = datetime.datetime.fromtimestamp(int(argv[1]), UTC)
    stop = datetime.datetime.fromtimestamp(int(argv[2]), UTC)
    for path in argv[3:]:
        try:
            line = {"item": path, "occurrences": occurrences(path, start, stop)}
        except Exception as error:  # reported, compared as a failure by the test
            line = {"item": path, "error": f"{type(error).__name__}: {error}"}
        print(json.dumps(line))


if __name__ == "__main__":
    main(sys.argv)
