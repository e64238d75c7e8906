"""Whether this machine can hold a profile's models, decided with the standard library alone.

``make book PROFILE=paper`` runs this file by path with the system ``python3`` before it installs
anything (``python3 -I src/lva/models/memory.py --profile paper``), so that a machine that cannot
hold the paper's models is refused in one line before any download. The parameter counts come
from the registry (:mod:`lva.models.registry`, loaded on its own when run by path, without the
package's torch imports); the memory from ``nvidia-smi`` (the first visible GPU's free memory)
or, without a GPU, the total RAM. :mod:`lva.models.requirements` runs the same check through
torch once it is installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__:  # imported as lva.models.memory (the package is loaded)
    from .registry import ModelSpec, get_spec
else:  # run by path: the registry alone, without lva.models' imports (torch, transformers)
    import importlib.util

    _SRC = str(Path(__file__).resolve().parents[2])
    _HERE = Path(__file__).resolve().parent  # its modules must not shadow the standard library's
    sys.path[:] = [_SRC, *(p for p in sys.path if Path(p or ".").resolve() != _HERE)]
    _spec = importlib.util.spec_from_file_location("lva.models.registry", Path(__file__).with_name("registry.py"))
    assert _spec is not None and _spec.loader is not None
    _registry = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = _registry  # dataclasses resolve the module of ModelSpec while it is defined
    _spec.loader.exec_module(_registry)
    ModelSpec, get_spec = _registry.ModelSpec, _registry.get_spec

from lva.errors import BadInput, guarded

#: Bytes per parameter of each dtype a model runs in.
BYTES_PER_PARAMETER = {"float32": 4, "bfloat16": 2, "float16": 2}
#: Memory on top of the weights while a model embeds (activations of every layer, the CUDA context,
#: loading buffers): a margin chosen here, not a measurement.
OVERHEAD = 1.2
_GB = 1e9
_MIB = 2**20


class MachineTooSmall(BadInput, RuntimeError):
    """A model does not fit this machine's memory (GPU memory when there is a GPU, else RAM)."""


@dataclass(frozen=True)
class Machine:
    """Where the models would run: ``device`` (``cuda`` or ``cpu``), its ``name`` and the memory
    ``available`` to a model (free GPU memory, or total RAM on a CPU-only machine), in bytes."""

    device: str
    name: str
    available: int


def dtype_on(spec: ModelSpec, device: str) -> str:
    """The dtype ``spec`` runs in on ``device``: its registered dtype on CUDA, float32 on a CPU (as
    :mod:`lva.models.loaders` loads it)."""
    return spec.dtype if device.startswith("cuda") else "float32"


def memory_needed(name: str | ModelSpec, dtype: str) -> int:
    """Bytes a model needs to embed in ``dtype``: its weights (published parameter count) times
    :data:`OVERHEAD`; 0 when the registry has no parameter count (controls, static vectors)."""
    spec = get_spec(name)
    return int(round((spec.parameters or 0) * BYTES_PER_PARAMETER[dtype] * OVERHEAD))


def gb(n: float) -> str:
    """Bytes as ``"<n> GB"`` with one decimal, as the refusals print them."""
    return f"{n / _GB:.1f} GB"


def check_memory(names: Sequence[str], machine: Machine) -> None:
    """``MachineTooSmall`` (one line: the largest model that does not fit, what it needs in
    bfloat16 on a GPU and in float32 on a CPU, what ``machine`` has, and the others that do not
    fit) when a model of ``names`` needs more memory than ``machine`` has."""
    need = {n: memory_needed(n, dtype_on(get_spec(n), machine.device)) for n in names}
    too_big = sorted((n for n in names if need[n] > machine.available), key=need.get, reverse=True)
    if not too_big:
        return
    worst = get_spec(too_big[0])
    found = (
        f"this machine has {gb(machine.available)} of free GPU memory ({machine.name})"
        if machine.device == "cuda"
        else f"this machine has no GPU and {gb(machine.available)} of RAM"
    )
    others = f"; {', '.join(too_big[1:])} do not fit either" if len(too_big) > 1 else ""
    raise MachineTooSmall(
        f"{worst.name} ({worst.hub_id or worst.source}) needs {gb(memory_needed(worst, worst.dtype))} in "
        f"{worst.dtype} on a GPU ({gb(memory_needed(worst, 'float32'))} in float32 on a CPU), but {found}{others}; "
        f"run it on a GPU with at least {gb(memory_needed(worst, worst.dtype))} free"
    )


def profile_models(profile: str) -> list[str]:
    """The models a profile adds to the default zoo that have a parameter count (what :func:`check_memory` checks)."""
    from lva.config import get_config

    return [n for n in get_config(profile).extra_models if get_spec(n).parameters]


def total_ram() -> int:
    """This machine's total RAM in bytes (``MemTotal`` of ``/proc/meminfo``, else ``sysconf``)."""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def nvidia_gpu(smi: str | None = None) -> tuple[str, int] | None:
    """(name, free bytes) of the first GPU CUDA would use (the first of ``CUDA_VISIBLE_DEVICES``),
    read with ``nvidia-smi`` (``smi``: its path); None when there is none, or no working driver."""
    smi = smi or shutil.which("nvidia-smi")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if smi is None or (visible is not None and visible.strip() in ("", "-1")):
        return None
    query = [smi, "--query-gpu=name,memory.free", "--format=csv,noheader,nounits"]
    first = visible.split(",")[0].strip() if visible else ""
    for command in ([*query, f"--id={first}"], query) if first else (query,):
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return None
        rows = [line.rsplit(",", 1) for line in out.stdout.splitlines() if line.count(",") >= 1]
        if out.returncode == 0 and rows:
            try:
                return rows[0][0].strip(), int(float(rows[0][1])) * _MIB
            except ValueError:
                return None
    return None


def system_machine() -> Machine:
    """This machine without torch: the first visible GPU's free memory (:func:`nvidia_gpu`), else the total RAM."""
    gpu = nvidia_gpu()
    return Machine("cuda", gpu[0], gpu[1]) if gpu else Machine("cpu", "no GPU", total_ram())


@guarded
def main(argv: Sequence[str] | None = None) -> int:
    """``python3 src/lva/models/memory.py``: :func:`check_memory` of a profile on this machine, one line either way."""
    from lva.config import ALL_PROFILES

    parser = argparse.ArgumentParser(prog="python3 src/lva/models/memory.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=ALL_PROFILES, default="paper", help="config profile (default: paper)")
    args = parser.parse_args(argv)
    machine = system_machine()
    names = profile_models(args.profile)
    check_memory(names, machine)
    where = (
        f"{gb(machine.available)} free on {machine.name}"
        if machine.device == "cuda"
        else f"no GPU, {gb(machine.available)} of RAM"
    )
    print(f"{args.profile}: this machine ({where}) has the memory for every model of the profile")
    return 0


if __name__ == "__main__":
    sys.exit(main())
