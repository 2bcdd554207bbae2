"""Who says what: the speeches of a play, read from its speaker headings.

The Gutenberg texts of the plays print each speech under a heading on a line of its own,
after a blank line, with the first spoken line right below it:

    FIRST CITIZEN.                      Ber.                    HERMIA
    Before we proceed any further,      Who's there?            So is Lysander.
    hear me speak.

The style of heading varies by edition (capitals, abbreviations like `Ber.`, no final
period in A Midsummer Night's Dream, `1 Clown.`, `MRS. PAGE.`, joint speakers such as
`CAESAR, ANTONY, and LEPIDUS.`), so a heading is recognised by its shape: capitalised
words (or numerals), joined by spaces, commas, "and" or "&", ending in a period, or in
capitals without one; an optional stage direction in brackets may follow on the same
line. `ACT ...` and `SCENE ...` lines (in any case) are headings of another kind, never
speakers.
A list of persons ("SOLINUS, Duke of Ephesus.") fails the shape at its lower-case words.

A speech runs from the line after its heading to the next blank line; stage directions
in brackets are removed from it (the few whose bracket never closes, to the end of
their line). The poems have no headings and so no speeches.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_WORD = r"[A-Z0-9][A-Za-z0-9'\-]*\.?"  # a capitalised word or a numeral, maybe abbreviated
_NAME = rf"{_WORD}(?:(?:,? (?:and|&) |, | ){_WORD})*"
_DIRECTION = r"(?: ?\[[^\]]*\])?"  # "PORTIA.[To NERISSA]", "BEROWNE. [Aside.]"
_HEADING = re.compile(rf"(?P<name>{_NAME})(?P<period>\.?){_DIRECTION}")
_NOT_SPEAKERS = re.compile(r"(?:act|scene)\b", re.IGNORECASE)
_STAGE_DIRECTION = re.compile(r"\[[^\[\]]*\]")  # may span lines: "[Enter the PRINCESS,\nLORDS]"
_UNCLOSED_DIRECTION = re.compile(r"\[[^\n]*")  # a few never close: to the end of the line


class Speech(NamedTuple):
    """One speech: who speaks (the heading without its final period) and what is said."""

    speaker: str  # "FIRST CITIZEN", "Ber", "HERMIA", "CAESAR, ANTONY, and LEPIDUS"
    text: str  # the spoken lines, joined by "\n", stage directions removed


def speaker_heading(line: str) -> str | None:
    """The speaker named by `line` if it has the shape of a speaker heading, else None.

    The line as printed, trailing spaces allowed: "KING HENRY." -> "KING HENRY",
    "1 Clown." -> "1 Clown", "THESEUS" -> "THESEUS"; "ACT I." and "Claudius, King of
    Denmark." -> None. A name without a final period counts only in capitals.
    """
    line = line.rstrip()
    match = _HEADING.fullmatch(line)
    if match is None or _NOT_SPEAKERS.match(line):
        return None
    name = match["name"]
    if not match["period"] and not (name.endswith(".") or name.isupper()):
        return None
    return name.removesuffix(".")


def speeches(text: str) -> list[Speech]:
    """The speeches of a play's text, in order (see the module docstring for the rules).

    A heading counts only after a blank line and directly above a spoken line, and only
    from the first act or scene heading on (if the text has one), so the title and the
    list of persons before it are not taken for speeches. Returns [] for a text without
    speaker headings, such as a poem.
    """
    lines = text.splitlines()
    # The list of persons comes before the first act or scene heading: start there.
    begin = next((i for i, line in enumerate(lines) if _NOT_SPEAKERS.match(line.strip())), 0)
    found = []
    for index, line in enumerate(lines[:-1]):
        if index < begin:
            continue
        if index == 0 or lines[index - 1].strip():
            continue  # a heading follows a blank line; the first line is the title
        speaker = speaker_heading(line)
        if speaker is None or not lines[index + 1].strip():
            continue
        block = []
        for following in lines[index + 1 :]:
            if not following.strip():
                break
            block.append(following)
        spoken = _STAGE_DIRECTION.sub("", "\n".join(block))
        spoken = _UNCLOSED_DIRECTION.sub("", spoken).splitlines()
        spoken = [part.strip() for part in spoken if part.strip()]
        if spoken:
            found.append(Speech(speaker, "\n".join(spoken)))
    return found
