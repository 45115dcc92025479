"""The trainer's precision on a CPU: bf16 autocast only where the CPU computes bf16 natively."""

import pytest

from sentitune.config import TrainConfig
from sentitune.methods.hardware import Hardware
from sentitune.methods.trainer import mixed_precision

FP32 = {"fp16": False, "bf16": False}
ZEN4 = Hardware("AMD EPYC", frozenset("avx2 avx512f avx512_vnni avx512_bf16".split()))
SAPPHIRE_RAPIDS = Hardware("Intel Xeon", frozenset("avx512_bf16 amx_bf16 amx_int8".split()))
ICELAKE = Hardware("Intel Xeon", frozenset("avx2 avx512f avx512_vnni".split()))


def test_cpu_training_autocasts_to_bf16_only_where_the_cpu_has_native_bf16():
    assert mixed_precision(TrainConfig(), ZEN4) == {"fp16": False, "bf16": True}
    assert mixed_precision(TrainConfig(), SAPPHIRE_RAPIDS) == {"fp16": False, "bf16": True}
    assert mixed_precision(TrainConfig(), ICELAKE) == FP32  # emulated bf16 is slower than fp32
    assert mixed_precision(TrainConfig(mixed_precision="no"), ZEN4) == FP32
    assert mixed_precision(TrainConfig(mixed_precision="bf16"), ZEN4) == {"fp16": False, "bf16": True}


def test_a_gpu_precision_asked_of_a_cpu_without_it_warns_and_trains_in_fp32():
    with pytest.warns(UserWarning, match="training in fp32"):
        assert mixed_precision(TrainConfig(mixed_precision="fp16"), ZEN4) == FP32
    with pytest.warns(UserWarning, match="training in fp32"):
        assert mixed_precision(TrainConfig(mixed_precision="bf16"), ICELAKE) == FP32
