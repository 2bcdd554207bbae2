"""What each notebook records, checked: the papermill cases and their check functions.

Used by test_notebooks.py (papermill with a non-default parameter set) and by
test_exercises.py, whose grading runs every notebook's student copy with the default
`smoke` parameters; both check the records the run wrote.
"""

from __future__ import annotations

from collections.abc import Callable


def check_tour(metrics: dict, params: dict) -> None:
    assert metrics["works"] == 42
    assert metrics["trigram_bpc"] < metrics["bigram_bpc"] < metrics["unigram_bpc"]
    assert 2.0 < metrics["trigram_bpc"] < 3.5, "trigram bits per char far from the known ~2.9"
    expected_vocab = params.get("bpe_vocab_size") or 512  # the smoke profile's size
    assert metrics["bpe_vocab_size"] == expected_vocab
    assert metrics["seed"] == params.get("seed", 0)


def check_attention(metrics: dict, params: dict) -> None:
    assert metrics["seed"] == params.get("seed", 0)
    assert metrics["head_dim"] == 8 // params.get("n_head", 2)  # the notebook's n_embd = 8
    assert metrics["saturation_samples"] == (params.get("saturation_samples") or 64)  # smoke: 64
    for name in ("hand_vs_package", "explicit_vs_fast", "torch_mha"):
        assert metrics[f"{name}_max_abs_error"] < 1e-5, name
    assert metrics["minilm_hidden_max_abs_error"] < 1e-4
    assert metrics["minilm_attention_max_abs_error"] < 1e-4
    assert metrics["permutation_error_without_positions"] < 1e-5
    assert metrics["permutation_error_with_positions"] > 1e-2
    assert metrics["max_weight_unscaled_largest_dk"] > 0.9, "no saturation without √d_k"
    assert metrics["max_weight_scaled_largest_dk"] < 0.5, "saturation despite √d_k"
    assert (metrics["previous_token_layer"], metrics["previous_token_head"]) == (0, 2)
    assert metrics["previous_token_weight"] > 0.9


