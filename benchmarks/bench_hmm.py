"""Exact inference on the known language: sslm_lab's forward-backward beside hmmlearn's.

`sslm_lab.data.hmm_language.forward_backward` computes every exact quantity at once for a
batch of sequences (likelihood per dialect and over dialects, dialect posterior, class
posterior, p(h_t | x_<t) and log p(x_t | x_<t)); `masked_word_log_probs` is a second pass
with [MASK] positions marginalised. hmmlearn (CategoricalHMM with fixed matrices) is
timed on the same sequences two ways: one model of S states per dialect (`score` and
`predict_proba`, what sslm_lab computes per dialect), and one model of K·S states whose
transitions are block-diagonal (a dialect is a block of states never left), which gives
the posteriors over dialects directly. The numbers are compared as they are timed.
hmmlearn comes with the test extras (`pip install -e .[test]`).

    python benchmarks/bench_hmm.py               # a few seconds: the timing table
    python benchmarks/bench_hmm.py --quality     # + the optima and baselines at the
                                                 #   defaults, and the ambiguity sweep (~1 min)

Time: median of `--repeats` runs for sslm_lab, one run for hmmlearn (slow enough to be
steady), wall clock and CPU; `--threads` sets torch's threads (hmmlearn runs on one). On a
shared or busy machine `--threads 1` gives steadier numbers. Writes
benchmarks/results/hmm.json. The sequences of one dialect can be impossible under
another's grammar (a transition only that dialect has): hmmlearn's per-dialect totals are
then -inf, so they are compared on each dialect's own sequences.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import torch
from hmmlearn.hmm import CategoricalHMM

from sslm_lab.data import hmm_language as hl

DEFAULT_OUT = Path(__file__).parent / "results" / "hmm.json"


def timed(fn: Callable[[], Any], repeats: int) -> tuple[dict[str, float], Any]:
    """Median wall and CPU seconds of `repeats` calls, and the last result. CPU time (all
    threads of this process) is steadier than wall time when other processes share the
    cores; with one thread it is the wall time an idle machine would show."""
    wall, cpu, result = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"wall": statistics.median(wall), "cpu": statistics.median(cpu)}, result


def hmmlearn_model(start: np.ndarray, transitions: np.ndarray, emissions: np.ndarray):
    model = CategoricalHMM(n_components=len(start), init_params="", params="")
    model.n_features = emissions.shape[1]
    model.startprob_, model.transmat_, model.emissionprob_ = start, transitions, emissions
    return model


def speed(language: hl.HMMLanguage, count: int, repeats: int) -> dict[str, Any]:
    sample = language.sample(count, seed=1)
    mask = torch.rand(sample.words.shape, generator=torch.Generator().manual_seed(0)) < 0.15
    x, lengths = sample.words.reshape(-1, 1).numpy(), [language.length] * count
    K, S = language.num_dialects, language.num_classes
    start, emissions = language.start.numpy(), language.emissions.numpy()
    per_dialect = [hmmlearn_model(start, a, emissions) for a in language.transitions.numpy()]
    joint = hmmlearn_model(
        (language.dialect_prior[:, None] * language.start).reshape(-1).numpy(),
        scipy.linalg.block_diag(*language.transitions.numpy()),
        np.tile(emissions, (K, 1)),
    )

    ours_s, posteriors = timed(lambda: hl.forward_backward(language, sample.words), repeats)
    masked_s, _ = timed(lambda: hl.masked_word_log_probs(language, sample.words, mask), repeats)
    with warnings.catch_warnings():  # a sequence of another dialect may be impossible here
        warnings.simplefilter("ignore", RuntimeWarning)
        dialect_score_s, _ = timed(lambda: [m.score(x, lengths) for m in per_dialect], 1)
        dialect_proba_s, _ = timed(lambda: [m.predict_proba(x, lengths) for m in per_dialect], 1)
    joint_score_s, total = timed(lambda: joint.score(x, lengths), 1)
    joint_proba_s, pairs = timed(lambda: joint.predict_proba(x, lengths), 1)
    pairs = pairs.reshape(count, language.length, K, S)
    own = [sample.dialects == k for k in range(K)]  # each dialect's model on its own sequences
    differences = {
        "log_likelihood_total": abs(total - posteriors.log_likelihood.sum().item()),
        "dialect_log_likelihood_totals": max(
            abs(
                model.score(sample.words[own[k]].reshape(-1, 1).numpy(), lengths[: own[k].sum()])
                - posteriors.dialect_log_likelihood[own[k], k].sum().item()
            )
            for k, model in enumerate(per_dialect)
        ),
        "class_posterior": float(np.abs(pairs.sum(2) - posteriors.class_posterior.numpy()).max()),
        "dialect_posterior": float(
            np.abs(pairs[:, 0].sum(-1) - posteriors.dialect_posterior.numpy()).max()
        ),
    }
    rows = [
        ("sslm_lab forward_backward (all quantities)", ours_s),
        ("sslm_lab masked_word_log_probs (15 % [MASK])", masked_s),
        (f"hmmlearn score, {K} models of {S} states (p(x | k))", dialect_score_s),
        (f"hmmlearn predict_proba, {K} models of {S} states", dialect_proba_s),
        (f"hmmlearn score, 1 model of {K * S} states (p(x))", joint_score_s),
        (f"hmmlearn predict_proba, 1 model of {K * S} states", joint_proba_s),
    ]
    tokens = count * language.length
    print(f"\n{count:,} sequences of {language.length} tokens ({tokens:,} tokens)")
    print(f"{'':60} {'wall s':>7} {'CPU s':>7} {'k tokens/CPU s':>15}")
    for name, seconds in rows:
        print(
            f"{name:60} {seconds['wall']:7.3f} {seconds['cpu']:7.3f}"
            f" {tokens / seconds['cpu'] / 1e3:15.0f}"
        )
    print("largest difference from hmmlearn:")
    for name, value in differences.items():
        print(f"  {name:32} {value:.2e}")
    return {
        "sequences": count,
        "seconds": {name: seconds for name, seconds in rows},
        "max_abs_difference_from_hmmlearn": differences,
    }


def figures(language: hl.HMMLanguage, count: int) -> dict[str, float]:
    """The optima and the baselines on `count` held-out sequences (train: another `count`)."""
    test, train = language.sample(count, seed=1), language.sample(count, seed=2)
    V, S = language.num_words, language.num_classes
    optimum = hl.bayes_optimum(language, test)
    table = hl.most_frequent_class(test.words, test.classes, V, S)  # fitted on all labels
    return {
        "bayes_tagging_accuracy": optimum.tagging_accuracy,
        "most_frequent_class_accuracy": (table[test.words] == test.classes).double().mean().item(),
        "chance_tagging_accuracy": 1 / S,
        "bayes_dialect_accuracy": optimum.dialect_accuracy,
        "bag_of_words_dialect_accuracy": hl.bag_of_words_accuracy(
            train.words, train.dialects, test.words, test.dialects, V
        ),
        "majority_dialect_accuracy": hl.majority_accuracy(train.dialects, test.dialects),
        "clm_floor_nats": optimum.clm_nats,
        "bigram_nats": hl.bigram_cross_entropy(train.words, test.words, V),  # add-1
        "unigram_nats": hl.unigram_cross_entropy(train.words, test.words, V),
        "bayes_mlm_nats": optimum.mlm_nats,
        "bayes_mlm_accuracy": optimum.mlm_accuracy,
    }


def quality(count: int, sweep_count: int) -> dict[str, Any]:
    result = {"defaults": figures(hl.make_language(), count), "ambiguity_sweep": []}
    print(f"\nAt the defaults, {count:,} held-out sequences:")
    for name, value in result["defaults"].items():
        print(f"  {name:32} {value:.3f}")
    print(f"\nAmbiguity sweep ({sweep_count:,} held-out sequences; other knobs at the defaults)")
    header = "ambiguity share  Bayes tag  most-freq  Bayes dialect  BoW dialect  floor  bigram"
    print(header)
    for ambiguity, share in [(1, 0.8), (2, 0.8), (3, 0.8), (4, 0.8), (5, 0.8), (6, 0.8),
                             (5, 0.4), (5, 0.6), (5, 1.0)]:  # fmt: skip
        row = figures(hl.make_language(ambiguity=ambiguity, ambiguous_share=share), sweep_count)
        result["ambiguity_sweep"].append({"ambiguity": ambiguity, "share": share, **row})
        print(
            f"{ambiguity:9d} {share:5.1f} {row['bayes_tagging_accuracy']:10.3f}"
            f" {row['most_frequent_class_accuracy']:10.3f} {row['bayes_dialect_accuracy']:14.3f}"
            f" {row['bag_of_words_dialect_accuracy']:12.3f} {row['clm_floor_nats']:6.3f}"
            f" {row['bigram_nats']:7.3f}"
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="sequences to time")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--quality", action="store_true", help="also the optima and baselines")
    parser.add_argument("--quality-count", type=int, default=20_000)
    parser.add_argument("--sweep-count", type=int, default=4000)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    language = hl.make_language()
    print(f"make_language() defaults: {language.settings}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor()}")
    record: dict[str, Any] = {
        "settings": language.settings,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "speed": speed(language, args.count, args.repeats),
    }
    if args.quality:
        record["quality"] = quality(args.quality_count, args.sweep_count)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
