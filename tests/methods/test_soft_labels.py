"""The classifier's ``soft_label`` rows: the loss pulls P(positive) to the soft target, not to the label."""

import numpy as np
import torch

from sentitune.config import TrainConfig
from sentitune.methods.base import softmax
from sentitune.methods.classifier import SequenceClassifier, soft_target_loss


def test_soft_target_loss_is_cross_entropy_to_the_target_and_hard_labels_still_work():
    logits = torch.tensor([[0.3, -1.2], [2.0, 0.5]])
    targets = torch.tensor([[0.4, 0.6], [1.0, 0.0]])
    loss = soft_target_loss()({"logits": logits}, targets)
    expected = -(targets * torch.log_softmax(logits, -1)).sum(-1).mean()
    assert torch.isclose(loss, expected)
    hard = soft_target_loss()({"logits": logits}, torch.tensor([1, 0]))  # a validation batch without soft labels
    assert torch.isclose(hard, torch.nn.functional.cross_entropy(logits, torch.tensor([1, 0])))


def test_rows_with_a_soft_label_train_towards_it(tmp_path, sample_train):
    english = [r["text"] for r in sample_train if not r["source"].startswith("weibo")]
    soft_texts, hard_texts = english[:6], english[6:12]
    # every row says POSITIVE; the soft rows' target is P(positive) = 0.1, so they must end up below 0.5
    rows = [{"text": t, "label": 1, "soft_label": 0.1} for t in soft_texts] + [{"text": t, "label": 1} for t in hard_texts]
    model = SequenceClassifier()
    assert model._targets(rows[5:7]) == [[0.9, 0.1], [0.0, 1.0]]
    cfg = TrainConfig(method="classifier", output_dir=str(tmp_path / "soft"), max_steps=6, batch_size=12,
                      learning_rate=3e-3, warmup_ratio=0.0, eval_strategy="no", calibrate=False, max_length=32)
    cfg.lora.enabled = True
    model.fit(rows, None, cfg)
    p_soft, p_hard = (softmax(np.asarray(model.logits(t), dtype=np.float64))[:, 1] for t in (soft_texts, hard_texts))
    assert p_soft.mean() < 0.5 < p_hard.mean(), (p_soft, p_hard)  # hard labels only would put both near 1
