"""The exercises' answer checks (lva.checks): each passes on the reference answer, computed as the
solution cell computes it, and prints a hint without raising on a missing, wrong or mistyped
answer; the check cells of the chapters use the exercise ids of their chapter, in order."""

import ast
import inspect
import re
from collections import Counter
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from lva import alignment as al
from lva import checks, geometry
from lva import grounding as G
from lva import robustness as rb
from lva.agent import build_agent
from lva.checks import CHECKS, check, notebook_results
from lva.config import get_config
from lva.evaluate import eval_episodes, rollout, success_table
from lva.expert import check_expert
from lva.instructions import all_instructions
from lva.markup import exercise_numbers

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(
    agent__token_dim=8,
    agent__heads=2,
    agent__embed_dim=12,
    agent__mlp_dim=16,
    agent__channels=8,
    agent__hidden=16,
    ground__width=4,
    ground__epochs=2,
    ground__batch_size=8,
    threads=1,
)
N = len(all_instructions())


@pytest.fixture(scope="module")
def cfg():
    return get_config("fast", **TINY)


def _spaces(names, dim=12, seed=0):
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal((N, dim)) for name in names}


# Each case: (the reference answer as the solution computes it, a wrong answer, the check's context).
def case_1_1(cfg):
    return Counter(i.meaning for i in all_instructions()), {m: 5 for m in {i.meaning for i in all_instructions()}}, {}


def case_1_2(cfg):
    harder = get_config("fast", **TINY, env__escape_distance=6)
    ref = {row["task"]: row["mean_steps"] for row in check_expert(harder.env, 3, seed=1)}
    return ref, {**ref, "escape": ref["escape"] + 1}, dict(cfg=cfg, episodes=3)


def case_2_1(cfg):
    same = build_agent(get_config("fast", **TINY, agent__token_init="identical"), seed=0)
    ref = same.embed(["go to the red ball", "go to the blue ball"])
    return ref, build_agent(cfg, seed=0).embed(["go to the red ball", "go to the blue ball"]), dict(cfg=cfg)


