"""`instruct` and `zero-shot`: a causal LM asked for ``POSITIVE`` or ``NEGATIVE``, scored on the label tokens.

Inference never generates the label: one forward pass over the prompts gives the next-token
log-probabilities of the two answers, which are the (n, 2) scores every method returns. A neutral or
malformed answer is therefore impossible, and the confidence is the model's own. ``zero-shot`` does
only that; ``instruct`` first trains a LoRA adapter (or the full model) with the loss on the answer
tokens only. ``explain`` generates a short reason after the label, for ``--reasoning`` and the API's
``include_reasoning``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from transformers import AutoModelForCausalLM

from sentitune.artifact import LABELS, ArtifactMeta
from sentitune.config import TrainConfig
from sentitune.errors import ArtifactError, SentituneError
from sentitune.methods.base import Capabilities, Scorer, SentimentModel, check_texts
from sentitune.methods.engine import length_batches, resolve_device
from sentitune.methods.hf import add_lora, cast, load_base_tokenizer, load_model, quiet_transformers, save_model
from sentitune.methods.prompts import build_prompt, load_template
from sentitune.zoo import resolve_model

DEFAULT_MODEL = "smollm2-135m-instruct"  # the default encoder of TrainConfig cannot answer in words
EXPLAIN_TOKENS = 48
IGNORE = -100  # labels the loss skips: the prompt and the padding


def base_model_name(cfg: TrainConfig) -> str:
    explicit = "model" in cfg.model_fields_set or cfg.model_size
    return cfg.resolved_model() if explicit else DEFAULT_MODEL


def quantization_kwargs() -> dict[str, Any]:
    """from_pretrained arguments for a 4-bit NF4 base (QLoRA), or a one-line reason it cannot be had."""
    if not torch.cuda.is_available():
        raise SentituneError(
            "4-bit QLoRA needs a CUDA GPU and bitsandbytes; this machine has no CUDA GPU — "
            "drop --load-in-4bit to train in full precision"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise SentituneError("4-bit QLoRA needs bitsandbytes: pip install 'sentitune[qlora]', or drop --load-in-4bit")
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    config = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute
    )
    return {"quantization_config": config, "dtype": compute, "device_map": {"": torch.cuda.current_device()}}


def load_causal_lm(base: str, load_in_4bit: bool = False) -> torch.nn.Module:
    # float32 on CPU: bf16 checkpoints (Qwen3) train and run slowly and less exactly there.
    if load_in_4bit:
        kwargs = quantization_kwargs()
    else:
        kwargs = {"dtype": "auto" if torch.cuda.is_available() else torch.float32}
    try:
        with quiet_transformers():
            return AutoModelForCausalLM.from_pretrained(resolve_model(base), **kwargs)
    except (OSError, ValueError) as exc:  # not found / offline, or e.g. an encoder with no LM head
        raise SentituneError(f"{base} cannot be loaded as a causal LM: {str(exc).splitlines()[0]}") from None


def pad_examples(features: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad input_ids with the pad token and labels with IGNORE (the collator the Trainer uses)."""
    width = max(len(f["input_ids"]) for f in features)
    ids = torch.full((len(features), width), pad_id, dtype=torch.long)
    labels = torch.full((len(features), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(features), width), dtype=torch.long)
    for i, f in enumerate(features):
        n = len(f["input_ids"])
        ids[i, :n] = torch.tensor(f["input_ids"])
        labels[i, :n] = torch.tensor(f["labels"])
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def left_pad(seqs: list[list[int]], pad_id: int, device) -> dict[str, torch.Tensor]:
    """Left padding puts every prompt's last token at position -1; position_ids skip the padding."""
    width = max(map(len, seqs))
    ids = torch.tensor([[pad_id] * (width - len(s)) + s for s in seqs], device=device)
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=device)
    return {"input_ids": ids, "attention_mask": mask, "position_ids": (mask.cumsum(1) - 1).clamp(min=0)}


