import numpy as np
import pytest

from lva.env import make_env
from lva.vision import render_views, view_table


def _views(n_episodes: int = 30):
    env = make_env(rgb_obs=True)
    images, rgbs = [], []
    for seed in range(n_episodes):
        obs, _ = env.reset(seed=seed)
        for a in np.random.default_rng(seed).integers(0, 6, 12):
            images.append(obs["image"])
            rgbs.append(obs["rgb"])
            obs, _, term, trunc, _ = env.step(int(a))
            if term or trunc:
                break
    return np.array(images), np.array(rgbs)


def test_rendered_views_match_minigrid_pixel_for_pixel():
    images, rgbs = _views()
    assert np.array_equal(render_views(images, tile=8), rgbs)


def test_view_table_reconstructs_every_view():
    images, _ = _views(10)
    table, index = view_table(np.concatenate([images, images]))
    assert len(table) <= len(images)
    assert np.array_equal(table[index], np.concatenate([images, images]))


def test_imagenet_features_are_one_vector_per_cell_and_deterministic():
    pytest.importorskip("efficientnet_lite_pytorch")
    from lva.vision import FEATURE_CHANNELS, imagenet_features

    images, _ = _views(3)
    a = imagenet_features(images[:16])
    b = imagenet_features(images[:16])
    assert a.shape == (16, FEATURE_CHANNELS, 7, 7) and a.dtype == np.float16
    assert np.array_equal(a, b) and np.isfinite(a).all()
    # different views give different features
    assert not np.array_equal(a[0], a[-1]) or np.array_equal(images[0], images[15])


def test_imagenet_features_do_not_depend_on_the_batch_size():
    """The batch is a speed knob (lva.vision.imagenet_features): caches built at 512 views a batch
    stay valid at 64, and an agent's rollout sees the same features in any batch."""
    pytest.importorskip("efficientnet_lite_pytorch")
    from lva.vision import imagenet_features

    images, _ = _views(12)
    assert len(images) > 100
    whole = imagenet_features(images, batch=512)
    for batch in (64, 7, 1):
        assert np.array_equal(imagenet_features(images, batch=batch), whole), batch
