import numpy as np
import pytest

from lva.config import get_config
from lva.env import make_env
from lva.evaluate import eval_episodes, evaluate, rollout, success_table
from lva.instructions import TASKS
from lva.io import load_npz
from lva.pipeline import demonstrations, trained_agent, trained_success, visual_features
from lva.train import split_episodes

TINY = {
    "demos__episodes_per_task": 6,
    "train__epochs": 1,
    "train__monitor_episodes_per_task": 2,
    "checks__eval_episodes_per_task": 3,
    "threads": 1,
}


def test_episode_split_is_by_episode_and_seeded():
    a_train, a_val = split_episodes(100, 0.1, seed=0)
    b_train, b_val = split_episodes(100, 0.1, seed=0)
    assert np.array_equal(a_val, b_val) and len(a_val) == 10
    assert not set(a_train) & set(a_val) and len(a_train) + len(a_val) == 100


def test_trained_agent_caches_the_checkpoint_and_history():
    cfg = get_config("fast", **TINY)
    agent, history, cached = trained_agent(cfg, show_progress=False)
    assert not cached and history.epoch == [1] and history.transitions_per_s > 0
    again, history2, cached2 = trained_agent(cfg, show_progress=False)
    assert cached2 and history2.train_loss == history.train_loss
    texts = ["go to the red ball", "grab the blue key"]
    assert np.array_equal(agent.embed(texts), again.embed(texts))


def test_evaluation_covers_every_task_on_fresh_seeds():
    cfg = get_config("fast", **TINY)
    agent, _, _ = trained_agent(cfg, show_progress=False)
    results = evaluate(agent, cfg)
    assert len(results) == 3 * len(TASKS)
    assert set(results["task"]) == set(TASKS) and results["success"].dtype == bool
    assert (results["steps"] >= 1).all() and (results["expert_steps"] >= 1).all()
    table = success_table(results, "task")
    assert table["episodes"].sum() == len(results) and table["success"].between(0, 1).all()
    # evaluation seeds never coincide with the demonstrations' seeds
    demos = demonstrations(cfg, show_progress=False)
    assert not set(results["seed"]) & set(demos.seed.tolist())
    assert eval_episodes(3, 0) == eval_episodes(3, 0)
    # batches reuse their environments (each reset reseeds it): the same records as fresh ones
    fresh = [r for start in range(0, 9, 2) for r in rollout(agent, cfg.env, eval_episodes(3, 5)[start : start + 2])]
    assert evaluate(agent, cfg, seed=5, batch=2).to_dict("records") == fresh
    with pytest.raises(ValueError, match="3 episodes need as many environments, not 2"):
        rollout(agent, cfg.env, eval_episodes(1, 0), envs=[make_env(cfg.env)] * 2)


def test_imagenet_agent_trains_and_acts_end_to_end():
    pytest.importorskip("efficientnet_lite_pytorch")
    cfg = get_config("fast", agent__vision="imagenet", **TINY)
    agent, history, _ = trained_agent(cfg, show_progress=False)
    assert np.isfinite(history.train_loss).all()
    results = evaluate(agent, cfg, episodes_per_task=1)
    assert len(results) == len(TASKS)
    # read back from the cache, the features are mapped from the file (workers share its pages)
    features, index = visual_features(cfg, show_progress=False)
    assert isinstance(features, np.memmap) and not features.flags.writeable
    read = load_npz(cfg.artifact("features", "imagenet-stride8.npz").path)
    assert np.array_equal(features, read["features"]) and np.array_equal(index, read["index"])


def test_trained_success_reports_every_task_and_training_time(tmp_path):
    """trained_success trains once (tiny config), then reads the cached agent: same numbers both times."""
    from lva.instructions import TASK_NAMES

    cfg = get_config("fast", cache_dir=tmp_path, **TINY)
    first = trained_success(cfg, 0)
    assert set(first) == {*TASK_NAMES.values(), "training s"}
    assert all(0.0 <= first[t] <= 1.0 for t in TASK_NAMES.values()) and first["training s"] > 0
    assert trained_success(cfg, 0) == first


def test_train_agents_trains_the_missing_agents_at_once_identical_to_training_here():
    import torch

    from lva.pipeline import agent_jobs, evaluation_artifact, train_agents
    from lva.train import train

    assert [(c.agent.match, seed) for c, seed in agent_jobs(get_config("fast", **TINY))] == [
        (True, 0),
        (True, 1),
        (False, 0),
    ]
    cfg = get_config("fast", **{**TINY, "agent_seeds": (1,), "seed": 1})
    jobs = agent_jobs(cfg)  # seed 1 and the no-match-map ablation
    assert all(c.demos == cfg.demos and c.train == cfg.train for c, _ in jobs)  # variants keep every other knob
    threads = torch.get_num_threads()
    assert train_agents(jobs, show_progress=False) == jobs
    assert train_agents(jobs, show_progress=False) == []  # cached: nothing to train
    assert torch.get_num_threads() == threads
    loaded, history, cached = trained_agent(cfg, 1, show_progress=False)
    here, here_history = train(cfg, demonstrations(cfg, show_progress=False), 1, show_progress=False)
    assert cached and history.train_loss == here_history.train_loss  # the same agent, bit for bit
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), here.state_dict().values()))
    for c, seed in jobs:
        assert evaluation_artifact(c, seed).path.exists()  # the workers evaluated them too
    assert torch.get_num_threads() == threads


def test_trim_heap_gives_freed_heap_memory_back():
    from lva import workers

    if workers._malloc_trim() is None:
        pytest.skip("no glibc malloc_trim here")
    psutil = pytest.importorskip("psutil")

    def rss_mb() -> float:
        return psutil.Process().memory_info().rss / 2**20

    # 64 KB arrays come from the C heap (below glibc's mmap threshold); freeing 9 in 10 leaves holes
    # that glibc keeps for reuse, as the full profile's rollouts left ~1.6 GB in each worker
    blocks = [np.ones(8192) for _ in range(4000)]  # 250 MB
    kept = blocks[::10]
    del blocks
    before = rss_mb()
    workers.trim_heap()
    assert before - rss_mb() > 100, (before, rss_mb())
    assert all(float(b.sum()) == 8192 for b in kept)  # what is still used is untouched


def test_worker_jobs_return_in_order_and_a_failure_is_raised_here_with_its_type():
    from lva import workers

    assert workers.run([(abs, (-3,)), (divmod, (7, 2))], "two jobs", show_progress=False) == [3, (3, 1)]
    with pytest.raises(ValueError, match="valid profiles|fast"):
        workers.run([(get_config, ("no-such-profile",)), (abs, (1,))], "a failing job", show_progress=False)


@pytest.mark.parametrize("threads,at_once", [(1, 2), (2, 3)])
def test_train_agents_runs_threads_plus_one_workers_at_a_time(monkeypatch, threads, at_once):
    """More single-threaded workers than threads + 1 add memory, not speed: the rest wait."""
    from lva import workers
    from lva.pipeline import agent_jobs, train_agents

    calls = []
    monkeypatch.setattr(workers, "run", lambda jobs, desc, **kw: calls.append((len(jobs), kw["processes"], desc)))
    monkeypatch.setattr(workers, "trim_heap", lambda: calls.append("trim"))
    cfg = get_config("fast", **{**TINY, "threads": threads, "agent_seeds": (0, 1, 2)})
    jobs = agent_jobs(cfg)  # three seeds and the ablation
    assert train_agents(jobs, show_progress=False) == jobs
    # what building the shared inputs freed goes back before the workers start
    assert calls == ["trim", (4, at_once, f"behavioural cloning (4 agents, {at_once} at once)")]
