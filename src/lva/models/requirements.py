"""What a profile's models need from a machine, checked before anything downloads.

The ``paper`` profile adds hub checkpoints of up to 8B parameters (:data:`lva.config.PAPER_MODELS`).
:func:`preflight` refuses in one line, naming the model and the fix, when this machine cannot
hold one of them (:func:`check_memory`, from :mod:`lva.models.memory`: bfloat16 on a GPU, float32
on a CPU), when the hub
cannot be reached for one that is not cached here, or when a gated model's licence has not been
accepted (:func:`check_hub`); then it downloads the missing ones into the Hugging Face cache
(:func:`fetch`), where the chapters find them. It also sizes the GPU batches (:func:`cuda_batch_size`) and gives the
estimates of the reproduce page (:func:`requirements_table`), labelled as estimates: a run's
ledger entry replaces them.

``python -m lva.models.requirements --profile paper`` runs :func:`preflight` alone (``--check-only``:
without downloading); ``python3 src/lva/models/memory.py --profile paper`` runs the memory check
alone, with the standard library, before anything is installed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from lva.errors import BadInput, guarded

from . import memory
from .availability import is_available
from .memory import BYTES_PER_PARAMETER, OVERHEAD, Machine, memory_needed, profile_models
from .memory import MachineTooSmall as MachineTooSmall  # re-exported: what preflight raises
from .memory import dtype_on as dtype_on
from .registry import ECHO_TEMPLATE, PROMPT_TEMPLATE, ModelSpec, get_spec

#: Assumptions of the time estimates (not measurements): sustained bfloat16 throughput of one
#: modern data-centre GPU on short batched sentences, and the rate weights are read from a local disk.
GPU_FLOPS = 1e14
DISK_BYTES_PER_S = 1e9
#: The largest GPU batch :func:`cuda_batch_size` picks (the instructions are a few hundred short texts).
MAX_BATCH = 512
_GB = 1e9


class HubUnreachable(BadInput, RuntimeError):
    """A model is not cached here and the Hugging Face hub cannot be reached (offline, or no network)."""


class GatedModel(BadInput, RuntimeError):
    """A gated model whose licence this account has not accepted (or no account is logged in)."""


def this_machine() -> Machine:
    """This machine: the first GPU's free memory when torch sees one, else the total RAM."""
    import torch

    if torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info(0)
        return Machine("cuda", torch.cuda.get_device_name(0), int(free))
    return Machine("cpu", "no GPU", memory.total_ram())


def check_memory(names: Sequence[str], machine: Machine | None = None) -> None:
    """:func:`lva.models.memory.check_memory` of ``names`` on ``machine`` (default: :func:`this_machine`):
    ``MachineTooSmall``, in one line, when one of them does not fit."""
    memory.check_memory(names, machine or this_machine())


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def check_hub(names: Sequence[str]) -> list[str]:
    """The hub models of ``names`` that are not cached here (returned: they will download), after
    checking that each can be: ``HubUnreachable`` when the hub is off (``HF_HUB_OFFLINE``) or
    cannot be reached, ``GatedModel`` when a gated model's licence is not accepted. Each error is
    one line naming the model and the fix. Reads metadata only: nothing is downloaded."""
    missing = [get_spec(n) for n in names if get_spec(n).hub_id and not is_available(n)]
    for spec in missing:
        download = f"`hf download {spec.hub_id}`"
        if _hub_offline():
            raise HubUnreachable(
                f"{spec.name} ({spec.hub_id}) is not in this machine's Hugging Face cache and the hub is off "
                f"(HF_HUB_OFFLINE={os.environ['HF_HUB_OFFLINE']}): unset HF_HUB_OFFLINE on a machine that can reach "
                f"the hub, or run {download} where it can and copy its cache (HF_HOME) here"
            )
        from huggingface_hub import auth_check
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

        try:
            auth_check(spec.hub_id)
        except GatedRepoError:
            raise GatedModel(
                f"{spec.name} ({spec.hub_id}) is gated and this account has not accepted its licence "
                f"({spec.licence}): accept it at https://huggingface.co/{spec.hub_id}, then log in with "
                f"`hf auth login` (or set HF_TOKEN) and run again"
            ) from None
        except RepositoryNotFoundError:
            raise GatedModel(
                f"{spec.name} ({spec.hub_id}) is not visible to this account (not logged in, or no access): "
                f"log in with `hf auth login` (or set HF_TOKEN), accept its licence at "
                f"https://huggingface.co/{spec.hub_id} if it has one, and run again"
            ) from None
        except Exception as err:  # noqa: BLE001 - no connection, a proxy, a DNS failure: all one refusal
            reason = " ".join(str(err).split())[:160] or type(err).__name__
            raise HubUnreachable(
                f"{spec.name} ({spec.hub_id}) is not cached here and the hub cannot be reached ({reason}): check the "
                f"network (or HF_ENDPOINT), or run {download} on a machine that can and copy its cache "
                f"(HF_HOME) here"
            ) from None
    return [s.name for s in missing]


