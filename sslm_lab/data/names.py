"""Who is named: a token-classification task built from the plays' speaker headings.

A play prints the name of whoever speaks above each speech (`sslm_lab.data.speeches`).
Those headings are labels nobody had to write: they say which words of this play are
its characters' names. Tagging the names where they occur *inside the dialogue*
("Good Horatio, a word") is then a named-entity task in the BIO scheme, one entity
type, PER:

    words  Good  Horatio  ,  a  word     Sir  Toby  Belch  ,  away
    tags   O     B-PER    O  O  O        O    B-PER I-PER  O  O

Which heading words are names. A heading mixes names with roles and titles ("FIRST
CITIZEN", "KING HENRY", "LADY MACBETH", "SIR TOBY"), and some editions abbreviate
("Hor" for Horatio). A word is a name here when the dialogue itself treats it as a
proper noun: written capitalised each time it follows a lower-case word, at least
`min_uses` times. "Macbeth" passes; "lord", "citizen" and "king" are mostly
lower-case mid-sentence and fail, so "KING HENRY" gives "Henry". An abbreviation
(a heading word the dialogue never uses) stands for the most frequent such proper noun
that it begins, preferring one the list of persons or a stage direction spells out
("Hor" -> "Horatio"), if there is one. Possessives count ("Hamlet's").

Evaluated on plays unseen in training, a tagger cannot memorise the list: it has to
recognise a name from its context and form. `capitalisation_tags` is the obvious
baseline (every capitalised word that is not sentence-initial and not a frequent
capitalised non-name), and `entity_f1` scores with seqeval, entity by entity.
`encode_tagged` turns the words into subword pieces for a model (the label on each
word's first piece; `encode_tagged_wordpiece` does the same for a Hugging Face fast
tokenizer such as MiniLM's WordPiece) and `word_tags` reads a model's predictions back
as word tags.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import torch
from torch import Tensor

from sslm_lab.checks import check_int
from sslm_lab.data.shakespeare import Work, read_work, works_in_split
from sslm_lab.data.speeches import speeches
from sslm_lab.data.tokenizers import TextTokenizer

TAGS = ("O", "B-PER", "I-PER")  # label ids 0, 1, 2
_WORD = re.compile(r"[A-Za-z]+(?:['\-][A-Za-z]+)*|[^\sA-Za-z]")  # words, and each mark alone
_SPLIT_SPEAKERS = re.compile(r",? (?:and|&) |, ")
_SENTENCE_END = {".", "!", "?", ":", ";"}
# Heading words that are titles or roles even where the dialogue capitalises them
# ("Don Pedro", "Sir Toby", "the Constable"), and words capitalised for other reasons.
_TITLES = {"Sir", "Don", "Lady", "Lord", "King", "Queen", "Prince", "Duke", "Mistress", "Master"}
_TITLES |= {"Messenger", "Servant", "Constable", "Hostess", "Attendants", "All", "Both", "French"}
_ALWAYS_CAPITAL = {"I", "O", "God", "Heaven", "Madam"} | _TITLES


def words(text: str) -> list[str]:
    """`text` cut into words and punctuation marks, as the tagger sees it."""
    return _WORD.findall(text)


def _stem(word: str) -> str:
    return word[:-2] if word.endswith("'s") else word


def _mid_sentence(tokens: list[str]) -> list[bool]:
    """Whether each token of a line follows another token of its sentence on that line."""
    return [index > 0 and tokens[index - 1] not in _SENTENCE_END for index in range(len(tokens))]


def proper_nouns(dialogue: list[str], min_uses: int = 2) -> Counter[str]:
    """Words the dialogue always writes capitalised when they stand inside a sentence.

    `dialogue`: the spoken text, one string per speech. Returns word -> how often it is
    used inside a sentence (at least `min_uses`); a word ever written in lower case
    ("lord", "king") is not a proper noun.
    """
    check_int("min_uses", min_uses, low=1)
    capital, lower = Counter[str](), set()
    for speech in dialogue:
        for line in speech.splitlines():
            tokens = words(line)
            for token, inside in zip(tokens, _mid_sentence(tokens), strict=True):
                word = _stem(token)
                if not word[0].isalpha():
                    continue
                if word[0].islower():
                    lower.add(word.capitalize())
                elif inside:
                    capital[word] += 1
    return Counter({w: n for w, n in capital.items() if n >= min_uses and w not in lower})


def character_names(text: str, min_uses: int = 2) -> set[str]:
    """The characters' names a play's dialogue uses, from its speaker headings (see above)."""
    play = speeches(text)
    nouns = proper_nouns([speech.text for speech in play], min_uses)
    # The lists of persons and the stage directions spell out what headings abbreviate
    outside = Counter(w.capitalize() for w in words(text))
    outside.subtract(w.capitalize() for speech in play for w in words(speech.text))
    names: set[str] = set()
    for speaker in {speech.speaker for speech in play}:
        for heading in _SPLIT_SPEAKERS.split(speaker):
            for part in heading.replace(".", " ").split():
                word = part.capitalize() if part.isupper() else part
                if word in _TITLES:
                    continue
                if word in nouns:
                    names.add(word)
                elif len(word) >= 3:  # maybe an abbreviation of a name the play spells out
                    longer = [
                        (outside[w] > 0, n, w) for w, n in nouns.items() if w.startswith(word)
                    ]
                    if longer:
                        names.add(max(longer)[2])
    return names


def bio_tags(tokens: list[str], names: set[str]) -> list[str]:
    """BIO tags for `tokens`: a run of consecutive names is one entity."""
    tags = []
    for index, token in enumerate(tokens):
        if _stem(token) in names:
            inside = index > 0 and tags[-1] != "O"
            tags.append("I-PER" if inside else "B-PER")
        else:
            tags.append("O")
    return tags


def capitalisation_tags(
    tokens: list[str], line_starts: list[bool] | None = None, not_names: set[str] = _ALWAYS_CAPITAL
) -> list[str]:
    """The baseline: a capitalised word that starts no sentence and no line is a name."""
    if line_starts is None:
        line_starts = [index == 0 for index in range(len(tokens))]
    if len(line_starts) != len(tokens):
        raise ValueError(f"line_starts: {len(line_starts)} flags for {len(tokens)} tokens")
    tags = []
    for index, token in enumerate(tokens):
        starts = line_starts[index] or index == 0 or tokens[index - 1] in _SENTENCE_END
        if token[0].isupper() and not starts and _stem(token) not in not_names:
            tags.append("I-PER" if tags and tags[-1] != "O" else "B-PER")
        else:
            tags.append("O")
    return tags


def entity_f1(true_tags: list[list[str]], predicted_tags: list[list[str]]) -> dict[str, float]:
    """Entity-level precision, recall and F1 (seqeval, strict BIO spans of type PER)."""
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    if [len(t) for t in true_tags] != [len(p) for p in predicted_tags]:
        raise ValueError("true_tags and predicted_tags: each sequence needs one tag per token")
    options = {"mode": "strict", "scheme": IOB2, "zero_division": 0}
    return {
        "precision": float(precision_score(true_tags, predicted_tags, **options)),
        "recall": float(recall_score(true_tags, predicted_tags, **options)),
        "f1": float(f1_score(true_tags, predicted_tags, **options)),
    }


@dataclass(frozen=True)
class TaggedSpeech:
    """One speech's words and their tags, with where it came from."""

    work: str  # the play's title
    speaker: str
    tokens: list[str]
    tags: list[str]
    line_starts: list[bool]  # whether each token begins a printed line (verse capitalises it)