def check_autoregressive(metrics: dict, params: dict) -> None:
    assert metrics["seed"] == params.get("seed", 0)
    steps = params.get("max_steps") or 150  # the smoke profile's steps
    assert metrics["char_steps"] == metrics["bpe_steps"] == steps
    assert metrics["bpe_vocab_size"] == (params.get("bpe_vocab_size") or 512)
    assert metrics["dropout_rate"] == (params.get("dropout_rate") or 0.3)
    assert abs(metrics["trigram_bpc"] - 2.94) < 0.01, "not 00_tour's trigram baseline"
    assert metrics["char_val_bpc"] < metrics["unigram_bpc"], "char model lost to the unigram"
    assert metrics["bpe_val_bpc"] < metrics["unigram_bpc"], "BPE model lost to the unigram"
    assert metrics["kv_cache_same_tokens"] is True
    assert metrics["entropy_highest_temperature_bits"] > metrics["entropy_lowest_temperature_bits"]
    assert metrics["passages"] == 16 and metrics["dropout_seeds"] == 2  # the smoke profile's
    # the trigram on the passages is the trigram on the whole val text, give or take (smoke
    # seed 0: 2.939 against 2.941)
    assert abs(metrics["trigram_passage_bpc"] - metrics["trigram_bpc"]) < 0.3
    verdicts = ("better", "worse", "not established")
    for key in (
        "BPE_vs_char",
        "char_vs_trigram",
        "BPE_vs_trigram",
        "dropout_vs_none",
        "early_stopping_vs_dropout",
        "gap",
        "none_vs_bigram",
        "dropout_vs_bigram",
        "early_vs_bigram",
    ):
        assert metrics[f"verdict_{key}"] in verdicts, key
    for key in ("genre_accuracy", "genre_accuracy_random_init", "genre_majority"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["genre_verdict"] in verdicts


def check_masked_lm(metrics: dict, params: dict) -> None:
    assert metrics["seed"] == params.get("seed", 0)
    assert metrics["steps"] == (params.get("max_steps") or 60)  # the smoke profile's steps
    assert metrics["strategy"] == params.get("strategy", "token")
    assert metrics["mask_rate"] == params.get("mask_rate", 0.15)
    assert metrics["bpe_vocab_size"] == 512
    assert metrics["nsp_ablation"] is params.get("nsp_ablation", True)  # smoke runs a tiny one
    assert abs(metrics["realised_mask_rate"] - metrics["mask_rate"]) < 0.05
    assert abs(metrics["realised_mask_share"] - 0.8) < 0.1
    assert 0.03 < metrics["unigram_accuracy"] < 0.15, "the most frequent token is about 7 %"
    assert metrics["val_mlm_loss"] < 6.24 - 0.5, "not even the frequencies: ln 512 = 6.24"
    # thousands of pronoun gaps in the val windows: 4,331 with the smoke tokenizer
    assert metrics["cloze_probes"] > 1000
    verdicts = ("better", "worse", "not established")
    for key in (
        "accuracy_vs_unigram",
        "loss_vs_unigram",
        "random_positions_vs_unigram",
        "visible_vs_hidden",
        "case_probe",
        "gender_probe",
    ):
        assert metrics[f"verdict_{key}"] in verdicts, key
    for key in ("genre_accuracy", "genre_accuracy_random_init", "genre_majority"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["genre_verdict"] in verdicts
    ran_ablation = params.get("nsp_ablation", True)  # smoke runs a tiny one
    for key in ("loss", "nsp"):
        assert (metrics.get(f"verdict_nsp_ablation_{key}") in verdicts) is ran_ablation, key


def check_vae(metrics: dict, params: dict) -> None:
    assert metrics["seed"] == params.get("seed", 0)
    assert metrics["steps_2d"] == params.get("max_steps", 20)  # the smoke profile's steps
    assert metrics["sentence_steps"] == params.get("sentence_steps", 4)
    assert metrics["iwae_samples"] == params.get("iwae_samples", 5)
    assert metrics["free_bits"] == params.get("free_bits", 0.25)
    assert metrics["word_dropout"] == params.get("word_dropout", 0.4)
    assert abs(metrics["kl_closed_form"] - metrics["kl_monte_carlo"]) < 0.05
    uniform = 181.33  # 64 ln 17: equal logits over the 17 grey levels, nats per image
    assert 60 < metrics["independent_nll"] < uniform, "independent pixels far from ~108 nats"
    assert metrics["mixture_nll"] < metrics["independent_nll"], "EM's mixture lost to one component"
    assert metrics["iwae_nll_large"] <= -metrics["elbo_large"] + 1e-3, "IWAE below the ELBO"
    for key in ("iwae_nll_2d", "iwae_nll_large"):
        assert 0 < metrics[key] < uniform + 5, key
    for name in ("plain", "annealing", "free_bits", "word_dropout"):
        assert 0 <= metrics[f"{name}_active_units"] <= 4, name  # the smoke latent has 4
        assert metrics[f"{name}_kl"] >= 0 and metrics[f"{name}_nll"] > 0, name
    assert metrics["best_remedy"] in ("annealing", "free_bits", "word_dropout")
    assert 0 < metrics["lm_nll"] < 94, "worse than 15 uniform guesses among 512 tokens (93.6)"
    verdicts = ("better", "worse", "not established")
    for name in ("plain", "annealing", "free_bits", "word_dropout"):
        assert metrics[f"{name}_code_use"] in verdicts and metrics[f"{name}_vs_lm"] in verdicts
    for name in ("annealing", "free_bits", "word_dropout"):
        assert metrics[f"{name}_vs_plain"] in verdicts, name
    assert metrics["vae_vs_independent"] in verdicts and metrics["vae_vs_mixture"] in verdicts
    assert metrics["probe_seeds"] == 2  # the smoke profile's label seeds
    for key in ("genre_vae", "genre_random", "genre_majority"):
        assert 0.0 <= metrics[key] <= 1.0, key
    for key in ("vs_random", "vae_vs_majority", "random_vs_majority"):
        assert metrics[f"genre_{key}"] in verdicts, key
    assert metrics["wall_seconds"] < 120


def check_gan(metrics: dict, params: dict) -> None:
    assert metrics["seed"] == params.get("seed", 0)
    assert metrics["generator_loss"] == params.get("generator_loss", "non_saturating")
    assert metrics["gan_steps"] == params.get("gan_steps", 40)  # the smoke profile's steps
    assert metrics["electra_steps"] == params.get("electra_steps", 10)
    assert metrics["classifier_test_accuracy"] > 0.8, "60 full-batch steps already reach ~98 %"
    assert 0 < metrics["real_frechet_distance"] < 20, "two sets of real digits must be close"
    for run in ("non_saturating", "minimax", "collapse", "remedy"):
        assert 0 <= metrics[f"{run}_classes_covered"] <= 10, run
        assert 0 <= metrics[f"{run}_entropy_bits"] <= 3.33, run
        assert metrics[f"{run}_frechet_distance"] > metrics["real_frechet_distance"], run
    assert (
        metrics["minimax_early_generator_grad_norm"]
        < (metrics["non_saturating_early_generator_grad_norm"])
    ), "the minimax generator's gradient must start smaller"
    assert 0.75 < metrics["rtd_original_baseline"] < 0.95, "about 15 % of the tokens replaced"
    assert 0 <= metrics["replaced_accuracy"] <= 1 and 0 <= metrics["rtd_accuracy"] <= 1
    block, batch = 32, 16  # the smoke profile's ELECTRA sizes
    assert metrics["electra_tokens"] == metrics["electra_steps"] * batch * block
    assert metrics["electra_training_flops"] > 6 * metrics["electra_tokens"] * 10_000
    # the second ELECTRA run starts from an MLM encoder, which cost FLOPs of its own
    assert metrics["mlm_encoder_train_flops"] > 0
    assert 0.75 < metrics["scratch_rtd_original_baseline"] < 0.95
    assert 0 <= metrics["rtd_auc"] <= 1 and 0 <= metrics["scratch_rtd_auc"] <= 1
    assert metrics["replaced_caught_over_chance"] >= 0
    assert metrics["gan_seeds"] == 2 and metrics["probe_seeds"] == 2  # the smoke profile's
    verdicts = ("better", "worse", "not established")
    for key in (
        "losses_gradient",
        "losses_distance",
        "losses_entropy",
        "remedy_entropy",
        "remedy_distance",
        "balanced_vs_collapse",
        "rtd",
        "scratch_rtd",
    ):
        assert metrics[f"{key}_verdict"] in verdicts, key
    for run in ("non_saturating", "minimax", "collapse", "remedy", "main"):
        assert metrics[f"{run}_late_frechet_distance"] > metrics["real_frechet_distance"], run
    for key in ("scratch", "warm", "mlm", "random", "majority"):
        assert 0.0 <= metrics[f"genre_{key}"] <= 1.0, key
    for key in ("scratch_vs_random", "warm_vs_random", "warm_vs_mlm"):
        assert metrics[f"genre_{key}"] in verdicts, key
    for key in ("scratch", "warm", "mlm", "random"):
        assert metrics[f"genre_{key}_vs_majority"] in verdicts, key
    assert metrics["wall_seconds"] < 120


def check_fine_tuning(metrics: dict, params: dict) -> None:
    verdicts = ("better", "worse", "not established")
    assert metrics["seed"] == params.get("seed", 0)
    assert metrics["seeds"] == 2  # the smoke profile's
    assert metrics["pretrain_steps"] == params.get("pretrain_steps", 2)  # the smoke profile's
    assert metrics["finetune_steps"] == params.get("finetune_steps", 3)
    assert metrics["objectives"] == "random,mlm"
    assert metrics["budgets"] == "4"
    assert metrics["train_flops_random"] == 0.0 < metrics["train_flops_mlm"]
    # ELECTRA against MLM at equal compute: MLM gets more steps, and the FLOPs agree to
    # within half an MLM step
    mlm_steps = metrics["equal_compute_mlm_steps"]
    assert mlm_steps > metrics["equal_compute_electra_steps"] == metrics["pretrain_steps"]
    assert abs(metrics["equal_compute_flops_ratio"] - 1) <= 0.6 / mlm_steps
    for objective in ("electra", "mlm"):
        assert 0.0 <= metrics[f"equal_genre_{objective}_4"] <= 1.0
        assert 0.0 <= metrics[f"equal_pronoun_{objective}_4"] <= 1.0
    assert metrics["race_genre_4"] in verdicts and metrics["race_pronoun_4"] in verdicts
    for method in ("probe", "lora", "full"):  # the smoke profile's methods and budget
        for objective in ("random", "mlm"):
            assert 0.0 <= metrics[f"genre_{objective}_{method}_4"] <= 1.0
            assert 0.0 <= metrics[f"val_genre_{objective}_{method}_4"] <= 1.0
    for objective in ("random", "mlm"):  # chosen on val, then run over the seeds
        assert metrics[f"chosen_{objective}_4"] in ("probe", "lora", "full")
        assert 0.0 <= metrics[f"genre_chosen_{objective}_4"] <= 1.0
        assert 0.0 <= metrics[f"pronoun_{objective}_4"] <= 1.0
    assert metrics["genre_vs_random_mlm_4"] in verdicts
    assert metrics["genre_tfidf_vs_majority_4"] in verdicts
    assert metrics["names_vs_random_mlm"] in verdicts
    assert metrics["names_best_vs_capitalisation"] in verdicts
    assert metrics["pronoun_vs_random_mlm_4"] in verdicts
    assert metrics["pronoun_best_vs_bag_of_words_4"] in verdicts
    assert 0.3 < metrics["majority_accuracy"] < 0.5, "comedy is 2 of 5 test plays"
    assert 0.0 <= metrics["tfidf_4"] <= 1.0
    for baseline in ("bag_of_words", "neighbours"):  # balanced lines: one case alone is 0.5
        assert 0.0 <= metrics[f"pronoun_{baseline}_4_val"] <= 1.0
    assert metrics["names_capitalisation_f1"] > 0.0
    assert metrics["lora_merge_max_abs_error"] < 1e-4
    assert 0.0 < metrics["lora_fraction"] < 0.05
    assert metrics["not_beating_random"] in ("", "mlm")
    assert 0.0 <= metrics["minilm_zero_shot_accuracy"] <= 1.0
    assert 0.0 <= metrics["prototypes_minilm_1"] <= 1.0
    assert metrics["wall_seconds"] < 120


def check_contrastive(metrics: dict, params: dict) -> None:
    assert metrics["seed"] == params.get("seed", 0)
    assert metrics["temperature"] == params.get("temperature", 0.2)  # the smoke profile's τ
    assert metrics["simclr_steps"] == params.get("max_steps", 10)
    assert metrics["simcse_steps"] == params.get("simcse_steps", 5)
    assert metrics["study_seeds"] == 1  # the smoke profile's
    verdicts = ("better", "worse", "not established")
    for per_class in ("1", "5"):  # the smoke profile's label counts
        for key in ("simclr", "random", "pixels", "supervised"):
            assert 0.0 <= metrics[f"probe_{key}_{per_class}"] <= 1.0, key
        for other in ("random", "pixels", "supervised"):
            name = f"simclr_vs_{other}_{per_class}"
            assert metrics[f"{name}_low"] <= metrics[f"{name}_high"], name
            assert metrics[f"{name}_verdict"] in verdicts, name
    assert metrics["probe_pixels_5"] > 0.6, "logistic regression on pixels, 5 labels per class"
    assert metrics["best_tau"] in (0.1, 0.5)
    assert metrics["ablation_main_run_s_views_verdict"] in verdicts
    for name in ("simcse", "random", "minilm", "tf_idf"):
        assert 0.0 <= metrics[f"{name}_work_recall_at_1"] <= metrics[f"{name}_work_recall_at_10"]
    assert metrics["minilm_work_recall_at_10"] > 0.3, "the real MiniLM finds a line's play"
    assert metrics["simcse_work_recall_at_10_verdict"] in verdicts
    assert metrics["minilm_vs_tf_idf_work_recall_verdict"] in verdicts
    assert metrics["simcse_first_infonce"] > 0.0
    for name in ("simcse", "random"):  # the shared downstream number, 8 labels per class
        assert 0.0 <= metrics[f"genre_{name}_8"] <= 1.0, name
    assert metrics["genre_simcse_vs_random_verdict"] in verdicts
    assert 0.0 <= metrics["cpc_accuracy_k4"] <= 1.0
    assert metrics["wall_seconds"] < 120


def check_real_pretrained_model(metrics: dict, params: dict) -> None:
    assert metrics["seed"] == params.get("seed", 0)
    assert metrics["finetune_steps"] == params.get("finetune_steps", 2)  # the smoke profile's
    assert metrics["parity_max_abs_error"] < 1e-4, "MiniLM in sslm_lab differs from transformers"
    assert metrics["minilm_parameters"] == 22_565_376  # all-MiniLM-L6-v2 without its pooler
    assert metrics["small_encoder_parameters"] < metrics["minilm_parameters"] / 10
    assert metrics["pieces_per_word_wordpiece"] < metrics["pieces_per_word_bpe"]  # 1.14 vs 1.66
    assert metrics["wordpiece_unknown"] == 0, "no passage of the plays needs [UNK]"
    assert 0.3 < metrics["majority_accuracy"] < 0.5, "comedy is 2 of 5 test plays"
    keys = ("tfidf_4", "genre_suite_4", "genre_suite_random_4", "genre_random_minilm_probe_4")
    for key in (*keys, "names_capitalisation_f1", "names_suite_f1", "names_suite_random_f1"):
        assert 0.0 <= metrics[key] <= 1.0, key
    for method in ("probe", "lora", "full"):  # the smoke profile's budget: 4 per class
        assert 0.0 <= metrics[f"genre_minilm_{method}_4"] <= 1.0, method
    for method in ("lora", "full"):
        assert 0.0 <= metrics[f"names_minilm_{method}_f1"] <= 1.0, method
        assert 0.0 <= metrics[f"val_genre_minilm_{method}_4"] <= 1.0, method
        assert metrics[f"names_weight_{method}"] == 20.0, "the smoke profile's one setting"
    assert metrics["chosen_4"] in ("lora", "full"), "chosen on val"
    verdicts = ("better", "worse", "not established")
    for key in ("minilm_vs_tfidf_4", "minilm_vs_random_init_4", "names_full_vs_capitalisation"):
        assert metrics[key] in verdicts, key
    # smoke's LoRA: rank 4 on query and value in 6 layers of 384, and a 3-class head
    assert metrics["trained_lora"] == 6 * 2 * 4 * (384 + 384) + 384 * 3 + 3
    assert 0.0 < metrics["lora_fraction"] < 0.05
    assert metrics["suite_row"] == "mlm · full (trained here)"  # no 07 record in tmp_path
    assert metrics["suite_random_row"] == "random · full (trained here)"
    assert metrics["wall_seconds"] < 120


def check_training_craft(metrics: dict, params: dict) -> None:
    assert metrics["seed"] == params.get("seed", 0)
    steps = params.get("max_steps") or 30  # the smoke profile's steps
    assert metrics["steps"] == steps
    warmup = params.get("warmup_steps")
    assert metrics["warmup_steps"] == (round(0.3 * steps) if warmup is None else warmup)
    assert metrics["seeds"] == (params.get("seeds") or 2)
    assert metrics["grad_accumulation"] == (params.get("grad_accumulation") or 4)
    assert metrics["precision"] == (params.get("precision") or "bf16")
    chosen = params.get("peak_lr") or metrics["chosen_lr"]
    assert metrics["peak_lr"] == chosen
    assert metrics["chosen_lr"] == metrics["range_lowest_lr"] / 10, "the rule: a tenth"
    assert abs(metrics["start_loss"] - 4.489) < 1e-3, "ln 89, the characters and specials"
    assert 3.0 < metrics["unigram_loss"] < 3.6, "character frequencies: about 3.3 nats"
    assert metrics["main_val_loss"] < metrics["start_loss"], "the main run learned nothing"
    assert metrics["equal_accumulation_max_difference"] < 1e-6
    assert metrics["weighted_accumulation_max_difference"] < 1e-6
    assert metrics["naive_accumulation_relative_difference"] > 1e-4
    assert metrics["fp16_gradient_without_scaling"] == 0.0
    assert metrics["fp16_gradient_with_scaling"] == 2.0**-27
    assert metrics["low_precision_steps"] in (steps, min(steps, 10))  # 10: smoke's slow path
    assert metrics["fp16_skipped_updates"] == -1, "no CUDA fp16 run in smoke"
    assert 0.0 <= metrics["clipped_share"] <= 1.0
    assert metrics["decay_everything_gain"] < metrics["decay_matrices_gain"]
    assert metrics["tensorboard_steps"] == steps
    assert metrics["sweep_runs"] == 2 * 2 * 3  # smoke: 2 rates, 2 warmups, 3 schedules
    for key in ("ten_times", "warmup", "placement", "precision", "clipping", "decay"):
        assert metrics[f"{key}_verdict"] in ("better", "worse", "not established"), key


def check_known_language(metrics: dict, params: dict) -> None:
    assert metrics["seed"] == params.get("seed", 0)
    objectives = params.get("objectives") or "mlm,clm,electra,simcse,span_contrast,vae"
    assert metrics["objectives"] == objectives  # the smoke profile's: all six
    assert metrics["budgets"] == (params.get("budgets") or "1,4")
    assert metrics["pretrain_steps"] == (params.get("pretrain_steps") or 4)
    assert metrics["forward_max_abs_error"] < 1e-9
    assert metrics["hmmlearn_checked"] is True, "hmmlearn is in the test extras"
    # the profile's language (1 successor, 100 words, ambiguity 2): Bayes tagger 0.9995,
    # dialect 1.000 on smoke's 200 test sequences; most frequent class 0.748, exact
    assert metrics["bayes_tagging"] > 0.95 and metrics["bayes_dialect"] > 0.9
    assert abs(metrics["most_frequent_class_exact"] - 0.748) < 0.01
    # (smoke counts its bigrams on 2,000 sequences only: too few to beat the unigram)
    assert metrics["clm_floor"] < min(metrics["bigram_nats"], metrics["unigram_nats"])
    assert metrics["mlm_exact_nats"] < metrics["mlm_test_nats"], "an MLM beat the optimum"
    assert metrics["causal_vs_optimum"] != "better" and metrics["masked_vs_optimum"] != "better"
    for name in ("random", *objectives.split(",")):
        assert metrics[f"seeds_{name}"] >= 1
        for k in metrics["budgets"].split(","):
            assert 0.0 <= metrics[f"tagging_{name}_{k}"] <= metrics["bayes_tagging"] + 0.02
            assert 0.0 <= metrics[f"dialect_{name}_{k}"] <= 1.0
    for objective in objectives.split(","):
        assert metrics[f"tagging_vs_random_{objective}"] in ("better", "worse", "not established")
        assert metrics[f"steps_{objective}"] >= 1


# For every notebook: the default parameter set first, then a different one, and a check
# of what it records. A notebook missing here fails test_every_notebook_has_papermill_cases.
PAPERMILL_CASES: dict[str, tuple[list[dict], Callable[[dict, dict], None]]] = {
    "00_tour": (
        [{"profile": "smoke"}, {"profile": "smoke", "seed": 1, "bpe_vocab_size": 300}],
        check_tour,
    ),
    "01_attention": (
        [
            {"profile": "smoke"},
            {"profile": "smoke", "seed": 1, "n_head": 4, "saturation_samples": 128},
        ],
        check_attention,
    ),
    "02_masked_lm": (
        [
            {"profile": "smoke"},
            {
                "profile": "smoke",
                "seed": 1,
                "mask_rate": 0.25,
                "strategy": "whole_word",
                "max_steps": 40,
                "nsp_ablation": False,
            },
        ],
        check_masked_lm,
    ),
    "03_autoregressive_lm": (
        [
            {"profile": "smoke"},
            {
                "profile": "smoke",
                "seed": 1,
                "bpe_vocab_size": 300,
                "max_steps": 120,
                "dropout_rate": 0.5,
                "prompt": "ROMEO.",
            },
        ],
        check_autoregressive,
    ),
    "03b_training_craft": (
        [
            {"profile": "smoke"},
            {
                "profile": "smoke",
                "seed": 1,
                "max_steps": 20,
                "warmup_steps": 5,
                "peak_lr": 3e-3,
                "grad_accumulation": 3,
                "precision": "fp16",
                "seeds": 3,
            },
        ],
        check_training_craft,
    ),
    "04_vae": (
        [
            {"profile": "smoke"},
            {
                "profile": "smoke",
                "seed": 1,
                "max_steps": 10,
                "sentence_steps": 3,
                "iwae_samples": 3,
                "free_bits": 0.5,
                "word_dropout": 0.2,
            },
        ],
        check_vae,
    ),
    "05_gan": (
        [
            {"profile": "smoke"},
            {
                "profile": "smoke",
                "seed": 1,
                "generator_loss": "minimax",
                "gan_steps": 30,
                "electra_steps": 6,
            },
        ],
        check_gan,
    ),
    "07_fine_tuning": (
        [
            {"profile": "smoke"},
            {
                "profile": "smoke",
                "seed": 1,
                "pretrain_steps": 3,
                "finetune_steps": 2,
                "passage": "Farewell, Horatio; the King is coming.",
            },
        ],
        check_fine_tuning,
    ),
    "06_contrastive": (
        [
            {"profile": "smoke"},
            {
                "profile": "smoke",
                "seed": 1,
                "temperature": 0.5,
                "max_steps": 6,
                "simcse_steps": 3,
                "query": "Now is the winter of our discontent",
            },
        ],
        check_contrastive,
    ),
    "08_real_pretrained_model": (
        [
            {"profile": "smoke"},
            {
                "profile": "smoke",
                "seed": 1,
                "finetune_steps": 3,
                "line": "O Romeo, Romeo, wherefore art thou Romeo?",
            },
        ],
        check_real_pretrained_model,
    ),
    "09_known_language": (
        [
            {"profile": "smoke"},
            {
                "profile": "smoke",
                "seed": 1,
                "objectives": "mlm,span_contrast",
                "budgets": "1,2",
                "pretrain_steps": 3,
            },
        ],
        check_known_language,
    ),
}
