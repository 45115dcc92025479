"""Shared fixtures: the bundled sample and small real models trained once per session."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

from sentitune.data import read_jsonl, sample_path


@pytest.fixture(scope="session")
def sample_train() -> list[dict]:
    return read_jsonl(sample_path("train"))


@pytest.fixture(scope="session")
def sample_test() -> list[dict]:
    return read_jsonl(sample_path("test"))


@pytest.fixture(scope="session")
def tfidf_model_dir(tmp_path_factory, sample_train):
    """A real tfidf model trained on the bundled sample (seconds): the fast model for API/scale tests."""
    from sentitune.methods.tfidf import TfidfModel

    out = tmp_path_factory.mktemp("tfidf")
    TfidfModel().fit(sample_train).save(out)
    return out
