"""The machine a result records: the CPU line read from /proc/cpuinfo (or a file in its format)."""
from jaxsc._src.machine import CPU_FLAGS, cpu_description

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8480C
flags\t\t: fpu sse2 avx2 avx512f amx_bf16
processor\t: 1
model name\t: another line, ignored
"""


def test_cpu_description_names_the_first_processor_and_its_flags(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    text = cpu_description(path)
    assert text.startswith("Intel(R) Xeon(R) Platinum 8480C (GenuineIntel, family 6 model 143), ")
    assert text.endswith("cores, avx2 yes, avx512f yes, avx512_bf16 no, amx_bf16 yes")
    assert all(f"{flag} " in text for flag in CPU_FLAGS)


def test_cpu_description_without_cpuinfo_still_names_the_cores(tmp_path):
    assert "cores" in cpu_description(tmp_path / "absent")