def tagged_speeches(
    split: str, max_words: int = 64, min_uses: int = 2, works: list[Work] | None = None
) -> list[TaggedSpeech]:
    """Every speech of the plays of `split` ('train', 'val', 'test'), tagged with its names.

    Each speech is cut to its first `max_words` tokens; poems (no headings) give none.
    The names come from each play's own headings, so a test play's names are its own.
    """
    check_int("max_words", max_words, low=1)
    rows = []
    for work in works if works is not None else works_in_split(split):
        text = read_work(work)
        names = character_names(text, min_uses)
        for speech in speeches(text):
            tokens, starts = [], []
            for line in speech.text.splitlines():
                in_line = words(line)
                tokens += in_line
                starts += [index == 0 for index in range(len(in_line))]
            tokens, starts = tokens[:max_words], starts[:max_words]
            if tokens:
                tags = bio_tags(tokens, names)
                rows.append(TaggedSpeech(work.title, speech.speaker, tokens, tags, starts))
    return rows


def _spelled(tokens: list[str]) -> list[str]:
    """Each token with the space that precedes it in running text (none before a mark)."""
    return [t if i == 0 or not t[0].isalnum() else " " + t for i, t in enumerate(tokens)]


@dataclass(frozen=True)
class EncodedTags:
    """Tagged speeches as model input: one row per speech, [CLS] first, padded.

    labels hold a tag id (TAGS) at the first piece of every word and IGNORE elsewhere
    ([CLS], later pieces of a word, padding), the usual way to train a word tagger on
    subword pieces; word_index maps each labelled piece back to its word.
    """

    ids: Tensor  # (rows, max_tokens) int64
    attention_mask: Tensor  # (rows, max_tokens) int64, 1 on real pieces
    labels: Tensor  # (rows, max_tokens) int64, TAGS index or IGNORE
    words_kept: list[int]  # how many words of each speech fit into max_tokens


IGNORE = -100  # the label PyTorch's cross-entropy skips by default


