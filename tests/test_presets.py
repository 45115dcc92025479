"""Preset names -> artifact directories."""

from pathlib import Path

import pytest

import sentitune
from sentitune.artifact import read_meta
from sentitune.errors import SentituneError
from sentitune import zoo
from sentitune.methods.router import route_dirs
from sentitune.presets import ACCURATE_ENGLISH, FAST_ENGLISH, PRESETS, preset_path


def test_shipped_presets_are_artifacts():
    assert preset_path("default") == sentitune.DEFAULT_MODEL_PATH
    assert read_meta(preset_path("default")).method == "router"
    fast = preset_path("fast")
    # English -> the static model; Chinese -> the default's character n-grams alone (no e5: it is slow)
    assert read_meta(fast).method == "router" and read_meta(FAST_ENGLISH).method == "static"
    assert route_dirs(fast) == {"zh": route_dirs(preset_path("default"))["zh"].parent / "chinese", "en": FAST_ENGLISH.resolve()}
    model = sentitune.load(fast)
    assert model.predict(["I loved every minute of it.", "Worst purchase I have ever made.",
                          "这部电影太好看了", "太差了，再也不买了"]) == ["POSITIVE", "NEGATIVE", "POSITIVE", "NEGATIVE"]
    assert model.unreadable_warning(["这部电影太好看了"]) is None


@pytest.mark.parametrize("name", ["all-minilm-l6-v2", "runs/model", "Fast", "./fast", Path("models/fast")])
def test_other_names_are_not_presets(name):
    assert preset_path(name) is None


needs_mpnet = pytest.mark.skipif(zoo._mpnet_part_files() is None, reason="sentitune models prepare all-mpnet-base-v2")


@needs_mpnet
def test_accurate_routes_english_to_a_lora_adapter_on_mpnet_and_chinese_like_the_default():
    meta = read_meta(ACCURATE_ENGLISH)
    assert meta.method == "classifier" and meta.base_model == "all-mpnet-base-v2" and "lora" in meta.options
    model = sentitune.load("accurate")
    assert route_dirs(preset_path("accurate")) == {"zh": route_dirs(preset_path("default"))["zh"], "en": ACCURATE_ENGLISH.resolve()}
    assert model.predict(["I loved every minute of it.", "Worst purchase I have ever made.",
                          "The plot was not bad at all.", "这部电影太好看了"]) == ["POSITIVE", "NEGATIVE", "POSITIVE", "POSITIVE"]
    assert model.unreadable_warning(["这部电影太好看了"]) is None


def test_accurate_without_its_base_says_how_to_install_it(monkeypatch):
    # what a user who has not installed the five mpnet parts sees (the parts are located like this)
    monkeypatch.setattr(zoo, "_mpnet_part_files", lambda: None)
    with pytest.raises(SentituneError) as err:
        sentitune.load("accurate")
    assert "\n" not in str(err.value) and "all-mpnet-base-v2 is not installed" in str(err.value)


def test_a_missing_preset_artifact_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setitem(PRESETS, "fast", tmp_path / "nothing-here")
    with pytest.raises(SentituneError, match="rebuild it with scripts/train_fast_model.py"):
        preset_path("fast")


def test_load_and_the_cli_take_a_preset_name(cli):
    assert sentitune.load("fast").meta.method == "router"
    result = cli("predict", "--model-path", "fast", "I loved every minute of it.")
    assert result.exit_code == 0 and result.stdout.startswith("POSITIVE"), result.stderr
    result = cli("predict", "--model-path", "nothing-like-a-preset", "fine")
    assert result.exit_code == 2 and "nothing-like-a-preset" in result.stderr and "Traceback" not in result.stderr


def test_the_server_serves_a_preset_by_name():
    import subprocess
    import sys
    import time

    import httpx
    from conftest import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "sentitune", "serve", "--model-path", "fast", "--no-auth",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stderr.read()
            try:
                if httpx.get(f"{url}/api/v1/health").json().get("status") == "ok":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        r = httpx.post(f"{url}/api/v1/analyze", json={"text": "I loved every minute of it."})
        assert r.status_code == 200 and r.json()["predicted_sentiment"] == "POSITIVE", r.text
        assert httpx.get(f"{url}/api/v1/health").json()["model"]["method"] == "router"
    finally:
        server.terminate()
        server.wait(timeout=30)
