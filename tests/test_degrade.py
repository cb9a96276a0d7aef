"""Degradation recipe: each function honours its parameter range, the recipe is deterministic under a seed."""

import numpy as np
import pytest

from faceedge.pipelines import degrade as dg


@pytest.fixture
def face():
    rng = np.random.default_rng(0)
    # A textured image: smooth gradient plus detail, so blur and noise measurably change it.
    ys, xs = np.mgrid[0:96, 0:96]
    base = (np.sin(xs / 3.0) * 60 + ys + 60)[..., None].repeat(3, axis=2)
    return np.clip(base + rng.normal(0, 5, base.shape), 0, 255).astype(np.uint8)


def _sharpness(image):
    import cv2
    return cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()


def test_blur_functions_blur_more_with_bigger_parameters(face):
    assert _sharpness(dg.gaussian_blur(face, 13)) < _sharpness(dg.gaussian_blur(face, 3)) < _sharpness(face)
    assert _sharpness(dg.motion_blur(face, 12, 30.0)) < _sharpness(dg.motion_blur(face, 3, 30.0))
    np.testing.assert_array_equal(dg.motion_blur(face, 0, 45.0), face)
    with pytest.raises(ValueError):
        dg.gaussian_blur(face, 4)
    with pytest.raises(ValueError):
        dg.motion_blur(face, 13, 0.0)


def test_motion_kernel_is_normalised_line():
    kernel = dg.motion_kernel(9, 90.0)
    assert kernel.shape == (9, 9) and kernel.sum() == pytest.approx(1.0)
    assert kernel[:, 4].sum() > 0.9  # 90 degrees: a vertical line


def test_resample_keeps_size_and_loses_more_with_bigger_factor(face):
    for name in dg.UPSCALE_INTERPOLATIONS:
        errors = [np.abs(dg.resample(face, f, name).astype(float) - face).mean() for f in (1.5, 4.0, 8.0)]
        assert dg.resample(face, 4.0, name).shape == face.shape
        assert errors[0] < errors[1] < errors[2]


def test_noise_functions(face):
    rng = np.random.default_rng(1)
    out = dg.gaussian_noise(face, 0.0, 20.0, rng)
    assert out.dtype == np.uint8 and 12 < np.std(out.astype(float) - face) < 25
    flat = np.full((64, 64, 3), 128, np.uint8)
    assert np.std(dg.poisson_noise(flat, 8.0, rng).astype(float)) > np.std(dg.poisson_noise(flat, 255.0, rng).astype(float))
    sp = dg.salt_pepper_noise(flat, 0.05, rng)
    changed = (sp[..., 0] != 128).mean()
    assert 0.03 < changed < 0.07 and set(np.unique(sp)) <= {0, 128, 255}


def test_jpeg_quality_orders_error(face):
    err = [np.abs(dg.jpeg_compress(face, q).astype(float) - face).mean() for q in (50, 75, 100)]
    assert err[0] > err[1] > err[2]


def test_pose_exposure_occlusion(face):
    assert np.allclose(dg.pose_homography(face.shape, 0, 0, 0), np.eye(3))
    assert not np.array_equal(dg.pose_warp(face, 30, 10, 5), face)
    assert dg.exposure(face, 2.0, 1.0).mean() > face.mean() > dg.exposure(face, 0.3, 1.0).mean()
    out = dg.occlude(face, (10, 20, 5, 6), (1, 2, 3))
    assert (out[20:26, 10:15] == [1, 2, 3]).all() and (out[:20] == face[:20]).all()


