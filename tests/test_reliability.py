"""Fault injection: a cache that cannot lie, inputs that fail clearly, command lines that answer in
one line (issue 14). Every artifact is tiny and every slow step (training, generating thousands of
episodes) is replaced by a stand-in, so the whole file runs in seconds."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lva import cache, pipeline
from lva import embeddings as E
from lva import models as M
from lva.__main__ import main as lva_main
from lva.config import default_cache_dir, get_config, repo_root
from lva.errors import CacheError, guarded
from lva.io import (
    atomic_open,
    atomic_path,
    load_json,
    load_npz,
    save_json,
    save_npz,
    save_npz_mappable,
    sweep_stale,
    temp_folder,
)
from lva.models import weights
from lva.models.weights import _converted_ok
from lva.train import History

SRC = Path(__file__).resolve().parents[1] / "src"
TEXTS = ["go to the red ball", "pick up the blue key", "run away from the grey door", "reach the box"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}


def _flip(path: Path, offset: int | None = None, n: int = 8) -> None:
    data = bytearray(path.read_bytes())
    at = len(data) // 2 if offset is None else offset
    data[at : at + n] = bytes(b ^ 0xFF for b in data[at : at + n])
    path.write_bytes(bytes(data))


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---------------------------------------------------------------------------------------------- agents


@pytest.fixture
def fake_training(monkeypatch):
    """Agents "trained" in milliseconds: a freshly built network and a one-epoch history."""
    from lva.agent import build_agent

    calls = []

    def train(cfg, demos, seed, show_progress=True, features=None):
        calls.append(seed)
        history = History(epoch=[1], train_loss=[1.0], val_loss=[1.0], val_accuracy=[0.5], success=[{}], seconds=[0.1])
        return build_agent(cfg, seed), history

    monkeypatch.setattr(pipeline, "train", train)
    return calls


def _tiny_cfg(tmp_path: Path):
    return get_config("fast", cache_dir=tmp_path, demos__episodes_per_task=1, train__epochs=1, agent_seeds=(0,))


def test_every_artifact_path_is_its_kind_name_and_the_key_of_what_it_is_built_from(tmp_path):
    """One scheme for stages, embeddings and tables: ``<cache>/<kind>/<stem>-<key><suffix>``, the
    key a hash of ``built_from`` (key order does not matter, any value does)."""
    a = cache.Artifact(tmp_path, "agent", "seed0.pt", {"seed": 0, "stage": "agent"})
    assert a.path == tmp_path / "agent" / f"seed0-{cache.key_of({'stage': 'agent', 'seed': 0})}.pt"
    assert a.path != dataclasses.replace(a, built_from={"seed": 1, "stage": "agent"}).path
    cfg = get_config("fast", cache_dir=tmp_path)
    stage = cfg.artifact("agent", "seed0.pt", seed=0)
    assert stage.built_from == {**cfg.inputs("agent"), "seed": 0} and stage.path.parent == tmp_path / "agent"
    embedding = E._artifact("random", TEXTS, cache_dir=tmp_path)
    assert embedding.path == E.cache_path("random", TEXTS, cache_dir=tmp_path)
    assert embedding.path.name == f"mean-{cache.key_of(embedding.built_from)}.npz"
    assert embedding.path.parent == tmp_path / "embeddings" / "random"
    folder = cache.Artifact(tmp_path, "models", "qwen2.5-coder-0.5b", {"n": 1})  # a folder: no file type
    assert folder.path.name == f"qwen2.5-coder-0.5b-{cache.key_of({'n': 1})}"


def test_a_stage_called_gives_its_value_and_built_says_how_it_was_obtained(tmp_path):
    calls = []

    @cache.stage
    def numbers(n: int) -> cache.Built[list[int]]:
        """A toy stage."""
        artifact = cache.Artifact(tmp_path, "toy", "numbers.json", {"n": n})
        return cache.load_or_build(
            artifact,
            load_json,
            lambda: calls.append(n) or list(range(n)),
            lambda v, path: save_json(path, v),
            counts=lambda v: {"len": len(v)},
        )

    first = numbers.built(3)
    assert (first.value, first.cached, calls) == ([0, 1, 2], False, [3]) and first.seconds >= 0
    assert numbers(3) == [0, 1, 2] and numbers.built(3).cached and calls == [3]
    assert numbers.__name__ == "numbers" and numbers.__doc__ == "A toy stage."


def test_a_checkpoint_with_flipped_bytes_is_rejected_naming_the_retrain_command(tmp_path, fake_training, capfd):
    cfg = _tiny_cfg(tmp_path)
    agent, _, cached = pipeline.trained_agent(cfg, 0)
    assert not cached and pipeline.trained_agent(cfg, 0)[2]  # verified and loaded
    ckpt, hist = pipeline.checkpoint_paths(cfg, 0)
    _flip(ckpt)
    with pytest.raises(CacheError) as err:
        pipeline.trained_agent(cfg, 0)
    message = str(err.value)
    assert (
        str(ckpt) in message
        and "sha256" in message
        and f"delete {ckpt.name} and {hist.name} in {ckpt.parent}" in message
    )
    assert fake_training == [0]  # never retrained unasked
    # `python -m lva train` passes retrain=True: one line, then retrained
    again, _, cached = pipeline.trained_agent(cfg, 0, retrain=True)
    assert not cached and fake_training == [0, 0]
    assert "retraining it" in _one_line(capfd.readouterr().err)
    assert pipeline.trained_agent(cfg, 0)[2]


def test_the_retrain_command_is_the_profiles_own_cli_line():
    assert "`python -m lva train --profile fast --seed 1`" in pipeline.retrain_command(get_config("fast"), 1)


def test_an_agent_without_manifest_or_with_another_config_is_rejected(tmp_path, fake_training):
    cfg = _tiny_cfg(tmp_path)
    pipeline.trained_agent(cfg, 0)
    ckpt, hist = pipeline.checkpoint_paths(cfg, 0)
    cache.manifest_path(ckpt).unlink()  # as written by an older lva
    with pytest.raises(CacheError, match="no manifest"):
        pipeline.trained_agent(cfg, 0)
    # another architecture's checkpoint copied (with its manifest) under this key
    other = get_config("fast", cache_dir=tmp_path, demos__episodes_per_task=1, train__epochs=1, agent__hidden=8)
    pipeline.trained_agent(other, 0)
    for src, dst in zip(pipeline.checkpoint_paths(other, 0), pipeline.checkpoint_paths(cfg, 0)):
        shutil.copy(src, dst)
        shutil.copy(cache.manifest_path(src), cache.manifest_path(dst))
    with pytest.raises(
        CacheError, match="built from other inputs than this cache key's: agent.hidden = 8, expected 128"
    ):
        pipeline.trained_agent(cfg, 0)


# ---------------------------------------------------------------------------------------------- demonstrations


def test_a_truncated_demonstrations_file_is_rebuilt_after_one_line(tmp_path, capfd):
    cfg = get_config("fast", cache_dir=tmp_path, demos__episodes_per_task=1)
    first = pipeline.demonstrations(cfg, show_progress=False)
    path = cfg.artifact("demos", "demos.npz").path
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    again = pipeline.demonstrations.built(cfg, show_progress=False)
    line = _one_line(capfd.readouterr().err)
    assert str(path) in line and "truncated" in line and line.endswith("rebuilding it")
    assert not again.cached and np.array_equal(first.action, again.value.action)
    assert pipeline.demonstrations.built(cfg, show_progress=False).cached


class Rebuilt(Exception):
    pass


@pytest.mark.parametrize("how", ["file only", "with its manifest", "with a forged manifest"])
def test_small_demonstrations_under_the_6000_per_task_key_are_not_served(tmp_path, monkeypatch, capfd, how):
    small = get_config("fast", cache_dir=tmp_path, demos__episodes_per_task=2)
    big = get_config("fast", cache_dir=tmp_path)
    assert big.demos.episodes_per_task == 6000
    demos = pipeline.demonstrations(small, show_progress=False)
    src, dst = small.artifact("demos", "demos.npz").path, big.artifact("demos", "demos.npz").path
    shutil.copy(src, dst)
    if how == "with its manifest":
        shutil.copy(cache.manifest_path(src), cache.manifest_path(dst))
    elif how == "with a forged manifest":
        cache.write(big.artifact("demos", "demos.npz"), demos, lambda d, p: d.save(p), pipeline._demos_counts)

    def generate(*args, **kwargs):
        raise Rebuilt

    monkeypatch.setattr(pipeline, "generate", generate)
    with pytest.raises(Rebuilt):
        pipeline.demonstrations(big, show_progress=False)
    line = _one_line(capfd.readouterr().err)
    expected = {
        "file only": "no manifest",
        "with its manifest": "demos.episodes_per_task = 2, expected 6000",
        "with a forged manifest": "holds episodes_per_task.escape = 2, expected 6000",
    }[how]
    assert str(dst) in line and expected in line


def test_bit_flips_in_the_imagenet_features_are_caught_and_rebuilt(tmp_path, monkeypatch, capfd):
    import lva.vision

    calls = []

    def features(views, tile, show_progress=True):  # stands in for EfficientNet (seconds, and its weights)
        calls.append(len(views))
        return np.random.default_rng(len(calls)).standard_normal((len(views), 40, 7, 7)).astype(np.float32)

    monkeypatch.setattr(lva.vision, "imagenet_features", features)
    cfg = get_config("fast", cache_dir=tmp_path, demos__episodes_per_task=1, agent__vision="imagenet")
    first, index = pipeline.visual_features(cfg, show_progress=False)
    assert pipeline.visual_features(cfg, show_progress=False)[0].shape == first.shape and len(calls) == 1
    path = cfg.artifact("features", "imagenet-stride8.npz").path
    _flip(path)
    assert not pipeline.visual_features.built(cfg, show_progress=False).cached and len(calls) == 2
    line = _one_line(capfd.readouterr().err)
    assert str(path) in line and "sha256" in line


# ---------------------------------------------------------------------------------------------- embeddings


def test_an_embeddings_file_of_the_wrong_shape_is_recomputed(capfd):
    good = E.embed("random", TEXTS, layers="all")
    path = E.cache_path("random", TEXTS)
    save_npz(path, embeddings=np.full((2, 3), np.nan, dtype=np.float32))  # the probe: (2, 3) NaN for 4 texts
    np.testing.assert_array_equal(E.embed("random", TEXTS, layers="all"), good)
    assert "recomputing it" in _one_line(capfd.readouterr().err)
    # the same, with a manifest forged to match the file: the counts give it away
    cache.write(
        E._artifact("random", TEXTS),
        {"embeddings": np.zeros((1, 2, 3), dtype=np.float32)},
        lambda a, p: save_npz(p, **a),
        E._counts,
    )
    np.testing.assert_array_equal(E.embed("random", TEXTS, layers="all"), good)
    assert "holds texts = 2, expected 4" in _one_line(capfd.readouterr().err)
    assert E.cache_info("random", TEXTS)["n"] == len(TEXTS)


@pytest.mark.parametrize("damage", ["bit flip", "truncated", "manifest garbage", "garbage with a matching manifest"])
def test_a_damaged_embeddings_file_is_recomputed(capfd, damage):
    good = E.embed("bag-of-words", TEXTS, layers="all")
    path = E.cache_path("bag-of-words", TEXTS)
    if damage == "bit flip":
        _flip(path)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "manifest garbage":
        cache.manifest_path(path).write_text("{not json")
    else:
        garbage = b"PK\x03\x04 not a zip"
        cache.write(E._artifact("bag-of-words", TEXTS), garbage, lambda b, p: p.write_bytes(b), lambda b: {})
    np.testing.assert_array_equal(E.embed("bag-of-words", TEXTS, layers="all"), good)
    line = _one_line(capfd.readouterr().err)
    expected = {
        "bit flip": "sha256",
        "truncated": "truncated",
        "manifest garbage": "unreadable",
        "garbage with a matching manifest": "cannot be read (BadZipFile",
    }[damage]
    assert str(path) in line and expected in line


# ---------------------------------------------------------------------------------------------- robustness curve


def test_a_corrupt_robustness_curve_is_recomputed(tmp_path, monkeypatch, capfd):
    import pandas as pd

    import lva.robustness

    calls = []

    def curve(*args, **kwargs):  # stands in for the specification curve (seconds): the cache is under test
        calls.append(1)
        return pd.DataFrame({"metric": ["cka", "rsa"], "score": [0.5, 0.25]})

    monkeypatch.setattr(lva.robustness, "specification_curve", curve)
    cfg = get_config("fast", cache_dir=tmp_path)
    rng = np.random.default_rng(0)
    reps = {pipeline.anchor(cfg): rng.standard_normal((10, 5))}
    pooled = {"lm": {"mean": rng.standard_normal((1, 10, 4))}}
    first = pipeline.robustness(cfg, reps, pooled)
    again = pipeline.robustness.built(cfg, reps, pooled)
    assert again.value.equals(first) and again.cached and len(calls) == 1
    path = next((tmp_path / "robustness").glob("curve-*[0-9a-f].json"))
    path.write_text(path.read_text()[:-40])  # cut short: the JSON no longer parses
    again = pipeline.robustness.built(cfg, reps, pooled)
    assert not again.cached and len(calls) == 2 and again.value.equals(first)
    assert str(path) in _one_line(capfd.readouterr().err)


def test_a_corrupt_headline_table_is_recomputed(tmp_path, monkeypatch, capfd):
    """Chapter 6's other cached tables share the curve's helper: a headline table whose file was
    replaced (its sha256 no longer matches the manifest) is recomputed after a one-line notice."""
    import pandas as pd

    import lva.alignment

    calls = []

    def table(*args, **kwargs):  # stands in for the headline (seconds): the cache is under test
        calls.append(1)
        return pd.DataFrame({"model": ["lm"], "metric": ["cka"], "score": [0.5]})

    monkeypatch.setattr(lva.alignment, "headline_for", table)
    cfg = get_config("fast", cache_dir=tmp_path)
    reps = {pipeline.anchor(cfg): np.eye(10, 5), "lm": np.ones((10, 4))}
    first = pipeline.alignment(cfg, reps)
    again = pipeline.alignment.built(cfg, reps)
    assert again.value.equals(first) and again.cached and len(calls) == 1
    path = next((tmp_path / "alignment").glob("headline-*[0-9a-f].json"))
    path.write_text(path.read_text().replace("0.5", "0.7"))  # another number, same size
    again = pipeline.alignment.built(cfg, reps)
    assert not again.cached and len(calls) == 2 and again.value.equals(first)
    assert str(path) in _one_line(capfd.readouterr().err)


# ---------------------------------------------------------------------------------------------- writes


def test_kill_9_mid_write_leaves_a_temporary_file_that_the_next_write_sweeps(tmp_path):
    target = tmp_path / "big.npz"
    code = (
        "import sys, time\nfrom lva.io import atomic_open\n"
        "with atomic_open(sys.argv[1], 'wb') as fh:\n"
        "    fh.write(b'x' * (1 << 20)); fh.flush(); print('writing', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, env=_env(), text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        # a live writer's temporary file survives a sweep
        assert sweep_stale(tmp_path) == [] and len(list(tmp_path.glob(".big.npz.*.tmp"))) == 1
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    leftover = list(tmp_path.glob(".big.npz.*.tmp"))
    assert len(leftover) == 1 and leftover[0].stat().st_size == 1 << 20 and not target.exists()
    save_json(tmp_path / "other.json", {"a": 1})  # the next write into the folder sweeps it
    assert not leftover[0].exists() and not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.json"]


def test_a_writer_in_progress_is_not_swept_and_files_get_normal_permissions(tmp_path):
    (tmp_path / ".notes.tmp").write_text("not ours")  # another program's file: never swept
    with atomic_open(tmp_path / "slow.json") as fh:
        fh.write("{}")
        save_json(tmp_path / "fast.json", {})  # sweeps the folder meanwhile
        assert len(list(tmp_path.glob(".slow.json.*.tmp"))) == 1
    assert (tmp_path / ".notes.tmp").exists()
    assert (tmp_path / "slow.json").read_text() == "{}"
    cfg = get_config("fast", cache_dir=tmp_path, demos__episodes_per_task=1)
    pipeline.demonstrations(cfg, show_progress=False)
    for path in [
        tmp_path / "slow.json",
        cfg.artifact("demos", "demos.npz").path,
        cache.manifest_path(cfg.artifact("demos", "demos.npz").path),
    ]:
        assert path.stat().st_mode & 0o777 == 0o644, path


@pytest.fixture
def read_only(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = os.geteuid() == 0  # root ignores permission bits: make the folder immutable instead
    if immutable and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        folder.chmod(0o755)
        pytest.skip("running as root without chattr: cannot make a folder read-only")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


def test_a_read_only_cache_folder_gives_one_clear_line(read_only):
    cfg = get_config("fast", cache_dir=read_only, demos__episodes_per_task=1)
    with pytest.raises(CacheError, match=f"cannot write in {read_only}.*point LVA_CACHE at a writable folder"):
        pipeline.demonstrations(cfg, show_progress=False)
    with pytest.raises(CacheError, match="cannot write in"):
        save_json(read_only / "x.json", {})
    assert guarded(lambda argv: save_json(read_only / "x.json", {}))(None) == 1


def test_mappable_npz_members_are_mapped_read_only_and_equal_to_what_was_saved(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "features": rng.normal(size=(50, 4, 3)).astype(np.float16),
        "index": np.arange(7),
        "fortran": np.asfortranarray(rng.normal(size=(5, 3))),
        "empty": np.zeros((0, 4)),
    }
    save_npz_mappable(tmp_path / "m.npz", **arrays)
    mapped = load_npz(tmp_path / "m.npz", mmap=True)
    assert list(mapped) == list(arrays)
    for name, value in arrays.items():
        assert np.array_equal(mapped[name], value) and mapped[name].dtype == value.dtype, name
    assert isinstance(mapped["features"], np.memmap) and not mapped["features"].flags.writeable
    assert mapped["fortran"].flags.f_contiguous
    save_npz(tmp_path / "c.npz", **arrays)  # compressed members cannot be mapped: they are read
    read = load_npz(tmp_path / "c.npz", mmap=True)
    assert not any(isinstance(v, np.memmap) for v in read.values())
    assert all(np.array_equal(read[k], v) for k, v in arrays.items())


def test_a_full_disk_gives_one_clear_line_and_leaves_nothing(tmp_path):
    def fill_up(path):
        Path(path).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(
        CacheError, match=f"no space left on the disk of {tmp_path}: .*point LVA_CACHE at a larger disk"
    ):
        with atomic_path(tmp_path / "x.npz") as tmp:
            fill_up(tmp)
    with pytest.raises(CacheError, match="no space left"):  # a writer's own error that says so (safetensors')
        with temp_folder(tmp_path, "model") as work:
            (work / "w").write_bytes(b"half")
            raise RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no partial file or folder left behind
    with pytest.raises(ValueError, match="boom"):  # other errors pass through unchanged
        with atomic_path(tmp_path / "y.npz"):
            raise ValueError("boom")


# ---------------------------------------------------------------------------------------------- environment


def test_lva_cache_is_expanded_and_made_absolute(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LVA_CACHE", "~/x")
    assert default_cache_dir() == tmp_path.resolve() / "x" and get_config().cache_dir == tmp_path.resolve() / "x"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LVA_CACHE", "rel")
    assert default_cache_dir() == tmp_path.resolve() / "rel"
    assert get_config(cache_dir="~/y").cache_dir == tmp_path.resolve() / "y"


def test_lva_cache_pointing_at_a_file_is_one_line_and_exit_code_2(tmp_path, monkeypatch, capfd):
    afile = tmp_path / "file"
    afile.write_text("")
    monkeypatch.setenv("LVA_CACHE", str(afile))
    with pytest.raises(ValueError, match="LVA_CACHE=.* is a file, not a folder"):
        get_config()
    assert lva_main(["demos"]) == 2
    assert _one_line(capfd.readouterr().err).startswith(f"error: LVA_CACHE={afile} is a file")
    # the real command line, in a fresh process
    out = subprocess.run(
        [sys.executable, "-m", "lva", "demos"], capture_output=True, text=True, env={**_env(), "LVA_CACHE": str(afile)}
    )
    assert out.returncode == 2 and _one_line(out.stderr).startswith("error: LVA_CACHE=")


# ---------------------------------------------------------------------------------------------- local model folders


@pytest.mark.parametrize(
    "damage,expected",
    [
        ("config only", "no weights file"),
        ("bad json", "config.json is not valid JSON"),
        ("no tokenizer", "no tokenizer file"),
    ],
)
def test_a_malformed_local_model_folder_fails_before_any_training(tmp_path, monkeypatch, capfd, damage, expected):
    folder = tmp_path / "models" / "bert-base"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{oops" if damage == "bad json" else json.dumps({"model_type": "bert"}))
    if damage == "no tokenizer":
        (folder / "model.safetensors").write_bytes(b"")
    monkeypatch.setenv("LVA_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setattr(pipeline, "agents", lambda *a, **k: pytest.fail("agents trained before the model was checked"))
    assert not M.is_available("bert-base")
    with pytest.raises(M.ModelUnavailable, match=expected):
        pipeline.embeddings(get_config("fast"), models=["bert-base"])
    with pytest.raises(M.ModelUnavailable, match=expected):
        M.load("bert-base", path=folder)
    assert lva_main(["embed", "--models", "bert-base"]) == 2
    assert expected in _one_line(capfd.readouterr().err)


# ---------------------------------------------------------------------------------------------- converted models


def test_the_conversion_stamp_checks_file_hashes(tmp_path, monkeypatch, capfd):
    chunk = tmp_path / "chunk"
    chunk.write_bytes(b"gguf" * 1000)
    spec = dataclasses.replace(M.REGISTRY["gemma-3-270m"], sha256=hashlib.sha256(chunk.read_bytes()).hexdigest())
    monkeypatch.setattr(weights, "_chunk_paths", lambda s: [chunk])
    built = []

    def fill(joined: Path, out: Path) -> dict:
        built.append(1)
        (out / "model.safetensors").write_bytes(bytes(range(256)) * 64)
        (out / "config.json").write_text("{}")
        return {}

    folder = weights._build_once(spec, False, fill)
    assert weights._build_once(spec, False, fill) == folder and len(built) == 1
    weights_file = folder / "model.safetensors"
    _flip(weights_file)  # same size, new content
    assert not _converted_ok(folder, spec)
    weights._build_once(spec, False, fill)
    assert len(built) == 2 and "does not match its stamp's sha256" in _one_line(capfd.readouterr().err)
    # a flip that keeps the modification time passes the cheap check; --verify hashes every file
    stat = weights_file.stat()
    _flip(weights_file)
    os.utime(weights_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _converted_ok(folder, spec) and not _converted_ok(folder, spec, verify=True)
    # a stamp with sizes only (an older lva) is stale
    stamp = folder / weights.STAMP
    meta = json.loads(stamp.read_text())
    stamp.write_text(json.dumps({**meta, "files": {f: r["bytes"] for f, r in meta["files"].items()}}))
    assert "no file hashes" in weights.converted_problem(folder, spec)
    assert not list(weights.models_cache_dir().glob(".*.tmp"))  # the build folders are gone


def test_a_conversion_checks_free_disk_space_before_writing(tmp_path, monkeypatch):
    chunk = tmp_path / "chunk"
    chunk.write_bytes(b"gguf" * 1000)
    spec = dataclasses.replace(M.REGISTRY["gemma-3-270m"], sha256=hashlib.sha256(chunk.read_bytes()).hexdigest())
    monkeypatch.setattr(weights, "_chunk_paths", lambda s: [chunk])
    need = weights.conversion_bytes(spec, [chunk])
    assert need == int(4000 + 1.1 * 4 * 268e6)  # the joined file + float32 weights of 268M parameters, +10%
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=need - 1))
    with pytest.raises(
        CacheError,
        match=r"converting gemma-3-270m needs about 1\.2 GB free in .*models, but its disk "
        r"has 1\.2 GB: free some space, or point LVA_CACHE at a larger disk",
    ):
        weights._build_once(spec, False, lambda joined, out: pytest.fail("converted without the space for it"))
    assert not [p for p in weights.models_cache_dir().iterdir()]  # nothing written
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=need))
    weights._build_once(spec, False, lambda joined, out: (out / "config.json").write_text("{}") and {})


def test_converting_a_model_that_is_not_gguf_names_the_convertible_ones(capfd):
    assert M.main(["convert", "random"]) == 2
    line = _one_line(capfd.readouterr().err)
    assert "random is not a GGUF model" in line and "gemma-3-270m" in line and "sha256" not in line
    out = subprocess.run(
        [sys.executable, "-m", "lva.models", "convert", "random"], capture_output=True, text=True, env=_env()
    )
    assert out.returncode == 2 and "not a GGUF model" in _one_line(out.stderr)


# ---------------------------------------------------------------------------------------------- command lines


def test_the_makefile_checks_the_profile_before_installing_anything():
    if shutil.which("make") is None:
        pytest.skip("no make")
    # a clean environment: under `make test` the parent make's variables would add "Entering directory" lines
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES")}
    make = ["make", "--no-print-directory", "-n", "book"]
    out = subprocess.run([*make, "PROFILE=nope"], capture_output=True, text=True, cwd=repo_root(), env=env)
    assert out.returncode != 0 and out.stdout == ""  # nothing would run, the install included
    assert "PROFILE must be fast, full or paper, not 'nope'" in _one_line(out.stderr)
    assert subprocess.run([*make, "PROFILE=full"], capture_output=True, cwd=repo_root(), env=env).returncode == 0


def test_cli_errors_are_one_line_with_exit_codes_and_tracebacks_only_when_debugging(monkeypatch, capfd):
    def failing(exc):
        def main(argv):
            raise exc

        return guarded(main)

    cases = [
        (ValueError("bad\nsetting"), 2, "error: bad; setting"),
        (TypeError("t"), 2, "error: t"),
        (M.ModelUnavailable("m"), 2, "error: m"),
        (CacheError("c"), 1, "error: c"),
        (RuntimeError("r"), 1, "error: RuntimeError: r (LVA_DEBUG=1 shows the traceback)"),
    ]
    for exc, code, line in cases:
        assert failing(exc)(None) == code
        assert _one_line(capfd.readouterr().err) == line
    assert lva_main(["embed", "--models", "gpt-9"]) == 2
    assert "unknown model 'gpt-9'" in _one_line(capfd.readouterr().err)
    monkeypatch.setenv("LVA_DEBUG", "1")
    with pytest.raises(RuntimeError):
        failing(RuntimeError("r"))(None)