def case_2_2(cfg):
    small = build_agent(get_config("fast", **{**TINY, "agent__channels": cfg.agent.channels // 2}), seed=0)
    return small.parameter_counts(), build_agent(cfg, seed=0).parameter_counts(), dict(cfg=cfg)


def case_3_1(cfg):
    rng = np.random.default_rng(0)
    ins = [all_instructions()[i] for i in rng.integers(0, N, 600)]
    results = pd.DataFrame(
        {"task": [i.task for i in ins], "verb": [i.verb for i in ins], "success": rng.random(600) < 0.7}
    )
    rates = success_table(results, ["task", "verb"]).reset_index()
    hardest = rates.loc[rates.groupby("task")["success"].idxmin()]
    ref = dict(zip(hardest["task"], hardest["verb"]))
    easiest = rates.loc[rates.groupby("task")["success"].idxmax()]
    return ref, dict(zip(easiest["task"], easiest["verb"])), dict(results=results)


def case_3_2(cfg):
    agent = build_agent(cfg, seed=0)
    pickups = [p for p in eval_episodes(3, cfg.seed + 7) if p[1].task == "pickup"]
    texts = [f"snatch the {ins.color} {ins.obj_type}" for _, ins in pickups]
    ref = np.mean([r["success"] for r in rollout(agent, cfg.env, pickups, texts=texts)])
    return ref, 1.5 - ref, dict(agent=agent, cfg=cfg, episodes_per_task=3)


def case_4_1(cfg):
    enc = G.build_encoder(cfg, 5)  # stands for the trained encoder
    meaning = G.meanings()
    texts = [i.text for i in all_instructions()]
    same = meaning[:, None] == meaning[None, :]
    off = ~np.eye(len(texts), dtype=bool)
    rows = {}
    for name, model in {"trained": enc, "untrained": G.build_encoder(cfg, cfg.agent_seeds[0])}.items():
        x = model.embed(texts)
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        cos = x @ x.T
        rows[name] = {"synonyms": cos[same & off].mean(), "different meanings": cos[~same].mean()}
    ref = pd.DataFrame(rows).T
    return ref, ref[::-1].set_axis(ref.index), dict(enc=enc, cfg=cfg)


def case_4_2(cfg):
    rng = np.random.default_rng(0)
    pairs = G.Pairs(
        instruction=rng.integers(0, N, 48),
        index=rng.integers(0, 10, (48, 2)),
        features=rng.standard_normal((10, 40, 7, 7)).astype(np.float16),
        views=rng.integers(0, 6, (10, 7, 7, 3)).astype(np.uint8),
    )
    pool = np.arange(24)
    final_only = G.Pairs(
        pairs.instruction, pairs.index[:, [pairs.view_names.index("final")]], pairs.features, pairs.views, ("final",)
    )
    short = get_config("fast", **{**TINY, "ground__epochs": 1})
    one, _ = G.train_encoder(
        get_config("fast", **{**TINY, "ground__epochs": 1}, ground__views=("final",)), final_only, cfg.agent_seeds[0]
    )
    two, _ = G.train_encoder(short, pairs, cfg.agent_seeds[0])
    ref = pd.DataFrame(
        {
            "final view only": G.retrieval(one, final_only, pool)["top-1"],
            "first and final": G.retrieval(two, pairs, pool)["top-1"],
        }
    )
    return (
        ref,
        ref.assign(**{"final view only": 1.5 - ref["final view only"]}),
        dict(cfg=cfg, pairs=pairs, pool=pool, epochs=1),
    )


def case_5_1(cfg):
    layers = np.random.default_rng(0).standard_normal((4, 30, 8)) + np.arange(4)[:, None, None]
    by_layer = pd.DataFrame(
        {
            "raw": [geometry.anisotropy(x) for x in layers],
            "centred": [geometry.anisotropy(x, center=True) for x in layers],
        },
        index=pd.RangeIndex(len(layers), name="layer"),
    )
    return by_layer, by_layer[["centred", "raw"]].set_axis(["raw", "centred"], axis=1), dict(layers=layers)


def case_5_2(cfg):
    reps = _spaces(["agent-seed0", "minilm"])
    instructions = all_instructions()
    meanings = sorted({i.meaning for i in instructions})
    meaning = np.array([meanings.index(i.meaning) for i in instructions])
    same = meaning[:, None] == meaning[None, :]
    share = {}
    for name, x in reps.items():
        u = geometry.unit_rows(x, center=True)
        sim = u @ u.T
        np.fill_diagonal(sim, -np.inf)
        top5 = np.argsort(-sim, axis=1, kind="stable")[:, :5]
        share[name] = same[np.arange(len(x))[:, None], top5].mean()
    return share, {name: 1.0 for name in share}, dict(reps=reps)


def case_6_1(cfg):
    reps = _spaces(["agent-seed0", "qwen2.5-coder-0.5b", "gemma-3-270m", "minilm"])
    reps["qwen2.5-coder-0.5b"] += 5.0  # anisotropic: uncentred and centred scores differ
    decoders = ["qwen2.5-coder-0.5b", "gemma-3-270m"]
    ref = {n: al.measure("mutual_knn", reps["agent-seed0"], reps[n], k=cfg.align.k, center=False) for n in decoders}
    centred = {n: al.measure("mutual_knn", reps["agent-seed0"], reps[n], k=cfg.align.k) for n in decoders}
    return ref, centred, dict(reps=reps, cfg=cfg)


def case_6_2(cfg):
    reps = _spaces(["qwen2.5-coder-0.5b", "gemma-3-270m"])
    shuffled = reps["gemma-3-270m"][np.random.default_rng(0).permutation(N)]
    opts = dict(k=cfg.align.k, n_components=None)
    in_sample = al.measure("procrustes_retrieval", reps["qwen2.5-coder-0.5b"], shuffled, in_sample=True, **opts)
    held_out = al.measure("procrustes_retrieval", reps["qwen2.5-coder-0.5b"], shuffled, **opts)
    return (in_sample, held_out), (held_out, in_sample), dict(reps=reps, cfg=cfg)


def case_6_3(cfg):
    rng = np.random.default_rng(0)
    reps = _spaces(["agent-seed0"])
    pooled = {
        "qwen2.5-coder-0.5b": {p: rng.standard_normal((3, N, 8)) for p in ("mean", "last", "echo")},
        "minilm": {"mean": rng.standard_normal((3, N, 8))},
    }
    family = {"qwen2.5-coder-0.5b": "decoder", "minilm": "encoder", "agent-seed0": "agent"}
    subset = {
        "qwen2.5-coder-0.5b": {p: pooled["qwen2.5-coder-0.5b"][p] for p in ("last", "echo")},
        "minilm": pooled["minilm"],
    }
    curve10 = rb.specification_curve(
        reps["agent-seed0"],
        subset,
        metrics=("mutual_knn",),
        k=10,
        n_perm=5,
        seed=cfg.align.seed,
        halves=rb.meaning_halves(seed=cfg.align.seed),
    )
    ref = float(rb.decoder_vs_encoder(curve10, family)["share above the encoder"].iloc[0])
    return ref, 0.5 + (ref < 0.5) * 0.25 + 0.01, dict(reps=reps, cfg=cfg, pooled=pooled)


CASES = {name[len("case_") :].replace("_", "."): fn for name, fn in dict(globals()).items() if name.startswith("case_")}


def test_every_check_has_a_case():
    assert set(CASES) == set(CHECKS)


@pytest.mark.parametrize("exercise", sorted(CHECKS))
def test_check_passes_the_reference_and_hints_on_wrong_answers(exercise, cfg, capsys):
    ref, wrong, context = CASES[exercise](cfg)
    assert check(exercise, ref, **context) is True
    assert capsys.readouterr().out.startswith(f"{checks.PASSED} {exercise}: correct.")
    for bad in (
        None,
        wrong,
        "forty-two",
        [[1, 2], [3]],
        {"x": [1, 2]},
        np.zeros(3),
        float("nan"),
        pd.DataFrame({"a": [1, 1]}, index=["x", "x"]),
    ):
        assert check(exercise, bad, **context) is False, bad
        out = capsys.readouterr().out
        assert out.startswith(f"{checks.FAILED} {exercise}: "), out
        assert len(out.strip()) > len(f"{checks.FAILED} {exercise}: not yet.") + 10, out  # a hint follows


def test_hints_name_what_to_bind_catch_percentages_and_swaps(cfg, capsys):
    assert not check("1.1", None)
    assert "Bind `answer` to a dict" in capsys.readouterr().out
    ref, _, context = case_4_2(cfg)
    assert ref.to_numpy().any()
    assert not check("4.2", 100 * ref, **context)
    assert "not a percentage" in capsys.readouterr().out
    ref, _, context = case_6_2(cfg)
    assert ref[0] != ref[1]
    assert not check("6.2", ref[::-1], **context)
    assert "swapped" in capsys.readouterr().out


def test_unknown_exercise_or_missing_context_is_a_programming_error():
    with pytest.raises(ValueError, match=r"valid exercises: 1\.1, 1\.2"):
        check("9.9", 1)
    with pytest.raises(TypeError, match="reps"):
        check("6.1", {"qwen2.5-coder-0.5b": 0.5})  # the check cell forgot reps=reps


def test_notebook_results_reads_the_printed_check_lines(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "check(...)",
            outputs=[
                nbformat.v4.new_output("stream", name="stdout", text=f"{checks.PASSED} 2.1: correct.\n"),
                nbformat.v4.new_output("stream", name="stdout", text=f"noise\n{checks.FAILED} 2.2: not yet. Hint.\n"),
            ],
        ),
        nbformat.v4.new_markdown_cell(f"{checks.PASSED} 9.9: in a markdown cell, not a result"),
    ]
    nbformat.write(nb, tmp_path / "x.ipynb")
    assert notebook_results(tmp_path / "x.ipynb") == {"2.1": True, "2.2": False}


_CHECK_CELL = re.compile(r"""^check\("(?P<id>[^"]+)", answer\b""", re.MULTILINE)


def test_check_cells_use_their_chapters_exercise_ids_in_order():
    every = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")):
        numbers = exercise_numbers(path)  # label -> "C.N", in the chapter's order
        assert numbers, f"{path.name} has no exercises"
        assert all(label.startswith(f"ex-{path.name[:2]}-") for label in numbers), numbers  # labels: ex-CC-name
        assert [m["id"] for m in _CHECK_CELL.finditer(path.read_text())] == list(numbers.values()), path.name
        calls = [
            node
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "check"
        ]
        for call in calls:  # each cell passes the context its check needs, and nothing else
            inspect.signature(CHECKS[call.args[0].value].run).bind(None, **{kw.arg: None for kw in call.keywords})
        every += numbers.values()
    assert sorted(every) == sorted(CHECKS)  # every exercise has a check, every check an exercise


def _binds(code: str) -> list[ast.expr]:
    """The values bound to ``answer`` at the top level of ``code``, in order."""
    return [
        node.value
        for node in ast.parse(code).body
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "answer" for t in node.targets)
    ]


def test_every_starter_binds_none_and_every_solution_binds_an_answer():
    """A student's starter runs into the check with ``answer = None`` (a hint, tested above); the
    solution binds its answer below the starter."""
    import jupytext

    from lva.student import starter_code

    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")):
        cells = [c.source for c in jupytext.read(path).cells if "solution" in c.metadata.get("tags", [])]
        assert len(cells) == len(exercise_numbers(path)), path.name
        for source in cells:
            starter = starter_code(source)
            bound = _binds(starter)
            assert bound and isinstance(bound[-1], ast.Constant) and bound[-1].value is None, (path.name, starter)
            rest = _binds(source[len(starter) :])
            assert rest and not (isinstance(rest[-1], ast.Constant) and rest[-1].value is None), (path.name, source)


def test_the_book_runner_stops_when_a_solution_fails_its_check(tmp_path, monkeypatch):
    from lva import book

    def executed(notebook, output, profile, cwd, memory=None):  # stands for papermill: the check cells' output
        nb = nbformat.v4.new_notebook()
        lines = {"01_ok": f"{checks.PASSED} 1.1: correct.\n", "02_bad": f"{checks.FAILED} 2.2: not yet. Hint.\n"}
        nb.cells = [
            nbformat.v4.new_code_cell(
                "check(...)", outputs=[nbformat.v4.new_output("stream", name="stdout", text=lines[notebook.stem])]
            )
        ]
        nbformat.write(nb, output)
        return 0.0

    monkeypatch.setattr(book, "execute", executed)
    src = tmp_path / "nb"
    src.mkdir()
    for stem in ("01_ok", "02_bad", "03_later"):
        (src / f"{stem}.py").write_text('# %%\nprint("hi")\n')
    with pytest.raises(book.NotebookFailed, match=r"02_bad: the solutions of exercises 2\.2 fail their checks"):
        book.run("fast", src, tmp_path / "out", build=False)
    assert not (tmp_path / "out" / "03_later.ipynb").exists()


def test_the_book_numbers_exercises_within_their_chapter():
    from types import SimpleNamespace

    from lva.sphinx_exercises import chapter_local_numbers

    env = SimpleNamespace(
        toc_fignumbers={
            "book/intro": {},
            "book/chapters/01_world": {"exercise": {"ex-01-b": (2,), "ex-01-a": (1,)}, "figure": {"f": (1,)}},
            "book/chapters/03_training": {"exercise": {"ex-03-a": (3,), "ex-03-b": (4,)}},
        }
    )
    assert chapter_local_numbers(None, env) == ["book/chapters/01_world", "book/chapters/03_training"]
    assert chapter_local_numbers(None, env) == []  # nothing left to renumber
    assert env.toc_fignumbers["book/chapters/01_world"] == {
        "exercise": {"ex-01-a": (1, 1), "ex-01-b": (1, 2)},
        "figure": {"f": (1,)},
    }
    assert env.toc_fignumbers["book/chapters/03_training"]["exercise"] == {"ex-03-a": (3, 1), "ex-03-b": (3, 2)}