def test_recipe_samples_within_ranges_and_strength_in_unit_interval(face):
    recipe = dg.Degradation(probabilities={name: 1.0 for name in dg.STEP_ORDER})
    rng = np.random.default_rng(7)
    for _ in range(40):
        p = recipe.sample(face.shape, rng)
        assert p["gaussian_blur"]["ksize"] in dg.GAUSSIAN_KERNEL_SIZES
        assert dg.MOTION_LENGTH_RANGE[0] <= p["motion_blur"]["length"] <= dg.MOTION_LENGTH_RANGE[1]
        assert dg.MOTION_ANGLE_RANGE[0] <= p["motion_blur"]["angle"] <= dg.MOTION_ANGLE_RANGE[1]
        assert dg.DOWNSAMPLE_FACTOR_RANGE[0] <= p["resample"]["factor"] <= dg.DOWNSAMPLE_FACTOR_RANGE[1]
        assert p["resample"]["interpolation"] in dg.UPSCALE_INTERPOLATIONS
        assert dg.JPEG_QUALITY_RANGE[0] <= p["jpeg"]["quality"] <= dg.JPEG_QUALITY_RANGE[1]
        assert abs(p["pose"]["yaw"]) <= dg.POSE_YAW_RANGE[1]
        assert dg.EXPOSURE_GAIN_RANGE[0] <= p["exposure"]["gain"] <= dg.EXPOSURE_GAIN_RANGE[1]
        noise = p["noise"]
        if noise["kind"] == "gaussian":
            assert dg.GAUSSIAN_NOISE_SIGMA_RANGE[0] <= noise["sigma"] <= dg.GAUSSIAN_NOISE_SIGMA_RANGE[1]
        elif noise["kind"] == "poisson":
            assert dg.POISSON_PEAK_RANGE[0] <= noise["peak"] <= dg.POISSON_PEAK_RANGE[1]
        else:
            assert dg.SALT_PEPPER_AMOUNT_RANGE[0] <= noise["amount"] <= dg.SALT_PEPPER_AMOUNT_RANGE[1]
        assert 0.0 <= dg.combined_strength(p) <= 1.0


def test_recipe_is_deterministic_under_a_seed(face):
    recipe = dg.Degradation()
    a = recipe(face, np.random.default_rng(123))
    b = recipe(face, np.random.default_rng(123))
    c = recipe(face, np.random.default_rng(124))
    np.testing.assert_array_equal(a.image, b.image)
    assert a.params == b.params and a.strength == b.strength
    assert a.params != c.params
    # Replaying recorded parameters reproduces the image exactly.
    np.testing.assert_array_equal(dg.Degradation.apply(face, a.params), a.image)


def test_no_step_means_identity_and_zero_strength(face):
    out = dg.Degradation(probabilities={})(face, np.random.default_rng(0))
    np.testing.assert_array_equal(out.image, face)
    assert out.strength == 0.0


def test_strength_tracks_damage(face):
    mild = dg.combined_strength({"gaussian_blur": {"ksize": 3}, "jpeg": {"quality": 95}})
    harsh = dg.combined_strength({"gaussian_blur": {"ksize": 13}, "jpeg": {"quality": 50}})
    assert 0.0 < mild < harsh <= 1.0


def test_lower_severity_gives_milder_samples(face):
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    gentle = [dg.Degradation(severity=0.2)(face, rng_a).strength for _ in range(30)]
    harsh = [dg.Degradation(severity=1.0)(face, rng_b).strength for _ in range(30)]
    assert np.mean(gentle) < np.mean(harsh)


@pytest.mark.parametrize("scale", dg.LOW_RES_SCALES)
def test_low_res_variant_shrinks_exactly(face, scale):
    out = dg.Degradation().low_res(face, scale, np.random.default_rng(scale))
    assert out.image.shape == (96 // scale, 96 // scale, 3)
    assert out.params["scale"] == scale and 0.0 < out.strength <= 1.0
    again = dg.Degradation().low_res(face, scale, np.random.default_rng(scale))
    np.testing.assert_array_equal(out.image, again.image)


def test_low_res_rejects_bad_scale(face):
    with pytest.raises(ValueError):
        dg.Degradation().low_res(face, 3, np.random.default_rng(0))
    with pytest.raises(ValueError):
        dg.Degradation().low_res(face[:95], 2, np.random.default_rng(0))
