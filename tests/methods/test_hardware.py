"""The inference path chosen from CPU flags: native bf16 only where the CPU has it."""

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


def test_info_names_the_cpu_and_the_chosen_path(cli):
    result = cli("info")
    assert result.exit_code == 0, result.stderr
    assert detect().cpu in result.stdout
    assert f"auto -> {choose_precision(detect()).precision}" in result.stdout
    assert "serve, default model: " in result.stdout  # the path the server takes, after the agreement check


def test_bf16_is_kept_only_where_it_agrees_with_fp32(tmp_path):
    from sentitune.methods.hardware import AGREEMENT_BAR, cached_agreement, record_agreement, verified_choice

    # a CPU without native bf16 stays on fp32 whatever was measured
    assert verified_choice(hw(ICELAKE), 1.0).precision == "fp32"
    assert verified_choice(hw(HASWELL), None).precision == "fp32"
    assert verified_choice(hw(ZEN4), 0.999).precision == "bf16"
    low = verified_choice(hw(ZEN4), AGREEMENT_BAR - 0.001)
    assert low.precision == "fp32" and "held-out" in low.reason
    # measured once per artifact and CPU kind: another CPU kind has no record yet
    assert cached_agreement(tmp_path, "abc", hw(ZEN4)) is None
    record_agreement(tmp_path, "abc", hw(ZEN4), 0.998, 400)
    assert cached_agreement(tmp_path, "abc", hw(ZEN4)) == 0.998
    assert cached_agreement(tmp_path, "abc", hw(SAPPHIRE_RAPIDS)) is None
    assert cached_agreement(tmp_path, "other", hw(ZEN4)) is None