def encode_tagged(
    rows: list[TaggedSpeech], tokenizer: TextTokenizer, max_tokens: int
) -> EncodedTags:
    """Cut each speech's words into the tokenizer's pieces, labelling each word's first.

    A word whose pieces would not fit is dropped with the rest of its speech
    (`words_kept` says how many stayed), so no label ever points at half a word.
    """
    check_int("max_tokens", max_tokens, low=2)
    ids = torch.full((len(rows), max_tokens), tokenizer.pad_id, dtype=torch.long)
    labels = torch.full((len(rows), max_tokens), IGNORE, dtype=torch.long)
    kept = []
    for row_index, row in enumerate(rows):
        pieces = [tokenizer.cls_id]
        row_labels = [IGNORE]
        count = 0
        for spelled, tag in zip(_spelled(row.tokens), row.tags, strict=True):
            word_ids = tokenizer.encode(spelled)
            if len(pieces) + len(word_ids) > max_tokens:
                break
            pieces += word_ids
            row_labels += [TAGS.index(tag)] + [IGNORE] * (len(word_ids) - 1)
            count += 1
        ids[row_index, : len(pieces)] = torch.tensor(pieces)
        labels[row_index, : len(pieces)] = torch.tensor(row_labels)
        kept.append(count)
    return EncodedTags(ids, (ids != tokenizer.pad_id).long(), labels, kept)


def word_tags(predicted: Tensor, labels: Tensor, words_kept: list[int]) -> list[list[str]]:
    """Per speech, the tag predicted at each word's first piece (where labels are set).

    predicted: (rows, max_tokens) tag ids from a tagger, e.g. logits.argmax(-1).
    """
    if predicted.shape != labels.shape:
        raise ValueError(
            f"predicted {tuple(predicted.shape)} must match labels {tuple(labels.shape)}"
        )
    out = []
    for row_predicted, row_labels, count in zip(predicted, labels, words_kept, strict=True):
        at_words = row_predicted[row_labels != IGNORE].tolist()
        if len(at_words) != count:
            raise ValueError(f"labels mark {len(at_words)} words where words_kept says {count}")
        out.append(_valid_bio([TAGS[i] for i in at_words]))
    return out


def _valid_bio(tags: list[str]) -> list[str]:
    """An I-PER that follows an O starts an entity: read it as B-PER (strict BIO)."""
    return [
        "B-PER" if tag == "I-PER" and (i == 0 or tags[i - 1] == "O") else tag
        for i, tag in enumerate(tags)
    ]


def encode_tagged_wordpiece(rows: list[TaggedSpeech], tokenizer, max_tokens: int) -> EncodedTags:
    """`encode_tagged` for a Hugging Face fast tokenizer (e.g. MiniLM's WordPiece).

    Each row is `[CLS] pieces [SEP]`, the way BERT-style models were trained; the tag of
    a word goes on its first piece, found through the tokenizer's `word_ids()`. As in
    `encode_tagged`, a word whose pieces would not fit (with [SEP]) is dropped with the
    rest of its speech, and `words_kept` says how many words stayed.
    """
    check_int("max_tokens", max_tokens, low=3)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"tokenizer: got {type(tokenizer).__name__}; allowed: a Hugging Face fast "
            "tokenizer (is_fast=True), whose word_ids() maps pieces to words"
        )
    pad = tokenizer.pad_token_id
    ids = torch.full((len(rows), max_tokens), pad, dtype=torch.long)
    labels = torch.full((len(rows), max_tokens), IGNORE, dtype=torch.long)
    kept = []
    for row_index, row in enumerate(rows):
        encoding = tokenizer(row.tokens, is_split_into_words=True, add_special_tokens=False)
        word_of = encoding.word_ids()  # the word index of each piece
        lost = sorted(set(range(len(row.tokens))) - set(word_of))
        if lost:
            raise ValueError(
                f"rows: the tokenizer gives no piece to the word {row.tokens[lost[0]]!r} "
                f"({row.work}, {row.speaker}); every word needs at least one piece"
            )
        # The first piece past the room for [CLS] and [SEP] belongs to the first word cut.
        count = word_of[max_tokens - 2] if len(word_of) > max_tokens - 2 else len(row.tokens)
        pieces = [p for p, w in zip(encoding["input_ids"], word_of, strict=True) if w < count]
        row_labels, previous = [], None
        for w in word_of[: len(pieces)]:
            row_labels.append(TAGS.index(row.tags[w]) if w != previous else IGNORE)
            previous = w
        full = [tokenizer.cls_token_id, *pieces, tokenizer.sep_token_id]
        ids[row_index, : len(full)] = torch.tensor(full)
        labels[row_index, 1 : len(pieces) + 1] = torch.tensor(row_labels, dtype=torch.long)
        kept.append(count)
    return EncodedTags(ids, (ids != pad).long(), labels, kept)