def weight_files(files: Sequence[str]) -> list[str]:
    """The ``allow_patterns`` that fetch a checkpoint once: its configs, tokenizer and safetensors
    weights (``.bin`` only where a repository has no safetensors), never the other formats
    (TensorFlow, Flax, ONNX, the ``original/`` consolidated copies)."""
    top = [f for f in files if not f.startswith("original/")]
    weights = "*.safetensors*" if any(f.endswith(".safetensors") for f in top) else "*.bin*"
    return ["*.json", "*.txt", "*.model", "tokenizer*", weights]


def fetch(names: Sequence[str]) -> None:
    """Download the hub models of ``names`` into the Hugging Face cache (:func:`weight_files`
    only), one line each on stderr, so that the chapters then load them from the cache."""
    from huggingface_hub import HfApi, snapshot_download

    from .availability import hub_cache_dir

    for name in names:
        spec = get_spec(name)
        print(f"downloading {name} ({spec.hub_id}) into the Hugging Face cache ...", file=sys.stderr, flush=True)
        patterns = weight_files(HfApi().list_repo_files(spec.hub_id))
        snapshot_download(
            spec.hub_id, allow_patterns=patterns, ignore_patterns=["original/*"], cache_dir=hub_cache_dir()
        )


def preflight(profile: str, machine: Machine | None = None, download: bool = True) -> list[str]:
    """Refuse in one line, before anything downloads, a profile this machine cannot run
    (:func:`check_memory`, then :func:`check_hub`); then, with ``download``, :func:`fetch` the
    models not cached here. Returns those models."""
    names = profile_models(profile)
    check_memory(names, machine)
    missing = check_hub(names)
    if download and missing:
        fetch(missing)
    return missing


# ------------------------------------------------------------------------------------------------
# GPU batches and the estimates of the reproduce page
# ------------------------------------------------------------------------------------------------


def activation_bytes(loaded: Any, tokens: int) -> int:
    """Bytes one text of ``tokens`` tokens holds during :func:`lva.models.encode_poolings`: the
    hidden states of every layer in the model's dtype plus their float32 copy, with :data:`OVERHEAD`."""
    cfg = loaded.model.config
    per_token = (int(cfg.num_hidden_layers) + 1) * int(cfg.hidden_size)
    size = next(loaded.model.parameters()).element_size()
    return int(per_token * tokens * (size + 4) * OVERHEAD)


