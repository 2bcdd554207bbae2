"""sslm_lab's trainer against the Hugging Face Trainer recipe, side by side.

What a user would pick instead of this suite: `transformers.Trainer` with
`TrainingArguments` and `DataCollatorForLanguageModeling`, written the way the
`transformers` documentation and its `run_mlm.py` / `run_clm.py` examples show. Both
sides train the same architecture from the same random-init recipe on the same rows of
Shakespeare BPE tokens, with the same masking, batch, steps and schedule:

    masked LM   BertForMaskedLM            vs  sslm_lab.heads.MaskedLM + masked_lm_objective
    causal LM   GPT2LMHeadModel            vs  sslm_lab.heads.CausalLM

    BPE vocabulary 4096 (sslm_lab.data.bpe_tokenizer), 4 layers x 256 wide x 4 heads,
    FFN 1024, sequence 128 (BERT post-LN with exact GELU, GPT-2 pre-LN with tanh GELU),
    dropout 0.1 (the `transformers` default) on both sides, batch 32, 300 steps, AdamW
    (fused; lr 5e-4, betas 0.9 / 0.999, weight decay 0.01 on matrices and embeddings),
    linear warmup over 50 steps then linear decay to 0, gradient clipping at norm 1,
    no evaluation during training, no DataLoader workers, the same number of threads.

The one difference in the schedule: `transformers` warms up as step / warmup (its first
step has learning rate 0), sslm_lab as (step + 1) / (warmup + 1). Masked LM rows are
[CLS] + 126 tokens + [SEP], masked 15 % / 80-10-10 by the collator on one side and by
`sslm_lab.masking.mask_tokens` on the other (the collator may draw a special token as the
random replacement, sslm_lab never does: 5 ids of 4096). Causal LM rows are 128 tokens;
both sides read all 128 and score the 127 that have a successor.

Precision: each side runs at its default unless told otherwise. The HF recipe's
`TrainingArguments` default on a CPU is fp32 (`bf16=False`); sslm_lab's `precision="auto"`
takes bf16 autocast on a CPU that multiplies bf16 natively (attention kept in fp32) and
fp32 elsewhere. `--hf-precision bf16` gives the HF side `bf16=True` and `--precision fp32`
makes sslm_lab fp32, for the like-for-like tables.

Every run is its own process, so peak memory is that run's; the sides alternate (which
one goes first alternates too) so that a change in the machine's load hits both. After
training, outside the timed part, both models are scored on the same fixed validation
rows: masked LM loss and accuracy at the masked positions of one fixed masking, causal
LM loss per predicted token. Steps/s is steps over the wall time of the call that trains
(`Trainer.train()`, `Trainer.fit()`); tokens/s counts the 128 tokens of every row.

    python benchmarks/bench_vs_hf.py                          # both tasks, 3 runs each side
    python benchmarks/bench_vs_hf.py --task mlm --runs 1 --steps 40   # a quick check
    python benchmarks/bench_vs_hf.py --wait-for-load 0.6      # each run waits for idle cores
    python benchmarks/bench_vs_hf.py --hf-precision bf16      # the HF side in bf16 as well

It needs `accelerate` (which `transformers.Trainer` requires): `pip install -e .[bench]`.
It prints a table and writes benchmarks/results/vs_hf.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslm_lab.data import bpe_tokenizer, lm_text
from sslm_lab.eval_mode import evaluating
from sslm_lab.heads import CausalLM, MaskedLM
from sslm_lab.masking import IGNORE_INDEX, mask_tokens
from sslm_lab.objectives import masked_lm_objective, next_token_targets
from sslm_lab.training.batches import sample_rows
from sslm_lab.training.hardware import resolve_precision
from sslm_lab.training.trainer import Phase, Trainer, TrainerConfig
from sslm_lab.transformer import TransformerConfig

RESULTS = Path(__file__).resolve().parent / "results"
TASKS = ("mlm", "clm")
SIDES = ("hf", "sslm_lab")
TASK_NAMES = {"mlm": "masked LM (BERT)", "clm": "causal LM (GPT-2)"}


@dataclass(frozen=True)
class Setting:
    """What both sides share."""

    vocab_size: int = 4096
    n_layer: int = 4
    n_embd: int = 256
    n_head: int = 4
    intermediate_size: int = 1024
    seq_len: int = 128
    dropout: float = 0.1  # transformers' default for BERT and GPT-2
    batch_size: int = 32
    steps: int = 300
    lr: float = 5e-4
    warmup_steps: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    mask_rate: float = 0.15
    precision: str = "auto"  # sslm_lab's, resolved once ("auto": bf16 on a bf16 CPU)
    hf_precision: str = "fp32"  # the HF side's: TrainingArguments' default, bf16=False
    val_rows: int = 512
    eval_batch_size: int = 256
    threads: int = 2


# ------------------------------------------------------------------------------ data


def token_rows(task: str, setting: Setting, cache: Path) -> dict[str, Tensor]:
    """Consecutive, non-overlapping rows of `seq_len` tokens of the train and val texts
    (`transformers`' group_texts), (rows, seq_len) each; masked LM rows are [CLS] + text +
    [SEP]. Tokenized once and cached in `cache`, so no run's peak memory includes it."""
    if cache.exists():
        return torch.load(cache, weights_only=True)
    tokenizer = bpe_tokenizer(setting.vocab_size)
    rows = {}
    for split in ("train", "val"):
        ids = torch.tensor(tokenizer.encode(lm_text(split)))
        width = setting.seq_len - 2 if task == "mlm" else setting.seq_len
        chunks = ids[: len(ids) // width * width].view(-1, width)
        if task == "mlm":
            cls = torch.full((len(chunks), 1), tokenizer.cls_id)
            sep = torch.full((len(chunks), 1), tokenizer.sep_id)
            chunks = torch.cat([cls, chunks, sep], dim=1)
        rows[split] = chunks.contiguous()
    torch.save(rows, cache)
    return rows


def validation_batch(task: str, rows: Tensor, setting: Setting) -> dict[str, Tensor]:
    """The fixed validation rows, evenly spaced; for masked LM masked once, for both sides."""
    index = torch.linspace(0, len(rows) - 1, setting.val_rows).long()
    val = rows[index]
    if task == "clm":
        return {"input_ids": val}
    tokenizer = bpe_tokenizer(setting.vocab_size)
    inputs, labels = mask_tokens(
        val,
        mask_id=tokenizer.mask_id,
        vocab_size=tokenizer.vocab_size,
        special_ids=tokenizer.special_ids.values(),
        mask_rate=setting.mask_rate,
        generator=torch.Generator().manual_seed(1234),
    )
    return {"input_ids": inputs, "labels": labels}


def evaluate(task: str, logits_of, batch: dict[str, Tensor], setting: Setting) -> dict:
    """Mean loss per predicted token (and masked accuracy) on the validation batch;
    `logits_of(input_ids)` gives (rows, seq, vocab)."""
    loss_sum, right, predicted = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, setting.val_rows, setting.eval_batch_size):
            inputs = batch["input_ids"][start : start + setting.eval_batch_size]
            logits = logits_of(inputs).float()
            if task == "clm":
                targets = inputs[:, 1:]
                logits = logits[:, :-1]
            else:
                targets = batch["labels"][start : start + setting.eval_batch_size]
            selected = targets != IGNORE_INDEX
            loss_sum += float(F.cross_entropy(logits[selected], targets[selected], reduction="sum"))
            right += int((logits[selected].argmax(-1) == targets[selected]).sum())
            predicted += int(selected.sum())
    metrics = {"val_loss": loss_sum / predicted, "val_tokens": predicted}
    if task == "mlm":
        metrics["masked_accuracy"] = right / predicted
    return metrics


# --------------------------------------------------------------------------- the two sides


def hf_run(task: str, setting: Setting, rows: dict[str, Tensor], seed: int) -> dict:
    """The recipe from the `transformers` docs: a config, a randomly initialised model, the
    data collator, TrainingArguments and Trainer. Nothing is loaded from a hub."""
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        DataCollatorForLanguageModeling,
        GPT2Config,
        GPT2LMHeadModel,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )

    tokenizer = bpe_tokenizer(setting.vocab_size).hf
    set_seed(seed)
    d = setting.dropout
    if task == "mlm":
        config = BertConfig(
            vocab_size=setting.vocab_size,
            hidden_size=setting.n_embd,
            num_hidden_layers=setting.n_layer,
            num_attention_heads=setting.n_head,
            intermediate_size=setting.intermediate_size,
            max_position_embeddings=setting.seq_len,
            hidden_dropout_prob=d,
            attention_probs_dropout_prob=d,
            pad_token_id=tokenizer.pad_token_id,
        )
        model = BertForMaskedLM(config)
    else:
        config = GPT2Config(
            vocab_size=setting.vocab_size,
            n_positions=setting.seq_len,
            n_embd=setting.n_embd,
            n_layer=setting.n_layer,
            n_head=setting.n_head,
            n_inner=setting.intermediate_size,
            resid_pdrop=d,
            embd_pdrop=d,
            attn_pdrop=d,
            # GPT-2's defaults (50256) name tokens of its own vocabulary; ours has none.
            bos_token_id=None,
            eos_token_id=None,
        )
        model = GPT2LMHeadModel(config)
    collator = DataCollatorForLanguageModeling(
        tokenizer, mlm=task == "mlm", mlm_probability=setting.mask_rate
    )

    class Rows(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(rows["train"])

        def __getitem__(self, i: int) -> dict[str, Tensor]:
            return {"input_ids": rows["train"][i]}

    step_ends: list[float] = []

    class StepTimes(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            step_ends.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as output_dir:
        arguments = TrainingArguments(
            output_dir=output_dir,
            max_steps=setting.steps,
            per_device_train_batch_size=setting.batch_size,
            learning_rate=setting.lr,
            lr_scheduler_type="linear",
            warmup_steps=setting.warmup_steps,
            weight_decay=setting.weight_decay,
            max_grad_norm=setting.grad_clip,
            bf16=setting.hf_precision == "bf16",
            eval_strategy="no",
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            dataloader_num_workers=0,
            use_cpu=True,
            seed=seed,
        )
        trainer = Trainer(
            model=model,
            args=arguments,
            train_dataset=Rows(),
            data_collator=collator,
            callbacks=[StepTimes()],
        )
        result = timed_training(trainer.train, step_ends)
        optimizer = trainer.optimizer.optimizer  # inside accelerate's wrapper
        result["optimizer"] = f"{arguments.optim.value}, fused={optimizer.defaults.get('fused')}"
    model.eval()
    batch = validation_batch(task, rows["val"], setting)
    result["eval"] = evaluate(task, lambda ids: model(input_ids=ids).logits, batch, setting)
    result["parameters"] = sum(p.numel() for p in model.parameters())
    return result


def sslm_run(task: str, setting: Setting, rows: dict[str, Tensor], seed: int) -> dict:
    """The same run as a notebook trains it: a sampler, the trainer, one phase."""
    tokenizer = bpe_tokenizer(setting.vocab_size)
    torch.manual_seed(seed)
    shared = dict(
        vocab_size=setting.vocab_size,
        block_size=setting.seq_len,
        n_layer=setting.n_layer,
        n_head=setting.n_head,
        n_embd=setting.n_embd,
        intermediate_size=setting.intermediate_size,
        dropout=setting.dropout,
        attention_dropout=setting.dropout,
    )
    draw = sample_rows(rows["train"], batch_size=setting.batch_size)
    if task == "mlm":
        # BERT's own sizes: post-LN, exact GELU, segment embeddings, LayerNorm eps 1e-12.
        config = TransformerConfig(
            **shared,
            causal=False,
            norm_position="post",
            gelu="exact",
            type_vocab_size=2,
            layer_norm_eps=1e-12,
        )
        model: nn.Module = MaskedLM(config)
        special_ids = sorted(tokenizer.special_ids.values())

        def batches(step: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
            (batch,) = draw(step, generator)
            return mask_tokens(
                batch,
                mask_id=tokenizer.mask_id,
                vocab_size=tokenizer.vocab_size,
                special_ids=special_ids,
                mask_rate=setting.mask_rate,
                generator=generator,
            )

        loss_fn = masked_lm_objective
    else:
        model = CausalLM(TransformerConfig(**shared, causal=True, norm_position="pre", gelu="tanh"))

        def batches(step: int, generator: torch.Generator) -> Tensor:
            return draw(step, generator)[0]

        def loss_fn(module: nn.Module, batch: Tensor, step: int) -> tuple[Tensor, dict]:
            # All 128 tokens in, the 127 with a successor scored: what GPT2LMHeadModel does.
            return module(batch, targets=next_token_targets(batch)), {}

    phase = Phase(
        task,
        model,
        loss_fn,
        lr=setting.lr,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=setting.weight_decay,
        schedule="linear",
        warmup_steps=setting.warmup_steps,
        min_lr=0.0,
    )
    config = TrainerConfig(
        max_steps=setting.steps,
        device="cpu",
        precision=setting.precision,
        grad_clip=setting.grad_clip,
        seed=seed,
        progress=False,
    )
    step_ends: list[float] = []
    config = replace(config, callbacks=[lambda trainer, row: step_ends.append(time.perf_counter())])
    trainer = Trainer(model, phase, batches, config)
    result = timed_training(trainer.fit, step_ends)
    optimizer = trainer._states[0].optimizer
    result["optimizer"] = f"AdamW, fused={optimizer.defaults['fused']}"
    with evaluating(model):
        batch = validation_batch(task, rows["val"], setting)
        result["eval"] = evaluate(task, model, batch, setting)
    result["parameters"] = sum(p.numel() for p in model.parameters())
    return result


def timed_training(train, step_ends: list[float]) -> dict:
    """Run `train()`; its wall time, steady per-step times and the process's peak memory,
    and how many cores other processes kept busy meanwhile (a shared machine's noise)."""
    rss_before = peak_rss_gb()
    busy_before, own_before = busy_cpu_seconds(), sum(os.times()[:2])
    started = time.perf_counter()
    train()
    seconds = time.perf_counter() - started
    others = None
    if busy_before is not None:
        own = sum(os.times()[:2]) - own_before
        others = max(0.0, (busy_cpu_seconds() - busy_before - own) / seconds)
    gaps = [b - a for a, b in zip(step_ends, step_ends[1:], strict=False)][10:]  # warm-up out
    return {
        "train_seconds": seconds,
        "steps": len(step_ends),
        "median_step_ms": 1000 * statistics.median(gaps) if gaps else None,
        "peak_rss_gb_before_training": rss_before,
        "peak_rss_gb": peak_rss_gb(),
        "other_processes_cores": others,
    }


def busy_cpu_seconds() -> float | None:
    """CPU seconds all processes have used since boot (Linux /proc/stat), or None."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def peak_rss_gb() -> float:
    """This process's peak resident memory so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e9


def worker(side: str, task: str, setting: Setting, seed: int, cache: Path, out: Path) -> None:
    torch.set_num_threads(setting.threads)
    rows = token_rows(task, setting, cache)
    load_before = os.getloadavg()[0]
    result = (hf_run if side == "hf" else sslm_run)(task, setting, rows, seed)
    result["steps_per_s"] = result["steps"] / result["train_seconds"]
    result["tokens_per_s"] = result["steps_per_s"] * setting.batch_size * setting.seq_len
    result.update(side=side, task=task, seed=seed, threads=torch.get_num_threads())
    result["load_1min"] = [load_before, os.getloadavg()[0]]
    out.write_text(json.dumps(result) + "\n")


# ------------------------------------------------------------------------- orchestration


def run_worker(side: str, task: str, setting: Setting, seed: int, cache: Path) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        command = [sys.executable, __file__, "--worker", side, "--task", task]
        command += ["--seed", str(seed), "--cache", str(cache), "--out", str(out)]
        command += ["--setting", json.dumps(asdict(setting))]
        subprocess.run(command, check=True)
        return json.loads(out.read_text())


def wait_for_load(limit: float) -> None:
    """Sleep until the 1-minute load average is below `limit`: on a shared machine, a run
    should not start while someone else's job (or the previous run) still holds the cores."""
    while os.getloadavg()[0] >= limit:
        time.sleep(30)


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(runs: list[dict], task: str) -> dict:
    by_side = {side: [r for r in runs if r["task"] == task and r["side"] == side] for side in SIDES}
    summary = {}
    for side, results in by_side.items():
        keys = ["steps_per_s", "tokens_per_s", "peak_rss_gb", "median_step_ms"]
        summary[side] = {key: spread([r[key] for r in results]) for key in keys}
        summary[side]["val_loss"] = spread([r["eval"]["val_loss"] for r in results])
        if task == "mlm":
            summary[side]["masked_accuracy"] = spread(
                [r["eval"]["masked_accuracy"] for r in results]
            )
        summary[side]["parameters"] = results[0]["parameters"]
        summary[side]["optimizer"] = results[0]["optimizer"]
    ratios = [
        s["steps_per_s"] / h["steps_per_s"]
        for h, s in zip(by_side["hf"], by_side["sslm_lab"], strict=True)
    ]
    summary["speedup"] = spread(ratios)  # per pair of runs with the same seed
    summary["speedup_of_medians"] = (
        summary["sslm_lab"]["steps_per_s"]["median"] / summary["hf"]["steps_per_s"]["median"]
    )
    return summary


def print_table(report: dict) -> None:
    def cell(values: dict, fmt: str) -> str:
        return f"{values['median']:{fmt}} ({values['min']:{fmt}}-{values['max']:{fmt}})"

    print(
        f"\nsslm_lab vs the Hugging Face Trainer recipe: {report['runs']} runs each, median "
        f"(range); {report['machine']}, {report['threads']} threads, torch {report['torch']}, "
        f"transformers {report['transformers']}; precision: sslm_lab {report['precision']}, "
        f"HF {report['setting']['hf_precision']}"
    )
    for task in report["tasks"]:
        summary = report["summary"][task]
        print(f"\n{TASK_NAMES[task]}")
        header = f"{'':>10} {'steps/s':>20} {'tokens/s':>24} {'peak RSS GB':>20} {'val loss':>22}"
        if task == "mlm":
            header += f" {'masked acc. %':>20}"
        print(header)
        for side in SIDES:
            values = summary[side]
            line = (
                f"{side:>10} {cell(values['steps_per_s'], '.3f'):>20} "
                f"{cell(values['tokens_per_s'], ',.0f'):>24} "
                f"{cell(values['peak_rss_gb'], '.2f'):>20} {cell(values['val_loss'], '.3f'):>22}"
            )
            if task == "mlm":
                accuracy = {k: 100 * v for k, v in values["masked_accuracy"].items()}
                line += f" {cell(accuracy, '.1f'):>20}"
            print(line)
        print(f"{'speedup':>10} {cell(summary['speedup'], '.2f')}x (per pair of runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=(*TASKS, "both"), default="both")
    parser.add_argument("--runs", type=int, default=3, help="runs per side and task")
    parser.add_argument("--steps", type=int, help="override the 300 training steps")
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="sslm_lab's precision (default auto: bf16 where the CPU multiplies bf16 natively)",
    )
    parser.add_argument(
        "--hf-precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="the HF side's (default fp32, TrainingArguments' default; bf16 sets bf16=True)",
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=RESULTS / "vs_hf.json")
    parser.add_argument(
        "--wait-for-load",
        type=float,
        metavar="LOAD",
        help="before each run, wait until the 1-minute load average is below LOAD",
    )
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--setting", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(
            args.worker,
            args.task,
            Setting(**json.loads(args.setting)),
            args.seed,
            args.cache,
            args.out,
        )
        return
    if args.runs < 1:
        parser.error(f"--runs must be at least 1; got {args.runs}")
    if args.steps is not None and args.steps < 6:
        parser.error(f"--steps must be at least 6 (the warmup is a sixth of it); got {args.steps}")
    if importlib.util.find_spec("accelerate") is None:
        parser.error(
            "the HF side needs accelerate (transformers.Trainer requires it), which the default "
            "install leaves out: pip install -e '.[bench]'"
        )
    precision = resolve_precision(args.precision, torch.device("cpu"))
    setting = Setting(precision=precision, hf_precision=args.hf_precision, threads=args.threads)
    if args.steps is not None:
        setting = replace(
            setting, steps=args.steps, warmup_steps=min(setting.warmup_steps, args.steps // 6)
        )
    tasks = TASKS if args.task == "both" else (args.task,)
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for run in range(args.runs):
            for task in tasks:
                cache = Path(folder) / f"{task}_rows.pt"
                token_rows(task, setting, cache)
                # Alternate who goes first, so a drift in the machine's load hits both.
                order = SIDES if run % 2 == 0 else SIDES[::-1]
                for side in order:
                    if args.wait_for_load is not None:
                        wait_for_load(args.wait_for_load)
                    result = run_worker(side, task, setting, run, cache)
                    runs.append(result)
                    print(
                        f"run {run + 1}/{args.runs} {task:>4} {side:>9}: "
                        f"{result['steps_per_s']:.3f} steps/s, val loss "
                        f"{result['eval']['val_loss']:.3f}"
                        + (
                            f", masked accuracy {result['eval']['masked_accuracy']:.1%}"
                            if task == "mlm"
                            else ""
                        )
                        + f" (load {result['load_1min'][0]:.2f} -> {result['load_1min'][1]:.2f}, "
                        + f"other processes {result['other_processes_cores'] or 0:.2f} cores)",
                        flush=True,
                    )
    import transformers

    report = {
        "benchmark": "vs_hf",
        "setting": asdict(setting),
        "tasks": list(tasks),
        "runs": args.runs,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "cpu": _cpu_name(),
        "threads": setting.threads,
        "precision": precision,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "summary": {task: summarise(runs, task) for task in tasks},
        "results": runs,
    }
    report["machine"] = f"{report['cpu']}, {os.cpu_count()} cores"
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
