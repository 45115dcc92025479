"""One trainer for every neural method, on transformers' Trainer.

Methods turn rows into tokenized examples and hand over a model; this module owns everything the
projects configured by hand: schedule, accumulation, mixed precision, evaluation and checkpoint
cadence, early stopping with a minimum number of epochs, best-model selection, class weights,
resume, and the metrics log (JSONL, plus TensorBoard when installed). Because it is the stock
Trainer, `accelerate launch` runs the same code on several GPUs.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments

from sentitune.config import TrainConfig
from sentitune.errors import SentituneError
from sentitune.methods.hardware import Hardware, choose_precision, detect


class JsonlMetricsLog(TrainerCallback):
    """Append every Trainer log (loss, lr, eval metrics) to ``metrics.jsonl`` beside the checkpoints."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and state.is_world_process_zero:
            with self.path.open("a") as fh:
                fh.write(json.dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n")


class MinEpochsEarlyStopping(EarlyStoppingCallback):
    """Early stopping that never stops before ``min_epochs`` (patience counts only after them)."""

    def __init__(self, patience: int, min_epochs: float):
        super().__init__(early_stopping_patience=patience)
        self.min_epochs = min_epochs

    def on_evaluate(self, args, state, control, metrics, **kwargs):
        super().on_evaluate(args, state, control, metrics, **kwargs)
        if (state.epoch or 0) < self.min_epochs:
            control.should_training_stop = False


def mixed_precision(cfg: TrainConfig, hw: Hardware | None = None) -> dict[str, bool]:
    """The Trainer's precision flags. On a GPU: bf16 where it has it, else fp16. On a CPU: bf16
    autocast where its matrix multiplies are native (AMX or AVX512-BF16; LoRA on all-mpnet-base-v2
    trained 1.8x faster than fp32, both length-grouped, on a Zen 4: benchmarks/train_speed.py), else
    fp32 (bf16 emulated is slower than fp32, and a CPU has no fp16 units)."""
    hw = hw or detect()
    fp32 = {"fp16": False, "bf16": False}
    if cfg.mixed_precision == "no":
        return fp32
    if hw.cuda:
        bf16 = torch.cuda.is_bf16_supported() if cfg.mixed_precision == "auto" else cfg.mixed_precision == "bf16"
        return {"fp16": not bf16, "bf16": bf16}
    if cfg.mixed_precision in ("auto", "bf16") and choose_precision(hw).precision == "bf16":
        return {"fp16": False, "bf16": True}
    if cfg.mixed_precision != "auto":
        # A GPU recipe run on a laptop (or offline with a stand-in model) should still run.
        warnings.warn(f"mixed_precision={cfg.mixed_precision} needs a CUDA GPU or a CPU with native bf16; "
                      "training in fp32 on this CPU", stacklevel=2)
    return fp32


def training_arguments(cfg: TrainConfig, checkpoint_dir: Path, has_eval: bool) -> TrainingArguments:
    evaluate = has_eval and cfg.eval_strategy != "no"
    strategy = cfg.eval_strategy if evaluate else "no"
    # Checkpoints follow evaluation so the best one can be restored; without eval, save per epoch/steps.
    save_strategy = strategy if evaluate else ("steps" if cfg.save_steps else "epoch")
    steps = cfg.eval_steps or cfg.save_steps or 500
    warmup: float = cfg.warmup_steps if cfg.warmup_steps else cfg.warmup_ratio
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=cfg.num_epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        warmup_steps=warmup,
        lr_scheduler_type=cfg.lr_scheduler,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        eval_strategy=strategy,
        eval_steps=steps if strategy == "steps" else None,
        save_strategy=save_strategy,
        save_steps=(cfg.save_steps or steps) if save_strategy == "steps" else 500,
        save_total_limit=cfg.save_total_limit,
        load_best_model_at_end=evaluate,
        metric_for_best_model=cfg.metric_for_best_model if evaluate else None,
        greater_is_better=None if not evaluate else not cfg.metric_for_best_model.endswith(("loss", "ece")),
        logging_steps=cfg.logging_steps,
        seed=cfg.seed,
        data_seed=cfg.seed,
        train_sampling_strategy="group_by_length",  # similar lengths per batch: less padding, faster
        report_to=["tensorboard"] if importlib.util.find_spec("tensorboard") else [],
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        remove_unused_columns=False,
        **mixed_precision(cfg),
    )


def class_weighted_loss(labels: list[int]) -> Callable:
    """Cross-entropy weighted by inverse class frequency (for imbalanced training data)."""
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=2).astype(float)
    weights = torch.tensor(counts.sum() / (2 * np.maximum(counts, 1)), dtype=torch.float32)

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs.logits
        return torch.nn.functional.cross_entropy(logits.float(), labels, weight=weights.to(logits.device))

    return loss


def train_model(
    model: torch.nn.Module,
    cfg: TrainConfig,
    train_dataset: Any,
    eval_dataset: Any | None,
    checkpoint_dir: Path,
    data_collator: Callable,
    compute_metrics: Callable | None = None,
    compute_loss_func: Callable | None = None,
    processing_class: Any = None,
) -> Trainer:
    """Train with the stock Trainer and return it (best model loaded when evaluation ran)."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    args = training_arguments(cfg, checkpoint_dir, has_eval=eval_dataset is not None)
    callbacks: list[TrainerCallback] = [JsonlMetricsLog(checkpoint_dir / "metrics.jsonl")]
    if cfg.early_stopping_patience and args.load_best_model_at_end:
        callbacks.append(MinEpochsEarlyStopping(cfg.early_stopping_patience, cfg.min_epochs))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=data_collator,
        compute_metrics=compute_metrics,
        compute_loss_func=compute_loss_func,
        processing_class=processing_class,
        callbacks=callbacks,
    )
    trainer.train(resume_from_checkpoint=checkpoint_to_resume(cfg.resume_from_checkpoint, checkpoint_dir))
    # under mixed precision accelerate wrapped the model's forward in autocast; the trained model must
    # predict in the precision its artifact will load in (fp32), so the wrapper goes (in place)
    trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    return trainer


def checkpoint_to_resume(resume: str | None, checkpoint_dir: Path) -> str | None:
    """``latest`` -> the newest *complete* checkpoint in ``checkpoint_dir``; a path is checked.

    A run killed while writing a checkpoint leaves a folder without ``trainer_state.json`` (the
    Trainer writes it last); resuming from it would fail, so ``latest`` skips such folders.
    """
    if not resume:
        return None
    if resume == "latest":
        complete = [d for d in checkpoint_dir.glob("checkpoint-*") if (d / "trainer_state.json").is_file()]
        if not complete:
            raise SentituneError(f"no complete checkpoint to resume from in {checkpoint_dir}")
        return str(max(complete, key=lambda d: int(d.name.rsplit("-", 1)[1])))
    if not Path(resume).is_dir():
        raise SentituneError(f"checkpoint to resume from not found: {resume}")
    if not (Path(resume) / "trainer_state.json").is_file():
        raise SentituneError(f"{resume} is not a complete checkpoint (no trainer_state.json)")
    return resume
