"""What a result depends on besides its spec: library versions, thread count, the commit."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path


# The environment variables that cap the instruction set torch's and TensorFlow's kernels use (replay
# records them; the golden's lower-ISA perturbation sets them).
ISA_CONTROLS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def versions() -> dict[str, str]:
    """Library versions, torch's thread count and the instruction set its kernels use. The thread count is
    among them: oneDNN splits a convolution's sums differently over 1 and 2 threads, and NewModel2's training
    amplifies the rounding difference (docs/speed.md), so runs with different counts are different results. The
    instruction set for the same reason: AVX2 and AVX-512 kernels round differently (docs/replay.md), so a result
    cache shared by hosts of two CPU classes keeps a run per class, and the ledger says when a night moved."""
    import numpy as np
    import torch

    # plain str: torch.__version__ is a str subclass that pytest-xdist cannot send between processes
    return {"python": platform.python_version(), "torch": str(torch.__version__), "numpy": str(np.__version__),
            "torch_threads": str(torch.get_num_threads()), "isa": str(torch.backends.cpu.get_cpu_capability())}


def _cpuinfo(field: str) -> str | None:
    """The first ``field`` line's value in /proc/cpuinfo (Linux); None where there is none."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


# /proc/cpuinfo flag → the label torch gives the same level (torch.backends.cpu.get_cpu_capability), widest first
_VECTOR_FLAGS = (("avx512f", "AVX512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse4_2", "SSE4.2"))


def host_vector_isa() -> str:
    """The widest vector instruction set this CPU offers, read from its flags (not from a library, so a user's
    cap on one library's kernels does not hide it): libraries that pick their kernels by it (oneDNN, MKL) round
    differently on an AVX-512 host than on the AVX2 host a golden run was written on."""
    flags = _cpuinfo("flags")
    if flags is None:
        return platform.machine() or "unknown"
    return next((label for flag, label in _VECTOR_FLAGS if flag in set(flags.split())), "default")


def git_commit(cwd: Path | None = None) -> str:
    """The checkout's commit, ``+dirty`` when tracked files differ from it (the numbers then come from code no
    commit holds); "unknown" outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        commit = out.stdout.strip()
        if not commit or out.returncode != 0:
            return "unknown"
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True,
                                text=True, timeout=10)
        return f"{commit}+dirty" if status.returncode == 0 and status.stdout.strip() else commit
    except (OSError, subprocess.SubprocessError):
        return "unknown"
