"""Personal data out of the text a finding carries: command lines, paths, program names.

A scraper started as ``export.py --phone <mobile> --out <waybill>.csv`` must not carry those
values to the spool, the logs or HQ (DESIGN.md, privacy). Rules still match on the raw text, on
this PC; only what goes out is redacted here. Every personal-looking token becomes a typed
placeholder, so HQ still sees what kind of data a tool was given:

    <email>      an e-mail address
    <phone>      a mainland mobile number (+86 / 0086 / 86 prefix and space/dash separators
                 included) or a landline with its area code
    <id_number>  an 18-character resident ID number (shape only: a mistyped one is still personal)
    <waybill>    a run of letters and digits shaped like a carrier's waybill number
    <address>    a mainland street address
    <number>     any other run of 11 or more digits (as long as a mobile number), wherever it is,
                 e.g. inside a file name

The shapes are the export scanner's (agent/exports/patterns.py), with looser boundaries: the
scanner counts and must not take a phone out of the middle of an SKU; the redactor would rather
hide too much than too little. Personal names are not detected in free text: a surname followed by
one or two characters is also most ordinary words and the tools' own names.

The passes are precompiled and run in C; Python is called back only on a match, and the last
pass only for letter/digit runs with a digit that are long enough to hold a value. This runs for
every new process, so a command line with nothing personal costs a few microseconds.
"""

from __future__ import annotations

import re

from agent.exports.patterns import (
    ADDRESS,
    ADDRESS_STREET,
    ADDRESS_UNITS,
    HAN,
    ID_CARD,
    LANDLINE,
    MOBILE_SEGMENT,
    MOBILE_TAIL,
    compile_waybills,
)

EMAIL_MARK = "<email>"
PHONE_MARK = "<phone>"
ID_MARK = "<id_number>"
WAYBILL_MARK = "<waybill>"
ADDRESS_MARK = "<address>"
NUMBER_MARK = "<number>"

LONG_DIGITS = 11  # a mobile number's length; shorter runs (ports, pids, dates) stay readable

# The local part starts where no local-part character stands before it, so a long word without
# "@" is not re-tried from each of its characters. The last label is letters: user@10.0.0.1 (ssh)
# is an address of a host, not of a person.
_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# No digit before (letters, "_" and Han may be: tel<mobile>, 客户<mobile>.csv) and none after.
_MOBILE = re.compile(rf"(?<![0-9])(?:(?:\+|00)?86[ \-]?)?1{MOBILE_SEGMENT}{MOBILE_TAIL}(?![0-9])")
# The scanner's ADDRESS starts at the first administrative unit; the place name before it goes too.
# Its bounded repeats still cost milliseconds per position on a run of unit characters (about 1 ms
# for 24 of them, 16 ms for 48), and a crafted command line must not stall detection. So it is
# tried only on a stretch of Han text (with the digits and letters of a house number) that holds a
# unit and a street-level word, is at most ADDRESS_MAX characters long, and is among the first
# ADDRESS_TRIES such stretches of the text; any other stretch with both is taken as an address whole.
ADDRESS_MAX = 24
ADDRESS_TRIES = 8
_HAN_STRETCH = re.compile(rf"[{HAN}][{HAN}0-9A-Za-z\-]*")
_ADDRESS = re.compile(rf"(?<![{HAN}])[{HAN}]*?(?:{ADDRESS.pattern})")
_UNIT = re.compile(rf"[{ADDRESS_UNITS}]")
_STREET = re.compile(ADDRESS_STREET)
# Letter/digit runs that hold a digit and are long enough for any value (11 characters); the
# lookahead is checked in C, so ``python3`` or ``--port=9515`` never reaches Python.
_CANDIDATE = re.compile(rf"(?<![0-9A-Za-z])(?=[0-9A-Za-z]{{{LONG_DIGITS}}})[A-Za-z]*[0-9][0-9A-Za-z]*")
_DIGIT_RUN = re.compile(rf"[0-9]{{17}}[0-9Xx](?![0-9])|[0-9]{{{LONG_DIGITS},}}")
# Carriers' shapes as the scanner knows them by default, in any case (a typed sf... is one too),
# found inside a run as well (tel<waybill>) as long as no digit is glued to either end.
_WAYBILL = re.compile(rf"(?<![0-9])(?:{compile_waybills(None).pattern})(?![0-9])", re.IGNORECASE)


def _digits(match: re.Match[str]) -> str:
    return ID_MARK if ID_CARD.fullmatch(match.group()) else NUMBER_MARK


def _addresses(text: str) -> str:
    tries = ADDRESS_TRIES

    def stretch(match: re.Match[str]) -> str:
        nonlocal tries
        found = match.group()
        if not (_UNIT.search(found) and _STREET.search(found)):
            return found
        if len(found) > ADDRESS_MAX or tries == 0:
            return ADDRESS_MARK
        tries -= 1
        return _ADDRESS.sub(ADDRESS_MARK, found)

    return _HAN_STRETCH.sub(stretch, text)


def _candidate(match: re.Match[str]) -> str:
    run = match.group()
    if ID_CARD.fullmatch(run):
        return ID_MARK
    return _DIGIT_RUN.sub(_digits, _WAYBILL.sub(WAYBILL_MARK, run))


def redact(text: str) -> str:
    """``text`` with every e-mail, phone, ID, waybill, address and long digit run replaced by its mark."""
    if "@" in text:
        text = _EMAIL.sub(EMAIL_MARK, text)
    text = _MOBILE.sub(PHONE_MARK, text)
    text = LANDLINE.sub(PHONE_MARK, text)
    if not text.isascii():
        text = _addresses(text)
    return _CANDIDATE.sub(_candidate, text)


def redact_optional(text: str | None) -> str | None:
    """`redact` for a field that may be absent."""
    return None if text is None else redact(text)
