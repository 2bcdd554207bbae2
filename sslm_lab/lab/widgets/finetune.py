"""The passage explorer of 07_fine_tuning: a passage in, each fine-tuned model's genre
probabilities and the character names its tagger finds out."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import ipywidgets as widgets
import torch
from torch import nn

from sslm_lab.checks import check_int, invalid
from sslm_lab.data.names import TaggedSpeech, encode_tagged, word_tags, words
from sslm_lab.data.tokenizers import TextTokenizer
from sslm_lab.eval_mode import evaluating


def _check_passage(passage: str) -> str:
    if not isinstance(passage, str) or not passage.strip():
        raise invalid("passage", passage, "a passage with some text")
    return passage


def genre_probabilities(
    passage: str,
    tokenizer: TextTokenizer,
    classifier: nn.Module,
    genres: Sequence[str],
    max_tokens: int,
    max_chunks: int = 1,
) -> dict[str, float]:
    """genre -> probability from a sequence classifier ([CLS] + the first pieces).

    The passage is cut to `max_tokens` pieces, [CLS] included, as in training. With
    max_chunks > 1 it is read as a trained passage of chunks is: up to `max_chunks`
    chunks of max_tokens - 1 pieces, each with its [CLS], the last one padded, given to
    the classifier as (1, chunks, max_tokens) with their attention mask.
    """
    check_int("max_tokens", max_tokens, low=2)
    check_int("max_chunks", max_chunks, low=1)
    pieces = tokenizer.encode(_check_passage(passage))
    device = next(classifier.parameters()).device
    if max_chunks == 1:
        inputs: tuple = (torch.tensor([[tokenizer.cls_id, *pieces][:max_tokens]], device=device),)
    else:
        step = max_tokens - 1
        rows = [
            [tokenizer.cls_id, *pieces[start : start + step]]
            for start in range(0, max(len(pieces), 1), step)
        ][:max_chunks]
        ids = torch.tensor([row + [tokenizer.pad_id] * (max_tokens - len(row)) for row in rows])
        mask = torch.tensor([[1] * len(row) + [0] * (max_tokens - len(row)) for row in rows])
        inputs = (ids[None].to(device), mask[None].to(device))
    with evaluating(classifier):
        logits = classifier(*inputs)  # (1, genres)
    if logits.shape != (1, len(genres)):
        raise invalid(
            "genres", list(genres), f"one name per output of the classifier {tuple(logits.shape)}"
        )
    probabilities = logits.float().softmax(-1)[0].tolist()
    return dict(zip(genres, probabilities, strict=True))


def tag_passage(
    passage: str, tokenizer: TextTokenizer, tagger: nn.Module, max_tokens: int
) -> list[tuple[str, str]]:
    """(word, BIO tag) for each word of the passage that fits into `max_tokens` pieces."""
    tokens = words(_check_passage(passage))
    row = TaggedSpeech("", "", tokens, ["O"] * len(tokens), [i == 0 for i in range(len(tokens))])
    encoded = encode_tagged([row], tokenizer, max_tokens)
    device = next(tagger.parameters()).device
    with evaluating(tagger):
        logits = tagger(encoded.ids.to(device), encoded.attention_mask.to(device))
    tags = word_tags(logits.argmax(-1).cpu(), encoded.labels, encoded.words_kept)[0]
    return list(zip(tokens[: len(tags)], tags, strict=True))


def highlight_names(tagged: Sequence[tuple[str, str]]) -> str:
    """HTML of the tagged words, every word of a PER entity in a <mark>."""
    parts = []
    for index, (word, tag) in enumerate(tagged):
        space = "" if index == 0 or not word[0].isalnum() else " "
        text = html.escape(word)
        parts.append(space + (f"<mark>{text}</mark>" if tag != "O" else text))
    return "".join(parts)


def passage_report(
    passage: str,
    tokenizer: TextTokenizer,
    models: Mapping[str, tuple[nn.Module, nn.Module]],
    genres: Sequence[str],
    max_tokens: int,
    max_chunks: int = 1,
) -> list[dict]:
    """For each name -> (genre classifier, name tagger): its probabilities and its names.

    Each entry: {"model", "probabilities" (genre -> p), "tagged" [(word, tag)],
    "names" [the words tagged as names]}. The tagger reads the first `max_tokens`
    pieces; the classifier up to `max_chunks` chunks (see `genre_probabilities`).
    """
    if not models:
        raise invalid("models", dict(models), "at least one (classifier, tagger) pair")
    report = []
    for name, (classifier, tagger) in models.items():
        tagged = tag_passage(passage, tokenizer, tagger, max_tokens)
        report.append(
            {
                "model": name,
                "probabilities": genre_probabilities(
                    passage, tokenizer, classifier, genres, max_tokens, max_chunks
                ),
                "tagged": tagged,
                "names": [word for word, tag in tagged if tag != "O"],
            }
        )
    return report


def report_html(report: Sequence[dict]) -> str:
    """A table: one row per model, its genre probabilities and the passage, names marked."""
    genres = list(report[0]["probabilities"]) if report else []
    head = "".join(f"<th>{html.escape(g)}</th>" for g in genres)
    rows = []
    for entry in report:
        cells = "".join(f"<td>{entry['probabilities'][g]:.2f}</td>" for g in genres)
        passage = highlight_names(entry["tagged"])
        rows.append(f"<tr><td>{html.escape(entry['model'])}</td>{cells}<td>{passage}</td></tr>")
    return f"<table><tr><th>model</th>{head}<th>names tagged</th></tr>" + "".join(rows) + "</table>"


def passage_explorer(
    tokenizer: TextTokenizer,
    models: Mapping[str, tuple[nn.Module, nn.Module]],
    genres: Sequence[str],
    max_tokens: int,
    passage: str,
    max_chunks: int = 1,
) -> widgets.VBox:
    """A text box and the `report_html` of `passage_report` for what is typed in it."""
    box = widgets.Textarea(value=passage, layout=widgets.Layout(width="95%", height="6em"))
    output = widgets.HTML()

    def show(change: dict | None = None) -> None:
        if not box.value.strip():
            output.value = "<i>type a passage</i>"
            return
        report = passage_report(box.value, tokenizer, models, genres, max_tokens, max_chunks)
        output.value = report_html(report)

    box.observe(show, names="value")
    show()
    return widgets.VBox([box, output])
