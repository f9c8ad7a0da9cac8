"""What this CPU does well: its model name and the vector extensions that decide precision and kernels.

bfloat16 arithmetic is native only with AVX-512 BF16 or AMX; elsewhere (AVX2 machines, most
laptops) torch emulates it and a bfloat16 matrix multiply is several times slower than float32.
Every choice of precision goes through `native_bf16()`, and every benchmark records `describe()`.
"""
from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

# /proc/cpuinfo flag → the name a person knows it by, in the order they matter here.
EXTENSIONS = {"avx2": "AVX2", "fma": "FMA", "avx512f": "AVX-512", "avx512_vnni": "AVX-512 VNNI",
              "avx_vnni": "AVX-VNNI", "avx512_bf16": "AVX-512 BF16", "amx_bf16": "AMX BF16", "amx_int8": "AMX INT8"}


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset[str]]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), frozenset()
    model, flags = platform.processor() or platform.machine(), frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
            model = value.strip()
        elif key.strip() in ("flags", "Features") and not flags:
            flags = frozenset(value.split())
    return model, flags


def extensions() -> list[str]:
    """The vector extensions of EXTENSIONS this CPU has, by their usual names."""
    flags = _cpuinfo()[1]
    return [name for flag, name in EXTENSIONS.items() if flag in flags]


def native_bf16() -> bool:
    """True where bfloat16 matrix arithmetic runs in hardware (AVX-512 BF16 or AMX).

    torch's ATEN_CPU_CAPABILITY (e.g. avx2) and oneDNN's ONEDNN_MAX_CPU_ISA (e.g. AVX2) cap what
    torch uses, so a capped run on an AVX-512 machine takes the AVX2 choices, as it should."""
    capped = os.environ.get("ATEN_CPU_CAPABILITY", "").lower() in ("avx2", "default") or \
        os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper().startswith(("AVX2", "SSE"))
    flags = _cpuinfo()[1]
    return not capped and bool(flags & {"avx512_bf16", "amx_bf16"})


def float_dtype(choice: str = "auto") -> str:
    """The float type to compute in: 'auto' is bfloat16 where it is native, float32 where it would
    be emulated (there a 289-token prefill took 4-5x longer in bf16; docs/benchmarks.md)."""
    if choice != "auto":
        return choice
    return "bfloat16" if native_bf16() else "float32"


def describe() -> dict:
    """For benchmark reports: the CPU, its extensions, cores, torch's threads where torch is loaded."""
    import sys

    info = {"cpu": _cpuinfo()[0], "extensions": extensions(), "cores": os.cpu_count(),
            "python": platform.python_version(), "platform": platform.platform()}
    for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"):
        if os.environ.get(name):
            info[name] = os.environ[name]
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch_threads"] = torch.get_num_threads()
        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return info
