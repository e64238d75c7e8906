"""The ``paper`` profile: the paper's families on one GPU, refused in one line where they cannot run.

End to end, offline: tiny randomly initialised models of each real class (Llama, Qwen2, BERT,
CLIP, BLIP) with a word-level tokenizer over the instruction vocabulary are saved under the
profile's hub ids in a local Hugging Face cache, the hub is switched off, and the profile's
pipeline runs from the embeddings to the verdicts in a test-sized configuration. The refusals
(memory, no hub, gated licence) are simulated: nothing here reaches a network.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import tiny_tokenizer

from lva import embeddings as E
from lva import loaded as L
from lva import models as M
from lva import pipeline
from lva.catalogue import family_of
from lva.config import PAPER_MODELS, STAGES, get_config
from lva.models import memory as MEM
from lva.models import requirements as R

#: The real class of each paper checkpoint, built tiny.
KINDS = {
    "llama-3.1-8b": "llama",
    "deepseek-llm-7b": "llama",
    "qwen2.5-7b": "qwen2",
    "bert-base": "bert",
    "bert-large": "bert",
    "clip-vit-l14": "clip",
    "blip-itm-base": "blip",
}
SMALL = {
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "max_position_embeddings": 64,
}
#: A test-sized paper profile: the full profile's settings scaled down, its models unchanged.
TEST_SIZE = {
    "agent_seeds": (0, 1),
    "threads": 1,
    "agent__vision": "grid",
    "checks__compare_visions": (),
    "agent__token_dim": 16,
    "agent__embed_dim": 16,
    "agent__heads": 2,
    "agent__mlp_dim": 32,
    "agent__channels": 8,
    "agent__hidden": 16,
    "agent__direction_dim": 4,
    "demos__episodes_per_task": 6,
    "train__epochs": 1,
    "train__monitor_episodes_per_task": 1,
    "checks__eval_episodes_per_task": 3,
    "ground__episodes_per_task": 4,
    "ground__epochs": 1,
    "ground__batch_size": 4,
    "ground__width": 4,
    "ground__pool_size": 4,
    "align__n_perm": 5,
    "align__n_perm_retrieval": 2,
    "align__n_boot": 0,
}
GB = 1e9


def _tiny_model(kind: str):
    """A tiny model of the class the real checkpoint holds, and its tokenizer."""
    import transformers as tf

    torch.manual_seed(0)
    if kind in ("llama", "qwen2"):
        tok, v = tiny_tokenizer("<s> $A", "<s>", "</s>")
        llama = kind == "llama"
        cfg_cls, cls = (tf.LlamaConfig, tf.LlamaForCausalLM) if llama else (tf.Qwen2Config, tf.Qwen2ForCausalLM)
        return cls(cfg_cls(vocab_size=v, num_key_value_heads=2, pad_token_id=0, **SMALL)), tok
    if kind == "bert":
        tok, v = tiny_tokenizer("[CLS] $A [SEP]")
        return tf.BertModel(tf.BertConfig(vocab_size=v, pad_token_id=0, **SMALL)), tok
    vision = {**SMALL, "image_size": 8, "patch_size": 4}
    if kind == "clip":  # CLIPModel, as openai/clip-vit-large-patch14: the loader reads its text tower
        tok, v = tiny_tokenizer("$A </s>", "<s>", "</s>")
        text = {**SMALL, "vocab_size": v, "pad_token_id": 0, "bos_token_id": 4, "eos_token_id": 5}
        return tf.CLIPModel(tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=8)), tok
    # BlipForImageTextRetrieval, as Salesforce/blip-itm-base-coco: the loader reads its text encoder
    tok, v = tiny_tokenizer("[CLS] $A [SEP]")
    text = {**SMALL, "vocab_size": v, "pad_token_id": 0, "encoder_hidden_size": 16}
    return tf.BlipForImageTextRetrieval(
        tf.BlipConfig(text_config=text, vision_config=vision, image_text_hidden_size=8)
    ), tok


def build_hub(root: Path, names=PAPER_MODELS) -> Path:
    """A local Hugging Face hub cache holding a tiny model under each hub id of ``names`` (the
    layout huggingface_hub reads: ``models--org--name/refs/main`` -> ``snapshots/<commit>/``)."""
    made: dict[str, Path] = {}
    for name in names:
        spec = M.get_spec(name)
        repo = root / ("models--" + spec.hub_id.replace("/", "--"))
        commit = f"{len(made):040x}"
        snapshot = repo / "snapshots" / commit
        kind = KINDS[name]
        if kind not in made:
            model, tok = _tiny_model(kind)
            model.eval().save_pretrained(snapshot)
            tok.save_pretrained(snapshot)
            made[kind] = snapshot
        else:
            import shutil

            shutil.copytree(made[kind], snapshot)
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(commit)
    return root


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """The paper's models in a local hub cache, the hub off, every cache in ``tmp_path``."""
    hub = build_hub(tmp_path / "hub")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LVA_CACHE", str(tmp_path / "cache"))  # embeddings of tiny models never reach the real cache
    monkeypatch.delenv("LVA_MODELS_DIR", raising=False)
    monkeypatch.delenv("LVA_ALLOW_DOWNLOAD", raising=False)
    L.clear()
    yield hub
    L.clear()


