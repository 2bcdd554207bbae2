import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import BertTokenizerFast, DataCollatorForLanguageModeling

from sslm_lab.checks import ArgumentError
from sslm_lab.masking import (
    IGNORE_INDEX,
    STRATEGIES,
    causal_mask,
    mask_tokens,
    padding_mask,
    select_tokens,
    span_lengths,
    word_ids_from_pieces,
)

VOCAB, MASK, PAD, CLS, SEP = 1000, 3, 0, 1, 2
SPECIALS = (PAD, CLS, SEP, MASK)


def batch(rows: int = 64, seq: int = 128, seed: int = 0) -> torch.Tensor:
    ids = torch.randint(4, VOCAB, (rows, seq), generator=torch.Generator().manual_seed(seed))
    ids[:, 0], ids[:, -1] = CLS, SEP
    ids[: rows // 2, -20:] = PAD  # half the rows padded
    return ids


def masked(strategy="token", rate=0.15, seed=0, **kwargs):
    ids = batch()
    out, labels = mask_tokens(
        ids,
        mask_id=MASK,
        vocab_size=VOCAB,
        special_ids=SPECIALS,
        mask_rate=rate,
        strategy=strategy,
        generator=torch.Generator().manual_seed(seed),
        **kwargs,
    )
    return ids, out, labels


def test_proportions_match_bert_within_statistical_tolerance() -> None:
    ids, out, labels = masked()
    ordinary = ~torch.isin(ids, torch.tensor(SPECIALS))
    selected = labels != IGNORE_INDEX
    n = int(ordinary.sum())
    rate = selected.sum() / n
    assert abs(rate - 0.15) < 4 * (0.15 * 0.85 / n) ** 0.5  # four standard errors
    k = int(selected.sum())
    to_mask = (out == MASK) & selected
    unchanged = (out == ids) & selected
    for observed, expected in ((to_mask.sum() / k, 0.8), (unchanged.sum() / k, 0.1)):
        assert abs(observed - expected) < 4 * (expected * (1 - expected) / k) ** 0.5
    # random replacements stay in the ordinary vocabulary
    replaced = selected & ~to_mask & ~unchanged
    assert not torch.isin(out[replaced], torch.tensor(SPECIALS)).any()


def test_specials_and_padding_never_selected_and_labels_elsewhere_ignored() -> None:
    for strategy, extra in (("token", {}), ("span", {})):
        ids, out, labels = masked(strategy, rate=0.5, **extra)
        special = torch.isin(ids, torch.tensor(SPECIALS))
        assert (labels[special] == IGNORE_INDEX).all()
        assert (out[special] == ids[special]).all()
        assert (labels[~special & (labels != IGNORE_INDEX)] == ids[labels != IGNORE_INDEX]).all()


def test_deterministic_under_a_seed() -> None:
    _, out_a, labels_a = masked(seed=3)
    _, out_b, labels_b = masked(seed=3)
    _, out_c, _ = masked(seed=4)
    assert torch.equal(out_a, out_b) and torch.equal(labels_a, labels_b)
    assert not torch.equal(out_a, out_c)


def test_whole_words_are_never_split() -> None:
    ids = batch(rows=16, seq=64)
    word_ids = torch.arange(64).div(3, rounding_mode="floor").expand(16, 64)  # 3 pieces a word
    selected = select_tokens(
        ids,
        0.3,
        SPECIALS,
        strategy="whole_word",
        word_ids=word_ids,
        generator=torch.Generator().manual_seed(0),
    )
    special = torch.isin(ids, torch.tensor(SPECIALS))
    for row in range(16):
        for word in word_ids[row].unique():
            pieces = (word_ids[row] == word) & ~special[row]
            values = selected[row][pieces]
            assert values.all() or not values.any(), f"word {int(word)} in row {row} was split"
    assert 0.2 < selected[~special].float().mean() < 0.4


def test_span_lengths_are_geometric_and_cover_the_budget() -> None:
    ids = batch(rows=32, seq=256)
    selected = select_tokens(
        ids, 0.15, SPECIALS, strategy="span", generator=torch.Generator().manual_seed(0)
    )
    special = torch.isin(ids, torch.tensor(SPECIALS))
    per_row = selected.sum(1).float() / (~special).sum(1).float()
    assert torch.allclose(per_row, torch.full_like(per_row, 0.15), atol=0.01)
    # runs of consecutive selections are longer than independent tokens would give
    runs = []
    for row in selected:
        length = 0
        for value in row.tolist() + [False]:
            if value:
                length += 1
            elif length:
                runs.append(length)
                length = 0
    assert 2.0 < sum(runs) / len(runs) < 4.5


def test_distribution_agrees_with_transformers_collator() -> None:
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
    vocab.update({f"w{i}": i + 5 for i in range(195)})
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    hf = BertTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    ids = torch.randint(5, 200, (256, 64), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    collator = DataCollatorForLanguageModeling(hf, mlm_probability=0.15)
    hf_out = collator.torch_mask_tokens(ids.clone())
    ours = mask_tokens(
        ids,
        mask_id=4,
        vocab_size=200,
        special_ids=range(5),
        generator=torch.Generator().manual_seed(0),
    )
    for out, labels in (hf_out, ours):
        selected = labels != IGNORE_INDEX
        k = int(selected.sum())
        assert abs(k / ids.numel() - 0.15) < 0.01
        assert abs(((out == 4) & selected).sum() / k - 0.8) < 0.02
        assert abs(((out == ids) & selected).sum() / k - 0.1) < 0.02


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mask_rate": 0.0}, r"mask_rate=0.0 .* \(0, 1\)"),
        ({"mask_rate": 1.2}, r"mask_rate=1.2 .* \(0, 1\)"),
        ({"strategy": "sentence"}, r"strategy='sentence' .* token, whole_word, span"),
        ({"strategy": "whole_word"}, r"needs word_ids"),
        ({"mask_fraction": 0.8, "random_fraction": 0.3}, r"exceeds 1"),
    ],
)
def test_bad_settings_are_named(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        mask_tokens(batch(4, 8), mask_id=MASK, vocab_size=VOCAB, special_ids=SPECIALS, **kwargs)


def test_causal_and_padding_masks() -> None:
    assert torch.equal(causal_mask(3).long(), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]]))
    assert torch.equal(padding_mask(torch.tensor([2, 3]), 3), torch.tensor([[1, 1, 0], [1, 1, 1]]))