class ZeroShotModel(SentimentModel):
    method = "zero-shot"
    capabilities = Capabilities(explain=True, batch_size=True, tokenizer=True)

    def __init__(self, meta: ArtifactMeta | None = None, model=None, tokenizer=None, batch_size: int = 16,
                 max_tokens: int = 2048):
        super().__init__(meta)
        self.model = model
        self.batch_size, self.max_tokens = batch_size, max_tokens
        if tokenizer is not None:
            self._set_tokenizer(tokenizer)

    def _set_tokenizer(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.prompt = build_prompt(load_template(self.meta.prompt_template), tokenizer)
        # Prompt and answer are tokenized separately and their ids concatenated, in training and in
        # scoring alike, so the target tokens are exactly the tokens scored.
        self.answer_ids = [tokenizer(a, add_special_tokens=False)["input_ids"] for a in self.prompt.answers]
        # Scored: the first token where the two answers differ, after their shared tokens (if any) are
        # appended to the prompt. One forward pass over the prompts suffices, and the rest of an answer
        # ("EG", "ATIVE" after "N") is near-certain given that token: it would add cost, not information.
        # Each side pools (log-sum-exp) that token over the answer's letter cases: untrained models
        # prefer "Positive", and SmolLM2's "POS" / "N" carry no signal before training (mean P(POSITIVE)
        # 0.64 on clear positives vs 0.62 on clear negatives with `chat`; 0.91 vs 0.70 with "Positive").
        neg, pos = self.answer_ids
        shared = next(i for i, (a, b) in enumerate(zip(neg, pos)) if a != b)
        self.shared_ids = neg[:shared]
        self.label_ids: list[list[int]] = []
        for label in range(2):
            firsts = []
            for spelling in self.prompt.spellings(label):
                ids = tokenizer(spelling, add_special_tokens=False)["input_ids"]
                if ids[:shared] == self.shared_ids and len(ids) > shared:  # else it does not fit the scheme
                    firsts.append(ids[shared])
            self.label_ids.append(list(dict.fromkeys(firsts)))
        # Long texts are cut, never the prompt around them: the answer must follow the prompt's end.
        prompt = len(tokenizer(self.prompt.render(""), add_special_tokens=self.prompt.add_special_tokens)["input_ids"])
        room = self.meta.max_length - prompt - max(map(len, self.answer_ids)) - 1  # 1: EOS in training
        self.text_budget = max(8, room // self.prompt.slots)

    # ------------------------------------------------------------------------------ building
    def _start(self, cfg: TrainConfig) -> str:
        base = base_model_name(cfg)
        template = load_template(cfg.prompt_template)
        self.meta = ArtifactMeta(
            method=self.method, base_model=base, max_length=cfg.max_length, prompt_template=template.spec,
            options={"reasoning": cfg.reasoning},
        )
        self._set_tokenizer(load_base_tokenizer(base))
        return base

    def fit(self, train: list[dict], val: list[dict] | None = None, config: TrainConfig | None = None, *,
            metrics: Scorer | None = None):
        """Nothing to learn: records the model and template so `sentitune train` writes an artifact."""
        self.model = load_causal_lm(self._start(config or TrainConfig(method=self.method))).eval()
        return self

    def prompt_ids(self, texts: list[str]) -> list[list[int]]:
        tok = self.tokenizer
        texts = [
            t if len(ids) <= self.text_budget else tok.decode(ids[: self.text_budget])
            for t, ids in zip(texts, tok(texts, add_special_tokens=False)["input_ids"])
        ]
        rendered = [self.prompt.render(t) for t in texts]
        return tok(rendered, add_special_tokens=self.prompt.add_special_tokens)["input_ids"]

    # ------------------------------------------------------------------------------ inference
    def _batches(self, seqs: list[list[int]]):
        """Length-bucketed batches (less padding), as (indices into seqs, left-padded tensors)."""
        device = next(self.model.parameters()).device
        for idx in length_batches([len(s) for s in seqs], self.batch_size, self.max_tokens):
            yield idx, left_pad([seqs[i] for i in idx], self.tokenizer.pad_token_id, device)

    @torch.inference_mode()
    def logits(self, texts: list[str]) -> np.ndarray:
        """Log-probabilities of the NEGATIVE and POSITIVE answers, one forward pass per batch."""
        seqs = [ids + self.shared_ids for ids in self.prompt_ids(texts)]
        out = np.empty((len(texts), 2), dtype=np.float32)
        for idx, batch in self._batches(seqs):
            logp = torch.log_softmax(self.model(**batch, logits_to_keep=1).logits[:, -1].float(), dim=-1)
            out[idx] = torch.stack([logp[:, ids].logsumexp(-1) for ids in self.label_ids], 1).cpu().numpy()
        return out

    @torch.inference_mode()
    def explain(self, texts: Sequence[str] | str, labels: Sequence[str] | None = None) -> list[str]:
        """A short reason per text, generated greedily after its label (predicted unless given)."""
        texts = check_texts(texts)
        labels = list(labels) if labels is not None else self.predict(texts)
        tok = self.tokenizer
        seqs = [
            ids + self.answer_ids[LABELS.index(label)]
            + tok(f"\nReason: the text is {label.lower()} because", add_special_tokens=False)["input_ids"]
            for ids, label in zip(self.prompt_ids(texts), labels)
        ]
        out = [""] * len(texts)
        for idx, batch in self._batches(seqs):
            generated = self.model.generate(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], max_new_tokens=EXPLAIN_TOKENS,
                do_sample=False, pad_token_id=tok.pad_token_id,
            )
            for i, new in zip(idx, generated[:, batch["input_ids"].shape[1] :]):
                reason = tok.decode(new, skip_special_tokens=True).strip().split("\n")[0]
                out[i] = f"The text is {labels[i].lower()} because {reason}"
        return out

    def to(self, device: str) -> "ZeroShotModel":
        self.model.to(resolve_device(device))
        return self

    # ------------------------------------------------------------------------------ persistence
    def save_weights(self, directory: Path) -> list[str]:
        return []  # the base model is named in sentitune.json and resolved on load

    @classmethod
    def from_artifact(cls, directory: Path, meta: ArtifactMeta, *, precision: str | None = None,
                      device: str | None = None) -> "ZeroShotModel":
        if not meta.base_model:
            raise ArtifactError(f"{directory}/sentitune.json names no base_model")
        model = cast(load_causal_lm(meta.base_model), precision).eval()
        return cls(meta, model, load_base_tokenizer(meta.base_model)).placed(device)


class InstructModel(ZeroShotModel):
    method = "instruct"

    @property
    def is_lora(self) -> bool:
        return "lora" in self.meta.options

    def examples(self, rows: list[dict]) -> dict[str, list[list[int]]]:
        """prompt + answer + EOS; the loss sees the answer and EOS, never the prompt."""
        ids, labels = [], []
        for prompt, row in zip(self.prompt_ids([r["text"] for r in rows]), rows):
            answer = self.answer_ids[int(row["label"])] + [self.tokenizer.eos_token_id]
            ids.append(prompt + answer)
            labels.append([IGNORE] * len(prompt) + answer)
        return {"input_ids": ids, "labels": labels}

    def fit(self, train: list[dict], val: list[dict] | None = None, config: TrainConfig | None = None, *,
            metrics: Scorer | None = None):
        """Trains on the answer tokens; checkpoints are ranked by validation loss (``metrics`` unused)."""
        from datasets import Dataset
        from peft import prepare_model_for_kbit_training

        from sentitune.methods.trainer import train_model

        cfg = config or TrainConfig(method=self.method)
        # LoRA unless the config says otherwise (--full): it is what every LLM recipe uses.
        lora = cfg.lora.enabled if "enabled" in cfg.lora.model_fields_set else True
        if cfg.load_in_4bit and not lora:
            raise SentituneError("--load-in-4bit trains a LoRA adapter on a frozen 4-bit base (QLoRA); drop --full")
        if cfg.class_weights:
            raise SentituneError("class_weights is not supported by the instruct method; balance the data instead")
        if cfg.load_in_4bit:
            quantization_kwargs()  # fail before any loading when the platform cannot do it
        base = self._start(cfg)
        model = load_causal_lm(base, cfg.load_in_4bit)
        if lora:
            if cfg.load_in_4bit:
                model = prepare_model_for_kbit_training(model)
            model = add_lora(model, cfg.lora, "CAUSAL_LM")
            self.meta.options["lora"] = cfg.lora.model_dump() | {"enabled": True}
        self.meta.options["load_in_4bit"] = cfg.load_in_4bit
        # The Trainer's own metrics would gather full-vocabulary logits at every position; the loss on
        # the answer tokens ranks checkpoints without that, and run_training scores val afterwards.
        cfg = cfg.model_copy(update={"metric_for_best_model": "loss"})
        trainer = train_model(
            model, cfg, Dataset.from_dict(self.examples(train)), Dataset.from_dict(self.examples(val)) if val else None,
            Path(cfg.output_dir) / "checkpoints",
            data_collator=lambda features: pad_examples(features, self.tokenizer.pad_token_id),
            processing_class=self.tokenizer,
        )
        self.model = trainer.model.eval()
        self.meta.training["global_steps"] = trainer.state.global_step
        self.meta.training["best_checkpoint"] = trainer.state.best_model_checkpoint
        return self

    def save_weights(self, directory: Path) -> list[str]:
        return save_model(self.model, self.tokenizer, directory, self.is_lora)

    @classmethod
    def from_artifact(cls, directory: Path, meta: ArtifactMeta, *, precision: str | None = None,
                      device: str | None = None, merge: bool = True) -> "InstructModel":
        # Full precision even after QLoRA (unless bf16 is asked for): the merged model runs anywhere.
        model, tokenizer = load_model(directory, meta, lambda path, _: load_causal_lm(path), merge)
        return cls(meta, cast(model, precision).eval(), tokenizer).placed(device)