# ---------------------------------------------------------------------------------------------- the profile


def test_paper_profile_is_full_plus_the_papers_families_with_fulls_cache_keys():
    full, paper = get_config("full"), get_config("paper")
    assert paper.extra_models == (*full.extra_models, *PAPER_MODELS)
    assert {s: paper.key(*STAGES[s]) for s in STAGES} == {s: full.key(*STAGES[s]) for s in STAGES}
    assert dataclasses.replace(paper, profile="full", extra_models=full.extra_models) == full
    assert get_config("fast").extra_models == () and full.extra_models == ("qwen2.5-coder-1.5b",)
    families = {M.get_spec(n).family for n in PAPER_MODELS}
    assert families == {"decoder", "encoder", "vision-language"}
    for name in PAPER_MODELS:
        spec = M.get_spec(name)
        assert spec.hub_id and not spec.offline and spec.licence and spec.parameters, name
        assert "does not state which size" in spec.note, name
        assert ("gated" in spec.licence) == ("not gated" not in spec.note), name  # every entry says which
    assert M.get_spec("llama-3.1-8b").hub_id == "meta-llama/Llama-3.1-8B"
    assert M.get_spec("deepseek-llm-7b").hub_id == "deepseek-ai/deepseek-llm-7b-base"


def test_make_accepts_the_paper_profile_and_checks_it_before_the_zoo_installs():
    from lva.config import repo_root

    make = (repo_root() / "Makefile").read_text()
    assert "$(filter $(PROFILE),fast full paper)" in make
    book = make[make.index("\nbook:") :]
    assert book.index("lva.models.requirements --profile") < book.index("lva.models install --optional")
    # the memory check comes first, before the install ($(STAMP)), with the system python3 alone
    prerequisites = book.splitlines()[1]
    assert prerequisites.index("paper-memory") < prerequisites.index("$(STAMP)")
    check = make[make.index("\npaper-memory:") :].splitlines()[2]
    assert "python3 -I src/lva/models/memory.py --profile $(PROFILE)" in check and "$(PY)" not in check


# ---------------------------------------------------------------------------------------------- before the install

MEMORY_PY = Path(MEM.__file__)


def _stdlib_python(code: str) -> subprocess.CompletedProcess:
    """``code`` in an isolated interpreter (``-I``: no PYTHONPATH, no user site), outside the repository."""
    return subprocess.run(
        [sys.executable, "-I", "-c", code],
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")},
        capture_output=True,
        text=True,
        cwd=MEMORY_PY.anchor,
        timeout=120,
    )


