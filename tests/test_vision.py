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


#: One float16 step at 1.0 (2**-10): the absolute tolerance of :func:`_batch_differences`.
_F16_STEP = float(np.spacing(np.float16(1.0)))


def _float16_steps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| in units of the float16 spacing at the larger of the two magnitudes."""
    big = np.maximum(np.abs(a), np.abs(b)).astype(np.float16)
    return np.abs(a.astype(np.float32) - b.astype(np.float32)) / np.spacing(big).astype(np.float32)


def _batch_differences(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where two float16 feature maps differ by more than one float16 step at their own magnitude
    and by more than one step at 1.0. A float32 sum rounds at the scale of its terms, not of its
    result, so a feature that sums to nearly zero can move by several steps of its own magnitude."""
    diff = np.abs(a.astype(np.float32) - b.astype(np.float32))
    return (_float16_steps(a, b) > 1.0) & (diff > _F16_STEP)


def test_imagenet_features_do_not_depend_on_the_batch_size():
    """The batch is a speed knob (lva.vision.imagenet_features). Which convolution kernel runs can
    depend on the batch and the processor, so a float32 sum may round the other way: at most one
    float16 step at the feature's magnitude or at 1.0 (:func:`_batch_differences`), and at most
    1% of the features differ at all (on two AMD EPYCs, about 0.05% did)."""
    pytest.importorskip("efficientnet_lite_pytorch")
    from lva.vision import imagenet_features

    images, _ = _views(12)
    assert len(images) > 100
    whole = imagenet_features(images, batch=512)
    for batch in (64, 7, 1):
        part = imagenet_features(images, batch=batch)
        assert not _batch_differences(part, whole).any(), (batch, float(_float16_steps(part, whole).max()))
        assert (part != whole).mean() <= 0.01, batch


def test_batch_differences_allow_one_step_or_rounding_near_zero_only():
    """One step anywhere, or several steps of a near-zero feature (an absolute difference of at
    most 2**-10), pass; two steps of a feature of magnitude 1 or more, or a swapped view, fail."""
    a = np.array([1.0, 4.0, -0.3, 6.5, 0.00013], dtype=np.float16)
    one = np.nextafter(a, np.copysign(np.float16(np.inf), a))  # one step away from zero
    assert not _batch_differences(a, one).any()
    near_zero = a.copy()
    near_zero[-1] = np.float16(0.000135)  # several steps of its own magnitude, 5e-6 in all
    assert _float16_steps(a, near_zero)[-1] > 1.5 and not _batch_differences(a, near_zero).any()
    two = one + (one - a)
    assert _batch_differences(a, two)[:2].all()
    assert _batch_differences(a, a[::-1]).any()


def test_float16_steps_counts_one_step_as_one():
    a = np.array([1.0, 4.0, -0.3, 6.5], dtype=np.float16)
    b = np.nextafter(a, np.copysign(np.float16(np.inf), a))  # one step away from zero
    assert np.allclose(_float16_steps(a, b), 1.0, atol=1e-3)
    assert _float16_steps(a, a).max() == 0.0
    assert _float16_steps(a, b + (b - a)).max() > 1.5  # two steps are caught
