"""The data layer: corpora, verified caches, tokenizers and datasets.

data_dir()                      where caches live ($SSLM_DATA_DIR, data/, ~/.cache)
load_shakespeare() -> [Work]    42 works, fetched once, sha256-verified every call
read_work(work) / corpus_text(split=None) / lm_text('train' | 'val')
SPLITS / works_in_split(split)  train/val/test split by work, every genre in each
load_digits_split(split)        sklearn's 8×8 digits as tensors, stratified split
char_tokenizer() / bpe_tokenizer(vocab_size)   one interface, exact round trip
LMBlocks / LinePairs / LabelledPassages        torch datasets
make_language() / forward_backward(...)        a language from a known HMM (hidden classes,
                                               dialects) with its exact Bayes optima
prepare_data() / cache_status()                fill caches / report on them
"""

from sslm_lab.data.cache import DATA_DIR_ENV_VAR, data_dir, sha256_file
from sslm_lab.data.datasets import LabelledPassages, LinePairs, LMBlocks, pad_batch
from sslm_lab.data.digits import DIGIT_SPLITS, augment_digits, load_digits_split
from sslm_lab.data.hmm_language import (
    BayesOptimum,
    HMMLanguage,
    LanguageSample,
    Posteriors,
    WordTokenizer,
    bayes_optimum,
    forward_backward,
    make_language,
    masked_word_log_probs,
    pretraining_ids,
)
from sslm_lab.data.prepare import DEFAULT_BPE_VOCAB_SIZES, cache_status, prepare_data
from sslm_lab.data.shakespeare import (
    GENRES,
    LM_SPLITS,
    LM_TRAIN_FRACTION,
    SPLITS,
    WORK_SEPARATOR,
    CorpusError,
    Work,
    corpus_dir,
    corpus_problems,
    corpus_text,
    how_to_place_by_hand,
    lm_split_boundary,
    lm_text,
    load_shakespeare,
    read_work,
    works_in_split,
)
from sslm_lab.data.tokenizers import (
    DEFAULT_BPE_VOCAB_SIZE,
    MAX_BPE_VOCAB_SIZE,
    MIN_BPE_VOCAB_SIZE,
    SPECIAL_TOKENS,
    BPETokenizer,
    CharTokenizer,
    TextTokenizer,
    bpe_tokenizer,
    char_tokenizer,
    check_bpe_vocab_size,
    train_bpe,
)

__all__ = [
    "DATA_DIR_ENV_VAR",
    "DEFAULT_BPE_VOCAB_SIZE",
    "DEFAULT_BPE_VOCAB_SIZES",
    "DIGIT_SPLITS",
    "GENRES",
    "LM_SPLITS",
    "LM_TRAIN_FRACTION",
    "MAX_BPE_VOCAB_SIZE",
    "MIN_BPE_VOCAB_SIZE",
    "SPECIAL_TOKENS",
    "SPLITS",
    "WORK_SEPARATOR",
    "BPETokenizer",
    "BayesOptimum",
    "CharTokenizer",
    "CorpusError",
    "HMMLanguage",
    "LMBlocks",
    "LabelledPassages",
    "LanguageSample",
    "LinePairs",
    "Posteriors",
    "TextTokenizer",
    "WordTokenizer",
    "Work",
    "augment_digits",
    "bayes_optimum",
    "bpe_tokenizer",
    "cache_status",
    "char_tokenizer",
    "check_bpe_vocab_size",
    "corpus_dir",
    "corpus_problems",
    "corpus_text",
    "data_dir",
    "forward_backward",
    "how_to_place_by_hand",
    "lm_split_boundary",
    "lm_text",
    "load_digits_split",
    "load_shakespeare",
    "make_language",
    "masked_word_log_probs",
    "pad_batch",
    "prepare_data",
    "pretraining_ids",
    "read_work",
    "sha256_file",
    "train_bpe",
    "works_in_split",
]