def test_the_memory_check_run_by_path_refuses_a_24_gb_cpu_machine_in_one_line_without_numpy_or_torch():
    """What ``make book PROFILE=paper`` runs before installing anything: the file run by path, its
    registry read on its own, the machine set to a CPU-only one of the issue's size."""
    code = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("memory_check", {str(MEMORY_PY)!r})
mem = sys.modules["memory_check"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mem)
mem.system_machine = lambda: mem.Machine("cpu", "no GPU", 24 * 10**9)
code = mem.main(["--profile", "paper"])
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"numpy", "torch", "transformers", "psutil", "pandas"}})
print(code, heavy, "lva.models" in sys.modules, sep="|")
"""
    out = _stdlib_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2|[]|False"  # exit code 2, nothing heavy imported, not even lva.models' __init__
    line = out.stderr
    assert line.count("\n") == 1 and line.startswith("error: llama-3.1-8b (meta-llama/Llama-3.1-8B) needs ")
    need_bf16, need_f32 = R.memory_needed("llama-3.1-8b", "bfloat16"), R.memory_needed("llama-3.1-8b", "float32")
    assert f"{need_bf16 / GB:.1f} GB in bfloat16" in line and f"{need_f32 / GB:.1f} GB in float32" in line
    assert "no GPU and 24.0 GB of RAM" in line  # the same message as the check after the install:
    with pytest.raises(R.MachineTooSmall) as err:
        R.check_memory(R.profile_models("paper"), R.Machine("cpu", "no GPU", 24 * 10**9))
    assert line == f"error: {err.value}\n"


def test_the_memory_check_reads_the_gpu_from_nvidia_smi_and_exits_with_2(tmp_path):
    """The file run as ``make`` runs it, with a stand-in ``nvidia-smi`` reporting a small GPU."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text('#!/bin/sh\necho "Small GPU, 8192"\n')
    smi.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin", "HOME": str(tmp_path)}

    def check(profile: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-I", str(MEMORY_PY), "--profile", profile]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    out = check("paper")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: llama-3.1-8b")
    assert f"{8192 * 2**20 / GB:.1f} GB of free GPU memory (Small GPU)" in out.stderr
    fits = check("fast")
    assert fits.returncode == 0 and fits.stdout.count("\n") == 1 and "Small GPU" in fits.stdout, fits.stderr
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")  # no driver: the CPU and its RAM
    assert MEM.nvidia_gpu(str(smi)) is None and MEM.nvidia_gpu(str(tmp_path / "missing")) is None
    assert MEM.system_machine().available > 0


def test_the_memory_check_names_the_same_ram_as_the_full_preflight():
    import psutil

    assert MEM.total_ram() == psutil.virtual_memory().total


# ---------------------------------------------------------------------------------------------- refusals


def test_an_8b_model_on_a_24_gb_cpu_machine_is_refused_in_one_line_naming_both_memories():
    cpu = R.Machine("cpu", "no GPU", 24 * 10**9)
    with pytest.raises(R.MachineTooSmall) as err:
        R.check_memory(R.profile_models("paper"), cpu)
    message = str(err.value)
    assert "\n" not in message and message.startswith("llama-3.1-8b (meta-llama/Llama-3.1-8B)")
    need_bf16, need_f32 = R.memory_needed("llama-3.1-8b", "bfloat16"), R.memory_needed("llama-3.1-8b", "float32")
    assert need_f32 == 2 * need_bf16 > 8.03e9 * 4
    assert f"{need_bf16 / GB:.1f} GB in bfloat16" in message and f"{need_f32 / GB:.1f} GB in float32" in message
    assert "no GPU and 24.0 GB of RAM" in message
    assert "qwen2.5-7b" in message and "deepseek-llm-7b" in message and "bert-base" not in message
    R.check_memory(R.profile_models("paper"), R.Machine("cuda", "a GPU", 80 * 10**9))  # fits: no error
    with pytest.raises(R.MachineTooSmall, match=r"^llama-3.1-8b .* 16.0 GB of free GPU memory \(small\)"):
        R.check_memory(["bert-base", "llama-3.1-8b"], R.Machine("cuda", "small", 16 * 10**9))


