"""What a result was measured on: the CPU's model and the instruction-set flags that decide its kernels.

Recorded with every result (``jaxsc run``'s JSON, ``benchmarks/speed.py``'s sections): speed ratios against
other libraries change with the CPU (XLA's float32 products ran at 0.88x torch's on one 2-core machine and at
1.8-2.0x on another, an AMD EPYC; bfloat16 products are emulated, and slow, without ``avx512_bf16`` or AMX).
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU in one line, e.g. ``"AMD EPYC (AuthenticAMD, family 26 model 2), 2 cores, avx2 yes, avx512f yes,
    avx512_bf16 yes, amx_bf16 no"``: the first processor of ``cpuinfo`` (Linux) and which of :data:`CPU_FLAGS`
    it lists; without that file, ``platform.processor()`` and the core count."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return f"{platform.processor() or 'unknown CPU'}, {os.cpu_count()} cores"
    info = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        info.setdefault(name.strip(), value.strip())
    flags = set(info.get("flags", "").split())
    listed = ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in CPU_FLAGS)
    return (f"{info.get('model name', 'unknown CPU')} ({info.get('vendor_id', '?')}, family "
            f"{info.get('cpu family', '?')} model {info.get('model', '?')}), {os.cpu_count()} cores, {listed}")
