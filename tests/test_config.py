import dataclasses
import os

import pytest

from lva.config import PROFILES, get_config
from lva.io import atomic_open, load_json, save_json


def test_profiles_differ_and_unknown_profile_lists_choices():
    fast, full = get_config("fast"), get_config("full")
    assert fast.demos.episodes_per_task < full.demos.episodes_per_task
    with pytest.raises(ValueError, match="fast, full"):
        get_config("medium")
    assert PROFILES == ("fast", "full")


def test_overrides_and_their_errors():
    cfg = get_config("fast", seed=3, env__room_size=10)
    assert cfg.seed == 3 and cfg.env.room_size == 10
    with pytest.raises(ValueError, match="valid fields"):
        get_config("fast", env__roomsize=10)
    with pytest.raises(ValueError, match="valid sections"):
        get_config("fast", nosuchsection__size=10)
    with pytest.raises(ValueError, match="seed"):
        get_config("fast", sede=1)


def _where(cfg, stage):
    """Where ``cfg`` keeps an artifact of ``stage`` (the stage's config sections make its key)."""
    return cfg.artifact(stage, "x").path


def test_cache_key_depends_only_on_the_stage_sections():
    base = get_config("fast")
    same = get_config("fast", checks__bot_episodes=7, seed=9)  # not part of the demos stage
    other = get_config("fast", env__num_distractors=4)
    assert _where(base, "demos") == _where(same, "demos")
    assert _where(base, "demos") != _where(other, "demos")
    assert _where(base, "demos") != _where(get_config("full"), "demos")
    assert _where(base, "demos").parent == base.cache_dir / "demos"
    with pytest.raises(ValueError, match="valid stages"):
        base.artifact("nope", "x")


def test_cache_dir_follows_environment(tmp_path):
    assert get_config().cache_dir == tmp_path / "cache"


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
            fh.write('{"half": ')
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert os.listdir(tmp_path) == []
    save_json(target, {"b": 1, "a": [1, 2]})
    assert load_json(target) == {"a": [1, 2], "b": 1}
    first = target.read_bytes()
    save_json(target, {"a": [1, 2], "b": 1})
    assert target.read_bytes() == first  # sorted keys: same content, same bytes


def test_atomic_write_keeps_previous_version_on_failure(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(KeyError):
        with atomic_open(target) as fh:
            fh.write("new but broken")
            raise KeyError
    assert target.read_text() == "old"


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_config().seed = 1  # type: ignore[misc]


def test_agent_seeds_are_a_top_level_setting_outside_every_cache_key():
    assert get_config("fast").agent_seeds == (0, 1) and get_config("full").agent_seeds == (0, 1, 2)
    cfg = get_config("fast", agent_seeds=(3, 5))
    assert cfg.agent_seeds == (3, 5) and not hasattr(cfg.checks, "agent_seeds")
    assert all(_where(cfg, stage) == _where(get_config("fast"), stage) for stage in ("demos", "features", "agent"))


def test_periodic_and_final_evaluation_sizes_have_different_names():
    cfg = get_config("fast", train__monitor_episodes_per_task=5, checks__eval_episodes_per_task=7)
    assert cfg.train.monitor_episodes_per_task == 5 and cfg.checks.eval_episodes_per_task == 7
    assert not hasattr(cfg.train, "eval_episodes_per_task")


def test_vision_stages_depend_on_the_ground_section_and_the_text_tower():
    base = get_config("fast")
    assert _where(base, "vision") != _where(get_config("fast", ground__epochs=1), "vision")
    assert _where(base, "vision") != _where(get_config("fast", agent__token_init="identical"), "vision")
    assert _where(base, "vision") == _where(get_config("fast", train__epochs=9, agent_seeds=(4, 5)), "vision")
    # the views and their features: env and demos only (the pairs file adds the two ground fields)
    assert _where(base, "vision-pairs") == _where(get_config("fast", ground__epochs=1), "vision-pairs")
    assert _where(base, "agent") == _where(get_config("fast", ground__epochs=1), "agent")
    assert get_config("full").ground.epochs > base.ground.epochs


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"env__room_size": "abc"}, r"env.room_size = 'abc' \(str\) is not allowed: must be an integer"),
        ({"env__room_size": 4}, r"env.room_size = 4 .* must be a number >= 5"),
        ({"align__k": 0}, r"align.k = 0 .* must be a number >= 1"),
        ({"agent_seeds": ()}, r"agent_seeds = \(\) .* must be a non-empty tuple of int"),
        ({"agent_seeds": (0, 0)}, "distinct seeds"),
        ({"agent_seeds": 3}, r"agent_seeds = 3 \(int\) .* must be a tuple of int \(a list is fine\)"),
        ({"threads": 0}, r"threads = 0 .* must be a number >= 1"),
        ({"demos__seed": 0.0}, r"demos.seed = 0.0 \(float\) .* must be an integer \(not a float or a string\)"),
        ({"demos__seed": "0"}, r"demos.seed = '0' \(str\)"),
        ({"demos__seed": -1}, r"demos.seed = -1 .* >= 0"),
        ({"demos__seed": True}, r"demos.seed = True \(bool\)"),
        ({"demos__expert": "lazy"}, "valid choices: shortest, look-first"),
        ({"train__lr": 0}, r"train.lr = 0 .* must be a number > 0"),
        ({"train__lr": float("nan")}, "a finite number"),
        ({"train__val_fraction": 1.0}, "strictly between 0 and 1"),
        ({"align__ks": []}, "non-empty"),
        ({"align__ks": (1, 0)}, r"align.ks = \(1, 0\) .* items that are a number >= 1"),
        ({"agent__memory": 1}, r"agent.memory = 1 \(int\) .* True or False"),
        ({"env__view_size": 6}, "an odd number >= 3"),
        ({"agent__heads": 3}, "agent.heads = 3 must divide agent.token_dim = 100"),
        ({"checks__compare_visions": ("pixels",)}, "valid choices: grid, imagenet"),
        ({"cache_dir": 3}, "a folder path"),
    ],
)
def test_every_field_is_checked_naming_the_field_the_value_and_what_is_allowed(overrides, message):
    with pytest.raises(ValueError, match=message):
        get_config("fast", **overrides)


def test_values_are_normalised_before_hashing():
    import numpy as np

    base = get_config("fast")
    assert get_config("fast", demos__seed=np.int64(0)).key("demos") == base.key("demos")
    assert type(get_config("fast", demos__seed=np.int64(0)).demos.seed) is int
    assert get_config("fast", train__lr=1).train.lr == 1.0 and type(get_config("fast", train__lr=1).train.lr) is float
    assert get_config("fast", train__lr=1).key("train") == get_config("fast", train__lr=1.0).key("train")
    listed = get_config("fast", agent_seeds=[0, 1], align__ks=[1, 2])
    assert listed.agent_seeds == (0, 1) and listed.align.ks == (1, 2) and listed == get_config("fast", align__ks=(1, 2))
    assert get_config("fast", cache_dir="rel").cache_dir.is_absolute()