def test_the_paper_book_on_a_cpu_machine_stops_at_once_having_downloaded_nothing(monkeypatch, tmp_path):
    from lva import book

    monkeypatch.setattr(R, "this_machine", lambda: R.Machine("cpu", "no GPU", 24 * 10**9))
    touched = []
    monkeypatch.setattr(R, "check_hub", lambda names: touched.append(names))  # the hub is never asked
    monkeypatch.setattr(book, "execute", lambda *a, **k: touched.append("a chapter ran"))
    t0 = time.perf_counter()
    with pytest.raises(R.MachineTooSmall, match="llama-3.1-8b"):
        book.run("paper", out_dir=tmp_path / "chapters", build=False)
    assert time.perf_counter() - t0 < 5 and touched == [] and not (tmp_path / "chapters").exists()


def test_the_command_line_refuses_in_one_line_with_exit_code_2(monkeypatch, capsys):
    monkeypatch.setattr(R, "this_machine", lambda: R.Machine("cpu", "no GPU", 24 * 10**9))
    assert R.main(["--profile", "paper"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: llama-3.1-8b") and err.count("\n") == 1


def test_a_model_missing_here_with_the_hub_off_is_refused_naming_it_and_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("LVA_MODELS_DIR", raising=False)
    with pytest.raises(R.HubUnreachable) as err:
        R.check_hub(["bert-base", "qwen2.5-7b"])
    message = str(err.value)
    assert "\n" not in message and message.startswith("bert-base (bert-base-uncased)")
    assert "HF_HUB_OFFLINE=1" in message and "`hf download bert-base-uncased`" in message


def _fake_auth(monkeypatch, error: Exception) -> list[str]:
    import huggingface_hub

    asked: list[str] = []

    def auth_check(repo_id, *args, **kwargs):
        asked.append(repo_id)
        raise error

    monkeypatch.setattr(huggingface_hub, "auth_check", auth_check)
    return asked


def test_an_unreachable_hub_is_refused_naming_the_model_and_the_fix(monkeypatch, tmp_path):
    import httpx2

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    asked = _fake_auth(monkeypatch, httpx2.ConnectError("[Errno -3] Temporary failure in name resolution"))
    with pytest.raises(R.HubUnreachable) as err:
        R.check_hub(["qwen2.5-7b"])
    message = str(err.value)
    assert asked == ["Qwen/Qwen2.5-7B"] and "\n" not in message
    assert message.startswith("qwen2.5-7b (Qwen/Qwen2.5-7B) is not cached here and the hub cannot be reached")
    assert "name resolution" in message and "`hf download Qwen/Qwen2.5-7B`" in message


def test_a_gated_model_whose_licence_is_not_accepted_is_refused_naming_the_page_and_login(monkeypatch, tmp_path):
    import httpx2
    from huggingface_hub.errors import GatedRepoError

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    response = httpx2.Response(403, request=httpx2.Request("GET", "https://huggingface.co/api/models/x"))
    _fake_auth(monkeypatch, GatedRepoError("Access to model meta-llama/Llama-3.1-8B is restricted", response=response))
    with pytest.raises(R.GatedModel) as err:
        R.check_hub(["llama-3.1-8b"])
    message = str(err.value)
    assert "\n" not in message and message.startswith("llama-3.1-8b (meta-llama/Llama-3.1-8B) is gated")
    assert "https://huggingface.co/meta-llama/Llama-3.1-8B" in message and "`hf auth login`" in message


def test_preflight_passes_a_big_gpu_then_fetches_only_the_missing_models_checkpoint_files(monkeypatch, tmp_path):
    import huggingface_hub

    hub = build_hub(tmp_path / "hub", ["bert-base"])  # cached here: neither checked on the hub nor fetched
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    asked, fetched = [], []
    monkeypatch.setattr(huggingface_hub, "auth_check", lambda repo_id, *a, **k: asked.append(repo_id))
    files = [
        "config.json",
        "model-00001-of-00002.safetensors",
        "pytorch_model.bin",
        "original/consolidated.00.pth",
        "tf_model.h5",
        "tokenizer.json",
    ]
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", lambda self, repo_id, **k: files)
    monkeypatch.setattr(
        huggingface_hub,
        "snapshot_download",
        lambda repo_id, **k: fetched.append((repo_id, k["allow_patterns"], k["cache_dir"])),
    )
    missing = R.preflight("paper", R.Machine("cuda", "a GPU", 80 * 10**9))
    later = [n for n in PAPER_MODELS if n != "bert-base"]
    assert missing == later and asked == [M.get_spec(n).hub_id for n in later]
    assert [f[0] for f in fetched] == asked and all(f[2] == str(hub) for f in fetched)
    patterns = fetched[0][1]
    assert "*.safetensors*" in patterns and not any(p.startswith("*.bin") for p in patterns)
    assert R.weight_files(["config.json", "pytorch_model.bin"])[-1] == "*.bin*"  # no safetensors: the .bin
    asked.clear()
    assert R.preflight("paper", R.Machine("cuda", "a GPU", 80 * 10**9), download=False) == later and len(asked) == 6


# ---------------------------------------------------------------------------------------------- GPU sizing


def test_gpu_batches_grow_with_free_memory_and_stay_within_bounds(tmp_path):
    model, tok = _tiny_model("llama")
    loaded = M.Loaded(M.get_spec("llama-3.1-8b"), model=model.model, tokenizer=tok)
    per_text = R.activation_bytes(loaded, 20)
    assert per_text == int(3 * 16 * 20 * (4 + 4) * R.OVERHEAD)  # 3 hidden states of width 16, float32 + copy
    assert R.cuda_batch_size(loaded, 20, free=0) == 1
    assert R.cuda_batch_size(loaded, 20, free=2 * 10 * per_text) == 10
    assert R.cuda_batch_size(loaded, 20, free=10**12) == R.MAX_BATCH


def test_requirements_table_is_computed_from_the_registry():
    rows = {r["model"]: r for r in R.requirements_table("paper")}
    assert list(rows) == R.profile_models("paper") and set(PAPER_MODELS) <= set(rows)
    llama = rows["llama-3.1-8b"]
    assert llama["GPU memory (GB)"] == round(R.memory_needed("llama-3.1-8b", "bfloat16") / GB, 1)
    assert llama["estimated GPU time (s)"] > rows["bert-base"]["estimated GPU time (s)"] > 0
    page = R.requirements_markdown("paper")
    assert all(f"| `{name}` |" in page for name in rows) and "**estimate**" in page


# ---------------------------------------------------------------------------------------------- end to end


def test_paper_profile_runs_offline_from_the_embeddings_to_the_verdicts(offline_hub, tmp_path, monkeypatch):
    """Every paper model is found in the local hub (nothing downloads: the hub is off), embedded by
    its real class, and appears in the headline table, the specification curve and the verdicts'
    counts; a second run reads every embedding from the cache and loads no model."""
    from lva import report
    from lva import robustness as rb

    t_start = time.perf_counter()
    cfg = get_config("paper", cache_dir=tmp_path / "cache", **TEST_SIZE)
    names = [n for n in cfg.extra_models if M.get_spec(n).hub_id]
    assert names == list(PAPER_MODELS) and set(M.available("paper")) >= set(names)
    R.check_hub(names)  # every one cached: the hub is not needed
    reps = pipeline.embeddings(cfg, models=names, show_progress=False)
    family = {n: family_of(n) for n in reps}
    for name in names:
        assert reps[name].shape == (396, 16) and np.isfinite(reps[name]).all(), name
    headline = pipeline.alignment(cfg, reps)
    pooled = pipeline.language_model_poolings(reps)
    curve = pipeline.robustness(cfg, reps, pooled)
    anchor = pipeline.anchor(cfg)
    seeds = rb.seed_spread(reps, [f"agent-seed{s}" for s in cfg.agent_seeds], "mutual_knn", cfg.align.k)
    found = {v.claim: v for v in report.verdicts(curve, family, reps, anchor, seeds, k=cfg.align.k, headline=headline)}

    assert set(names) <= set(headline["model"])
    per_model = curve["model"].value_counts()
    assert all(per_model.get(name, 0) > 0 for name in names), per_model
    for name in names:  # every pooling and every layer of every model is a specification
        assert set(curve.loc[curve["model"] == name, "pooling"]) == set(M.get_spec(name).all_poolings), name
    beyond_words = next(v for k, v in found.items() if "bag-of-words" in k)
    assert beyond_words.total == int(per_model[names].sum()) == len(curve)  # every model's rows, and only them
    decoders = [n for n in names if family[n] == "decoder"]
    knn = next(v for k, v in found.items() if k.endswith("mutual k-NN"))
    assert knn.total == int(((curve["metric"] == "mutual_knn") & curve["model"].isin(decoders)).sum()) > 0
    assert next(v for k, v in found.items() if "seed by seed" in k).total == len(cfg.agent_seeds)
    from lva import triangle as tri

    tri_rows = pipeline.triangle(
        cfg, {**reps, tri.REFERENT: pipeline.referent_control(cfg)}, {**family, tri.REFERENT: "control"}
    )
    for side in ("action", "vision"):  # the triangle: every model against the agent and the vision encoder
        assert set(names) <= set(tri_rows.loc[tri_rows["pair"] == f"{side}–language", "model"]), side

    L.clear()
    monkeypatch.setattr(M, "load", lambda *a, **k: pytest.fail("a cached embedding was recomputed"))
    again = pipeline.embeddings(cfg, models=names, show_progress=False)
    assert all(np.array_equal(again[n], reps[n]) for n in names)
    timing = E.cache_info(names[0])  # what the run ledger reads: where and how long each model ran
    assert timing["device"] == M.pick_device() and timing["load_s"] >= 0 and timing["embed_s"] >= 0
    assert (timing["peak_gpu_gb"] is None) == (timing["device"] == "cpu")

    # the run's ledger entry: each model's load and embedding seconds, device and peak GPU memory
    from lva import ledger as LG
    from lva import reference as ref

    chapters = tmp_path / "chapters"  # what the book runner leaves once every chapter has run
    chapters.mkdir()
    (chapters / "timings-paper.json").write_text(json.dumps({"05_language_models": time.perf_counter() - t_start}))
    entry = LG.run_entry("paper", chapters, tmp_path, None)
    assert set(names) <= set(entry["models"])  # the default zoo was not embedded here: only these are cached
    for name in names:
        measured = entry["models"][name]
        assert measured["embed_s"] >= 0 and measured["load_s"] >= 0 and measured["device"] == M.pick_device(), name
        assert (measured["peak_gpu_gb"] is None) == (measured["device"] == "cpu"), name
        # poolings of one forward pass share a record: each pass is counted once
        assert measured["passes"] == len({M.prompt_template(p) for p in M.get_spec(name).all_poolings}), name
    assert sum(entry["models"][n]["load_s"] for n in names) > 0  # each model was loaded once, in its first pass
    LG.record(tmp_path / "ledger", "paper", entry)  # a valid ledger file, or ValueError

    assert "No `paper` run with its models' times" in ref.paper_requirements([])
    page = ref.paper_requirements(LG.ledgers(tmp_path / "ledger"))
    assert "**Measured**" in page and ref._column(entry) in page
    rows = {line.split(" | ")[0].strip("| `"): line for line in page.splitlines() if line.startswith("| `")}
    for name in names:
        measured = entry["models"][name]
        cells = rows[name].strip("| ").split(" | ")
        peak = "–" if measured["peak_gpu_gb"] is None else f"{measured['peak_gpu_gb']:.1f}"
        assert cells[-3:] == [measured["device"], f"{measured['load_s']:.1f} + {measured['embed_s']:.1f}", peak]
