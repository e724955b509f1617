"""One atheris process over one target: ``python -m tests.fuzz.worker TARGET [libFuzzer args]``.

Started by ``bench/fuzz.py``. Before fuzzing, the address space is capped at what the process
holds now plus ``RELAY_FUZZ_ALLOC_MB`` (default 256): an input that makes the readers allocate
more fails with MemoryError, which escapes as a finding (or, where a reader turns it into a
refusal, the target calls that a finding too). An input that costs more than
``RELAY_FUZZ_CPU_SECONDS`` (default 1) of CPU is a finding; libFuzzer's own wall-clock
``-timeout`` (set by the runner) catches inputs that block without using CPU. CPU rather than
wall time for the 1 s bound: the runner is niced on a shared machine, where the wall time of one
input says more about the neighbours than about the reader.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable

import atheris

with atheris.instrument_imports(include=["app", "pydicom"]):
    from tests.fuzz.targets import DATA, TARGETS, Finding


def _cap_address_space(extra_mb: int) -> None:
    with open("/proc/self/status") as fp:
        size_kb = next(int(line.split()[1]) for line in fp if line.startswith("VmSize:"))
    limit = size_kb * 1024 + (extra_mb << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _cpu_bounded(run: Callable[[bytes], None], seconds: float) -> Callable[[bytes], None]:
    def bounded(data: bytes) -> None:
        start = time.process_time()
        run(data)
        spent = time.process_time() - start
        if spent > seconds:
            raise Finding(f"one input took {spent:.2f} s of CPU (bound {seconds} s)")
    return bounded


def main() -> None:
    name = sys.argv.pop(1)
    target = TARGETS[name]
    for data in [b"", *list(target.seeds(DATA))[:4]]:  # load lazy imports before the cap
        target.run(data)
    _cap_address_space(int(os.environ.get("RELAY_FUZZ_ALLOC_MB", "256")))
    atheris.Setup(sys.argv, _cpu_bounded(target.run,
                                         float(os.environ.get("RELAY_FUZZ_CPU_SECONDS", "1"))))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
