"""The inference path chosen from CPU flags: native bf16 only where the CPU has it."""

import pytest

from sentitune.methods.hardware import Hardware, choose_precision, detect, parse_cpuinfo

SAPPHIRE_RAPIDS = "avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_int8 amx_tile"
ZEN4 = "avx2 avx512f avx512_vnni avx512_bf16"
ICELAKE = "avx2 avx512f avx512_vnni"
HASWELL = "avx2 fma"


def hw(flags: str, cuda: bool = False) -> Hardware:
    return Hardware("test CPU", frozenset(flags.split()), cuda)


def test_bf16_only_where_the_cpu_computes_it_natively():
    assert choose_precision(hw(SAPPHIRE_RAPIDS)).precision == "bf16"
    assert choose_precision(hw(ZEN4)).precision == "bf16"
    assert choose_precision(hw(ICELAKE)).precision == "fp32"
    assert choose_precision(hw(HASWELL)).precision == "fp32"
    assert "no AMX or AVX512-BF16" in choose_precision(hw(HASWELL)).reason


def test_cuda_keeps_fp32_weights():
    assert choose_precision(hw(SAPPHIRE_RAPIDS, cuda=True)).precision == "fp32"


def test_cpuinfo_parsing_and_this_machine():
    cpu, flags = parse_cpuinfo("processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu avx512_bf16 avx2\n")
    assert cpu == "AMD EPYC 9R14" and {"avx512_bf16", "avx2"} <= flags and "amx_bf16" not in flags
    here = detect()
    assert here.cpu and here.describe().startswith(here.cpu)


def test_auto_precision_falls_back_to_fp32_on_a_cpu_without_native_bf16(monkeypatch):
    from sentitune.methods import engine, hardware

    monkeypatch.setattr(hardware, "detect", lambda: hw(ICELAKE))
    assert engine.resolve_precision("auto") == "fp32"
    monkeypatch.setattr(hardware, "detect", lambda: hw(ZEN4))
    assert engine.resolve_precision("auto") == "bf16"
    monkeypatch.setenv("SENTITUNE_PRECISION", "auto")
    assert engine.resolve_precision(None) == "bf16"


def test_info_names_the_cpu_and_the_chosen_path(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("SENTITUNE_CACHE", str(tmp_path))
    monkeypatch.setenv("SENTITUNE_PRECISION", "auto")
    result = cli("info")
    assert result.exit_code == 0, result.stderr
    assert detect().cpu in result.stdout
    assert f"the CPU -> {choose_precision(detect()).precision}" in result.stdout
    # what sentitune.load() runs, before the agreement check has been measured in this cache
    expected = "not yet measured" if choose_precision(detect()).precision == "bf16" else "default model runs: fp32"
    assert "default model runs: " in result.stdout and expected in result.stdout
    assert "forward pass: a frozen TorchScript graph" in result.stdout


def test_load_picks_the_verified_path_and_falls_back_to_fp32_without_native_bf16(monkeypatch, tmp_path):
    """`sentitune.load()` under auto: bf16 only where the CPU has it and it agreed with fp32 (measured
    once, then read from the cache); a CPU without AMX/AVX512-BF16 gets fp32 weights and says why."""
    import torch

    import sentitune
    from sentitune.methods import hardware

    monkeypatch.setenv("SENTITUNE_CACHE", str(tmp_path))
    monkeypatch.setenv("SENTITUNE_PRECISION", "auto")
    english = sentitune.ENGLISH_MODEL_PATH
    model = sentitune.load(english)
    native = choose_precision(detect()).precision
    if native == "bf16":
        assert model.inference_path.startswith(("bf16 (", "fp32 (bf16")) and "held-out texts" in model.inference_path
        assert len(list((tmp_path / "precision").glob("*.json"))) == 1
        # the second load reads the recorded agreement instead of measuring again
        monkeypatch.setattr(hardware, "heldout_texts", lambda n=400: pytest.fail("agreement measured twice"))
        again = sentitune.load(english)
        assert again.inference_path == model.inference_path and again.model.dtype == model.model.dtype
    monkeypatch.setattr(hardware, "detect", lambda: hw(ICELAKE))
    fallback = sentitune.load(english)
    assert fallback.model.dtype == torch.float32 and fallback.inference_path.startswith("fp32 (the CPU has no AMX")
    asked = sentitune.load(english, precision="bf16")
    assert asked.model.dtype == torch.bfloat16 and asked.inference_path == "bf16 (precision='bf16')"


def test_bf16_is_kept_only_where_it_agrees_with_fp32_and_is_not_slower(tmp_path):
    from sentitune.methods.hardware import AGREEMENT_BAR, Measurement, cached_measurement, record_measurement, verified_choice

    # a CPU without native bf16 stays on fp32 whatever was measured
    assert verified_choice(hw(ICELAKE), Measurement(1.0, 100, 300)).precision == "fp32"
    assert verified_choice(hw(HASWELL), None).precision == "fp32"
    assert verified_choice(hw(ZEN4), Measurement(0.999, 250, 420)).precision == "bf16"
    low = verified_choice(hw(ZEN4), Measurement(AGREEMENT_BAR - 0.001, 250, 420))
    assert low.precision == "fp32" and "held-out" in low.reason
    # AVX512-BF16 without AMX, where oneDNN's bf16 kernels lost to fp32 (measured: 475 vs 714 texts/s)
    slow = verified_choice(hw(ZEN4), Measurement(0.999, 714, 475))
    assert slow.precision == "fp32" and "slower" in slow.reason and "475 vs 714" in slow.reason
    # measured once per artifact and CPU kind: another CPU kind has no record yet
    assert cached_measurement(tmp_path, "abc", hw(ZEN4)) is None
    record_measurement(tmp_path, "abc", hw(ZEN4), Measurement(0.998, 250.0, 420.0), 400)
    assert cached_measurement(tmp_path, "abc", hw(ZEN4)) == Measurement(0.998, 250.0, 420.0)
    assert cached_measurement(tmp_path, "abc", hw(SAPPHIRE_RAPIDS)) is None
    assert cached_measurement(tmp_path, "other", hw(ZEN4)) is None
