"""CPU facts on each platform (helpers/machine.py): a real answer where the OS tells, "unknown" (None)
where it does not, never a guessed "no". Linux is read here; macOS and Windows are simulated."""

import sys

import pytest

import helpers.machine as machine


@pytest.fixture(autouse=True)
def _fresh():
    machine.cpu_has_bf16_instructions.cache_clear()
    machine.cpu_model.cache_clear()
    yield
    machine.cpu_has_bf16_instructions.cache_clear()
    machine.cpu_model.cache_clear()


@pytest.mark.parametrize("flags, expected", [
    ("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16", True),      # AMD EPYC (Zen 4), Intel Cooper Lake
    ("flags\t\t: fpu sse2 avx2 amx_bf16 amx_tile", True),        # Intel Sapphire Rapids
    ("flags\t\t: fpu sse2 avx2 avx512f", False),                 # AVX-512 without bf16
    ("Features\t: fp asimd bf16 i8mm", True),                    # Arm (Graviton 3, Neoverse V1)
    ("Features\t: fp asimd", False),
])
def test_linux_reads_cpuinfo(monkeypatch, flags, expected):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(machine, "_cpuinfo", lambda: f"processor\t: 0\nmodel name\t: Some CPU\n{flags}\n")
    assert machine.cpu_has_bf16_instructions() is expected
    assert machine.cpu_model() == "Some CPU"


@pytest.mark.parametrize("sysctl, expected", [("1", True), ("0", False), (None, None)])
def test_macos_asks_sysctl(monkeypatch, sysctl, expected):
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(machine, "_sysctl", lambda name: sysctl if name == "hw.optional.arm.FEAT_BF16" else "Apple M2")
    assert machine.cpu_has_bf16_instructions() is expected  # M2: yes, M1: no, Intel Mac / old macOS: unknown


def test_windows_says_unknown_not_no(monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    assert machine.cpu_has_bf16_instructions() is None
    assert isinstance(machine.cpu_model(), str)


def test_this_machine_gives_an_answer_of_the_right_kind():
    assert machine.cpu_has_bf16_instructions() in (True, False, None)
    assert machine.cpu_model()
