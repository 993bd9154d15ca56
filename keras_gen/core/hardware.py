"""What the machine can compute fast, where it changes what a user should choose.

Mixed bfloat16 speeds training up only where the processor has bfloat16
instructions (x86: AVX512-BF16 or AMX; GPUs with bfloat16 units). Without
them TensorFlow emulates bfloat16 arithmetic: on a 2-core AMD EPYC without
AVX-512, one training step of the ddpm_mnist UNet took 10x as long in mixed
bfloat16 as in float32 (30.7 s vs 3.0 s at batch 32, beside another training
run), while on a CPU with the instructions it was 1.2x faster (BENCHMARKS.md,
diffusion throughput).
"""

from __future__ import annotations

import functools
import warnings

BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


class SlowPrecisionWarning(UserWarning):
    """A dtype policy this machine computes much more slowly than float32."""


def cpu_flags(path="/proc/cpuinfo"):
    """The processor's feature flags (Linux), or None where they cannot be read."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


@functools.lru_cache(maxsize=1)
def bfloat16_is_emulated():
    """True when training would run on a CPU known to lack bfloat16 instructions
    (and no GPU is visible); False when it has them, or when it cannot be told."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return False
    flags = cpu_flags()
    return flags is not None and not flags.intersection(BFLOAT16_CPU_FLAGS)


def warn_if_slow_policy(policy, owner):
    """Warn once per call site when `policy` computes in bfloat16 on a machine that emulates it."""
    name = getattr(policy, "name", policy)
    if name and "bfloat16" in str(name) and bfloat16_is_emulated():
        warnings.warn(
            f"{owner}: dtype policy {name!r} on a CPU without bfloat16 instructions (no AVX512-BF16 or AMX): "
            "bfloat16 is emulated here and training can be ~10x slower than float32; "
            "use dtype_policy='float32' on this machine.",
            SlowPrecisionWarning,
            stacklevel=3,
        )