def test_word_ids_from_pieces_groups_the_pieces_of_each_word() -> None:
    pieces = ["[CLS]", "[SEP]", "G", "uild", " and", " R", "os", ",", "\n", "To", " be"]
    #          0        1        2    3       4       5     6     7    8     9     10
    ids = torch.tensor([[0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1], [9, 6, 0, 9, 10, 8, 8, 1, 1, 1, 1]])
    words = word_ids_from_pieces(ids, pieces, special_ids=[0, 1])
    # [CLS] | Guild | and | Ros, | \n | To | be | [SEP]
    assert words[0].tolist() == [0, 1, 1, 2, 3, 3, 3, 4, 5, 6, 7]
    # Toos | [CLS] | To | be | \n | \n | [SEP] [SEP] [SEP] [SEP]: specials stand alone
    assert words[1].tolist() == [0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    without_specials = word_ids_from_pieces(ids[:1, 1:], pieces)  # "G" now opens the row
    assert without_specials[0].tolist() == [0, 0, 1, 2, 2, 2, 3, 4, 5, 5]


def test_word_ids_from_a_real_bpe_tokenizer_give_whole_words() -> None:
    from sslm_lab.data import bpe_tokenizer

    tokenizer = bpe_tokenizer(512)
    text = "Guildenstern and Rosencrantz, be gone!\nTo be, or not to be"
    ids = torch.tensor([tokenizer.encode(text)])
    pieces = [tokenizer.id_to_token(i) for i in range(tokenizer.vocab_size)]
    words = word_ids_from_pieces(ids, pieces)[0]
    assert len(ids[0]) > len(text.split()), "the test needs words cut into several pieces"
    joined = [
        "".join(pieces[t] for t, w in zip(ids[0].tolist(), words.tolist(), strict=True) if w == k)
        for k in range(int(words.max()) + 1)
    ]
    assert [word.strip() for word in joined if word.strip()] == text.split()
    selected = select_tokens(
        ids,
        0.5,
        [],
        strategy="whole_word",
        word_ids=words[None],
        generator=torch.Generator().manual_seed(0),
    )
    for k in range(int(words.max()) + 1):
        chosen = selected[0][words == k]
        assert chosen.all() or not chosen.any()


def test_word_ids_from_pieces_refuses_a_short_vocabulary() -> None:
    with pytest.raises(ValueError, match=r"pieces has 2 entries but input_ids holds id 5"):
        word_ids_from_pieces(torch.tensor([[0, 5]]), ["a", "b"])


# ---------------------------------------------------------------- fixed bugs and properties


def test_span_masking_realises_low_rates_on_short_rows() -> None:
    # 30 candidates per row at mask_rate 0.01 is 0.3 tokens: the budget is rounded up or
    # down at random, so the rate is right on average (rounding up always gave 3.3 %).
    ids = batch(rows=2000, seq=32)
    selected = select_tokens(
        ids, 0.01, SPECIALS, strategy="span", generator=torch.Generator().manual_seed(0)
    )
    special = torch.isin(ids, torch.tensor(SPECIALS))
    realised = float(selected[~special].float().mean())
    assert abs(realised - 0.01) < 0.002, realised


def test_span_lengths_follow_spanbert_truncated_geometric() -> None:
    lengths = span_lengths(200_000, generator=torch.Generator().manual_seed(0))
    assert int(lengths.min()) == 1 and int(lengths.max()) == 10
    p = 0.2
    weights = torch.tensor([p * (1 - p) ** (k - 1) for k in range(1, 11)], dtype=torch.float64)
    expected = weights / weights.sum()
    observed = torch.bincount(lengths, minlength=11)[1:].double() / len(lengths)
    assert torch.allclose(observed, expected, atol=0.004), (observed, expected)
    assert abs(float(lengths.double().mean()) - 3.797) < 0.02  # SpanBERT: 3.8 on average


def test_mask_fraction_one_hides_every_selected_token() -> None:
    ids, out, labels = masked(mask_fraction=1.0, random_fraction=0.0)
    selected = labels != IGNORE_INDEX
    assert selected.any() and bool((out[selected] == MASK).all())
    assert torch.equal(out[~selected], ids[~selected])


def test_wordpiece_words_come_from_the_continuation_prefix() -> None:
    pieces = ["[CLS]", "[SEP]", "good", "ros", "##enc", "##rantz", "my", "lord", "##s"]
    ids = torch.tensor([[0, 2, 3, 4, 5, 6, 7, 8, 1]])
    words = word_ids_from_pieces(ids, pieces, special_ids=[0, 1], continuation_prefix="##")
    assert words.tolist() == [[0, 1, 2, 2, 2, 3, 4, 4, 5]]
    with pytest.raises(ArgumentError, match="pass continuation_prefix='##'"):
        word_ids_from_pieces(ids, pieces, special_ids=[0, 1])


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(0.01, 0.99),
    strategy=st.sampled_from(STRATEGIES),
    special_count=st.integers(1, 6),
    seed=st.integers(0, 2**31 - 1),
)
def test_masking_properties_for_any_rate_strategy_and_special_set(
    rate, strategy, special_count, seed
) -> None:
    generator = torch.Generator().manual_seed(seed)
    vocab = 50
    specials = torch.randperm(vocab, generator=generator)[:special_count].tolist()
    ids = torch.randint(0, vocab, (64, 48), generator=generator)
    words = torch.arange(48).repeat(64, 1) // 2 if strategy == "whole_word" else None
    out, labels = mask_tokens(
        ids,
        mask_id=specials[0],
        vocab_size=vocab,
        special_ids=specials,
        mask_rate=rate,
        strategy=strategy,
        word_ids=words,
        generator=generator,
    )
    special = torch.isin(ids, torch.tensor(specials))
    selected = labels != IGNORE_INDEX
    assert not bool((selected & special).any()), "a special token was selected"
    assert torch.equal(labels[selected], ids[selected]), "a label is not the original token"
    assert torch.equal(out[~selected], ids[~selected]), "an unselected token changed"
    replaced = out[selected][out[selected] != ids[selected]]
    ordinary = ~torch.isin(replaced, torch.tensor(specials)) | (replaced == specials[0])
    assert bool(ordinary.all()), "a random replacement is a special token"
    candidates = int((~special).sum())
    realised = int(selected.sum()) / candidates
    # Token and word draws are independent per unit; spans may overlap and fall short of
    # nothing but specials, so the tolerance is four binomial standard deviations wide
    # (in words for whole-word masking, two tokens each) plus a little for span overlaps.
    units = candidates / 2 if strategy == "whole_word" else candidates
    tolerance = 4 * (rate * (1 - rate) / units) ** 0.5 + (0.02 if strategy == "span" else 0)
    assert abs(realised - rate) < tolerance, (realised, rate)
    if int(selected.sum()) >= 400:
        shown_mask = float((out[selected] == specials[0]).float().mean())
        assert abs(shown_mask - 0.8) < 0.1