def cuda_batch_size(loaded: Any, tokens: int, free: int | None = None) -> int:
    """Texts per batch on a GPU: half the free GPU memory (``free``, bytes; when not given, what
    the device has free plus what torch holds unused) over :func:`activation_bytes` of the longest
    text, between 1 and :data:`MAX_BATCH`."""
    if free is None:
        import torch

        device = loaded.model.device
        unused = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        free = torch.cuda.mem_get_info(device)[0] + unused
    return max(1, min(MAX_BATCH, int(free // 2 // max(1, activation_bytes(loaded, tokens)))))


def tokens_per_pass(spec: ModelSpec, texts: Sequence[str]) -> int:
    """An estimate of the tokens the embedding passes of ``spec`` read: every text in every
    pooling's prompt, at four characters per token."""
    templates = {{"echo": ECHO_TEMPLATE, "prompt": PROMPT_TEMPLATE}.get(p, "{s}") for p in spec.all_poolings}
    return sum(len(t.format(s=s)) // 4 + 2 for t in templates for s in texts)


def estimated_seconds(name: str | ModelSpec, tokens: int) -> float:
    """An estimate (not a measurement) of one model's time on one GPU: reading its weights at
    :data:`DISK_BYTES_PER_S` plus forward passes of ``2 * parameters * tokens`` FLOPs at :data:`GPU_FLOPS`."""
    spec = get_spec(name)
    params = spec.parameters or 0
    return params * BYTES_PER_PARAMETER[spec.dtype] / DISK_BYTES_PER_S + 2 * params * tokens / GPU_FLOPS


def requirements_table(profile: str = "paper") -> list[dict[str, Any]]:
    """One row per model a profile adds: hub id, parameters, the memory it needs in bfloat16 on a
    GPU and in float32 on a CPU (:func:`memory_needed`) and the estimated
    time on one GPU (:func:`estimated_seconds` over the 396 instructions)."""
    from lva.instructions import all_instructions

    texts = [i.text for i in all_instructions()]
    rows = []
    for name in profile_models(profile):
        spec = get_spec(name)
        rows.append(
            {
                "model": name,
                "parameters (B)": round((spec.parameters or 0) / 1e9, 2),
                "GPU memory (GB)": round(memory_needed(spec, spec.dtype) / _GB, 1),
                "GPU dtype": spec.dtype,
                "CPU memory, float32 (GB)": round(memory_needed(spec, "float32") / _GB, 1),
                "estimated GPU time (s)": round(estimated_seconds(spec, tokens_per_pass(spec, texts)), 1),
            }
        )  # its source and licence are on the models page
    return rows


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def requirements_markdown(
    profile: str = "paper", measured: Mapping[str, Mapping[str, Any]] | None = None, measured_on: str = ""
) -> str:
    """:func:`requirements_table` as the Markdown table of the reproduce page, followed by the
    assumptions of its estimates (the page includes it from ``book/_generated/``). ``measured``: a
    run's ledger entry per model (:func:`lva.ledger.model_timings`), made on ``measured_on``: its
    device, load and embedding seconds and peak GPU memory become three more columns."""
    rows = requirements_table(profile)
    if measured:
        for row in rows:
            run = measured.get(row["model"]) or {}
            peak = run.get("peak_gpu_gb")
            row["measured device"] = run.get("device") or "–"
            times = f"{_seconds(run.get('load_s'))} + {_seconds(run.get('embed_s'))}"
            row["measured load + embed (s)"] = times if run else "–"
            row["measured peak GPU memory (GB)"] = "–" if peak is None else f"{peak:.1f}"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(f"`{v}`" if c == "model" else str(v) for c, v in r.items()) + " |" for r in rows]
    estimate = (
        f"\n\nMemory: the weights at the published parameter count times {OVERHEAD} (activations, the CUDA "
        f"context). Time: an **estimate**, not a measurement, for one model on one GPU: its weights read at "
        f"{DISK_BYTES_PER_S / 1e9:g} GB/s plus 2 x parameters x tokens FLOPs (every instruction in every pooling's "
        f"prompt) at {GPU_FLOPS / 1e12:g} TFLOP/s; downloading is not included. A run's ledger entry replaces it."
    )
    if not measured:
        return "\n".join(lines) + estimate + f" No `{profile}` run with its models' times is in the ledger yet.\n"
    return (
        "\n".join(lines)
        + estimate
        + (
            f"\n\n**Measured** (the last three columns): the latest `{profile}` run in the ledger, {measured_on}. Each "
            f"model's seconds loading its weights and running its embedding passes (every pooling, every layer), "
            f"and the peak GPU memory of its largest pass (– on a CPU), read from its embeddings' cache records.\n"
        )
    )


@guarded
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lva.models.requirements``: :func:`preflight` of a profile, one line either way."""
    from lva.config import ALL_PROFILES

    parser = argparse.ArgumentParser(prog="python -m lva.models.requirements", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=ALL_PROFILES, default="paper", help="config profile (default: paper)")
    parser.add_argument("--check-only", action="store_true", help="check, but download nothing")
    args = parser.parse_args(argv)
    missing = preflight(args.profile, download=not args.check_only)
    print(
        f"{args.profile}: this machine can hold every model; "
        + (
            f"{'not cached here' if args.check_only else 'downloaded'}: {', '.join(missing)}"
            if missing
            else "every model is cached here"
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
