"""Image corruptions: closed forms for each one, value ranges, sizes and channels."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from stalwart import perturb
from stalwart.data.schema import Schema
from stalwart.errors import ConfigError, InputError
from stalwart.perturb.image import (
    Brightness,
    Contrast,
    GaussianBlur,
    GaussianNoise,
    Pixelation,
    Rotation,
    ShotNoise,
    Translation,
)

IMAGE = ["brightness", "contrast", "gaussian_blur", "gaussian_noise", "pixelation", "rotation", "shot_noise",
         "translation"]
UNIT = Schema("image", value_range=(0.0, 1.0))


def grey(value: float, shape=(8, 3, 32, 32)) -> np.ndarray:
    return np.full(shape, value, dtype=np.float32)


def texture(shape=(3, 3, 20, 28), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.1, 0.9, shape).astype(np.float32)


def ramps(h: int, w: int) -> np.ndarray:
    """Channel 0 = 0.01 * column, channel 1 = 0.01 * row (pixel units), centred at 0.5."""
    yy, xx = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2, indexing="ij")
    return (0.5 + 0.01 * np.stack([xx, yy]))[None].astype(np.float32)


# -- shared properties -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", IMAGE)
def test_value_range_0_255_gives_the_same_result_scaled(name):
    x = texture()
    p = perturb.get(name)
    unit = p.apply(x, 3, rng=4, schema=UNIT)
    byte = p.apply(x * 255.0, 3, rng=4, schema=Schema("image", value_range=(0.0, 255.0)))
    np.testing.assert_allclose(byte / 255.0, unit, atol=2e-5)
    # the range is inferred as (0, 255) when values exceed 1
    np.testing.assert_array_equal(p.apply(x * 255.0, 3, rng=4), byte)


@pytest.mark.parametrize("name", IMAGE)
def test_offset_range_is_handled(name):
    x = texture()
    p = perturb.get(name)
    out = p.apply(x * 2.0 - 1.0, 2, rng=0, schema=Schema("image", value_range=(-1.0, 1.0)))
    np.testing.assert_allclose((out + 1.0) / 2.0, p.apply(x, 2, rng=0, schema=UNIT), atol=2e-6)


@pytest.mark.parametrize("name", IMAGE)
@pytest.mark.parametrize("shape", [(2, 1, 9, 13), (1, 3, 1, 1), (2, 3, 1, 7), (1, 4, 5, 5), (1, 1, 300, 40)])
def test_any_size_and_channel_count(name, shape):
    x = texture(shape)
    out = perturb.get(name).apply(x, 5, rng=0, schema=UNIT)
    assert out.shape == shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("name", IMAGE)
def test_outputs_clipped_to_range(name):
    x = np.zeros((2, 3, 16, 16), dtype=np.float32)
    x[:, :, ::2] = 1.0
    out = perturb.get(name).apply(x, 5, rng=0, schema=UNIT)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_schema_without_range_is_inferred_and_wrong_schemas_rejected():
    x = texture()
    out = perturb.get("brightness").apply(x * 255.0, 1, schema=Schema("image"))
    np.testing.assert_allclose(out, np.clip(x * 255.0 + 25.5, 0, 255), atol=1e-3)
    with pytest.raises(InputError, match="image perturbation but the schema is for tabular data"):
        perturb.get("brightness").apply(x, 1, schema=Schema("tabular"))
    with pytest.raises(InputError, match=r"value_range must be \(lo, hi\) with finite lo < hi; got \(1.0, 1.0\)"):
        perturb.get("brightness").apply(x, 1, schema=Schema("image", value_range=(1.0, 1.0)))


def test_integer_images_are_accepted_as_float32():
    x = np.random.default_rng(0).integers(0, 256, (2, 3, 8, 8), dtype=np.uint8)
    out = perturb.get("contrast").apply(x, 1)
    assert out.dtype == np.float32 and out.max() <= 255.0


# -- noise ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("severity", [1, 2])
def test_gaussian_noise_std_matches_table(severity):
    x = grey(0.5)
    noise = GaussianNoise().apply(x, severity, rng=0, schema=UNIT) - x
    sigma = GaussianNoise.levels[severity - 1]
    assert noise.std() == pytest.approx(sigma, rel=0.02)
    assert abs(noise.mean()) < 5 * sigma / np.sqrt(noise.size)


def test_gaussian_noise_same_pattern_at_every_severity():
    x = grey(0.5, (2, 1, 16, 16))
    n1 = GaussianNoise().apply(x, 1, rng=3, schema=UNIT) - x
    n2 = GaussianNoise().apply(x, 2, rng=3, schema=UNIT) - x
    np.testing.assert_allclose(n2, n1 * 0.12 / 0.08, atol=1e-5)


@pytest.mark.parametrize("severity", [1, 3])
def test_shot_noise_is_poisson(severity):
    lam = ShotNoise.levels[severity - 1]
    x = grey(0.4, (16, 3, 32, 32))
    out = ShotNoise().apply(x, severity, rng=0, schema=UNIT).astype(np.float64)
    counts = out * lam
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3)  # integer photon counts
    assert out.mean() == pytest.approx(0.4, abs=4 * np.sqrt(0.4 / lam / out.size))
    assert out.var() == pytest.approx(0.4 / lam, rel=0.03)


# -- brightness, contrast -------------------------------------------------------------------------------------
@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_brightness_shifts_the_mean_by_c(severity):
    x = texture(seed=1) * 0.4  # within [0.04, 0.36]: no clipping even at c = 0.5
    c = Brightness.levels[severity - 1]
    up = Brightness().apply(x, severity, schema=UNIT)
    np.testing.assert_allclose(up - x, c, atol=1e-6)
    down = Brightness(direction="down").apply(x + 0.6, severity, schema=UNIT)
    np.testing.assert_allclose(down - (x + 0.6), -c, atol=1e-6)


def test_brightness_random_direction_per_image():
    x = grey(0.5, (200, 1, 4, 4))
    shift = (Brightness(direction="random").apply(x, 2, rng=0, schema=UNIT) - x).reshape(200, -1)
    assert np.allclose(shift, shift[:, :1], atol=1e-6)  # one shift per image
    np.testing.assert_allclose(np.abs(shift[:, 0]), 0.2, atol=1e-6)
    assert 70 < (shift[:, 0] > 0).sum() < 130


def test_brightness_bad_direction():
    with pytest.raises(ConfigError, match=r"Brightness\(direction=\.\.\.\) must be one of \['up', 'down', 'random'\]"):
        Brightness(direction="left")


@pytest.mark.parametrize("severity", [1, 5])
def test_contrast_keeps_the_mean_and_scales_deviations(severity):
    x = texture(seed=2)
    out = Contrast().apply(x, severity, schema=UNIT)
    c = Contrast.levels[severity - 1]
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)), atol=1e-6)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), c * x.std(axis=(1, 2, 3)), rtol=1e-4)


# -- blur -----------------------------------------------------------------------------------------------------
def test_blur_sigma_table_by_size():
    b = GaussianBlur()
    assert [b.sigma(s, 32) for s in range(1, 6)] == pytest.approx([0.4, 0.6, 0.7, 0.8, 1.0])
    assert [b.sigma(s, 224) for s in range(1, 6)] == pytest.approx([1.0, 2.0, 3.0, 4.0, 6.0])
    assert [b.sigma(s, 16) for s in range(1, 6)] == pytest.approx([0.2, 0.3, 0.35, 0.4, 0.5])
    mid = b.sigma(5, 64)
    assert 1.0 < mid < 6.0 and mid == pytest.approx(6.0 ** (np.log(2) / np.log(7)))
    for size in (8, 28, 32, 64, 224, 512):
        assert np.all(np.diff([b.sigma(s, size) for s in range(1, 6)]) > 0)


@pytest.mark.parametrize("severity", [2, 5])
def test_blur_of_an_impulse_is_a_gaussian_with_the_table_sigma(severity):
    h = w = 96
    x = np.zeros((1, 1, h, w), dtype=np.float32)
    x[0, 0, h // 2, w // 3] = 1.0
    out = GaussianBlur().apply(x, severity, schema=UNIT)[0, 0].astype(np.float64)
    sigma = GaussianBlur().sigma(severity, h)
    assert out.sum() == pytest.approx(1.0, abs=1e-5)  # far from the border: mass kept
    rows = out.sum(axis=1)
    var = (rows * (np.arange(h) - h // 2) ** 2).sum()
    assert np.sqrt(var) == pytest.approx(sigma, rel=0.03)  # kernel cut at 3 sigma
    cols = out.sum(axis=0)
    assert (cols * np.arange(w)).sum() == pytest.approx(w // 3, abs=1e-4)  # no shift


def test_blur_keeps_constant_images_and_reflects_at_borders():
    x = grey(0.3, (1, 2, 12, 5))
    np.testing.assert_allclose(GaussianBlur().apply(x, 5, schema=UNIT), x, atol=1e-6)
    ramp = np.tile(np.linspace(0.2, 0.8, 40, dtype=np.float32), (1, 1, 40, 1))
    out = GaussianBlur().apply(ramp, 3, schema=UNIT)
    np.testing.assert_allclose(out[..., 5:-5], ramp[..., 5:-5], atol=1e-5)  # linear content is unchanged


# -- geometry ---------------------------------------------------------------------------------------------------
def _gradient(img: np.ndarray, margin: int) -> np.ndarray:
    """Least-squares gradient (d/dx, d/dy) of a 2-D image over its interior."""
    h, w = img.shape
    yy, xx = np.mgrid[margin:h - margin, margin:w - margin]
    a = np.column_stack([xx.ravel(), yy.ravel(), np.ones(xx.size)])
    coef, *_ = np.linalg.lstsq(a, img[margin:h - margin, margin:w - margin].ravel().astype(np.float64), rcond=None)
    return coef[:2]


@pytest.mark.parametrize(("h", "w"), [(48, 48), (40, 72)])
@pytest.mark.parametrize("severity", [1, 5])
def test_rotation_turns_a_ramp_by_the_table_angle(h, w, severity):
    x = np.repeat(ramps(h, w), 40, axis=0)
    out = Rotation().apply(x, severity, rng=0, schema=UNIT)
    degrees = Rotation.levels[severity - 1]
    signs = []
    for img in out:
        gx = _gradient(img[0], margin=h // 4)
        angle = np.degrees(np.arctan2(gx[1], gx[0]))
        assert abs(abs(angle) - degrees) < 0.2, angle  # in pixel units, whatever the aspect ratio
        assert np.hypot(*gx) == pytest.approx(0.01, rel=1e-3)
        signs.append(np.sign(angle))
        centre = img[:, (h - 1) // 2:h // 2 + 1, (w - 1) // 2:w // 2 + 1].mean(axis=(1, 2))
        np.testing.assert_allclose(centre, 0.5, atol=1e-3)
    assert 10 < sum(s > 0 for s in signs) < 30


@pytest.mark.parametrize("severity", [2, 4])
def test_translation_shifts_by_the_table_fraction(severity):
    h, w = 40, 60
    x = np.repeat(ramps(h, w), 30, axis=0)
    out = Translation().apply(x, severity, rng=0, schema=UNIT)
    c = Translation.levels[severity - 1]
    m = int(np.ceil(c * max(h, w))) + 2
    d = (out - x)[:, :, m:h - m, m:w - m].astype(np.float64)
    dx = -d[:, 0].mean(axis=(1, 2)) / 0.01
    dy = -d[:, 1].mean(axis=(1, 2)) / 0.01
    np.testing.assert_allclose(np.hypot(dx / (c * w), dy / (c * h)), 1.0, atol=1e-3)
    np.testing.assert_allclose(d[:, 0].std(axis=(1, 2)), 0.0, atol=1e-5)  # a pure shift in the interior
    angles = np.arctan2(dy / h, dx / w)
    assert len(np.unique(np.round(angles, 3))) == 30  # random direction per image


def test_geometric_borders_take_the_edge_value():
    x = grey(0.2, (1, 1, 20, 20))
    x[..., :, 10:] = 0.8
    for p in (Translation(), Rotation()):
        out = p.apply(x, 5, rng=0, schema=UNIT)
        assert out.min() >= 0.2 - 1e-6 and out.max() <= 0.8 + 1e-6  # zero fill would bring 0s in
        np.testing.assert_allclose(out[..., :, 0], 0.2, atol=1e-6)
        np.testing.assert_allclose(out[..., :, -1], 0.8, atol=1e-6)


# -- pixelation ---------------------------------------------------------------------------------------------------
def test_pixelation_factor_table_by_size():
    p = Pixelation()
    assert [p.factor(s, 32) for s in range(1, 6)] == pytest.approx([0.95, 0.9, 0.85, 0.75, 0.65])
    assert [p.factor(s, 16) for s in range(1, 6)] == pytest.approx([0.95, 0.9, 0.85, 0.75, 0.65])
    assert [p.factor(s, 224) for s in range(1, 6)] == pytest.approx([0.6, 0.5, 0.4, 0.3, 0.25])
    assert [p.factor(s, 1024) for s in range(1, 6)] == pytest.approx([0.6, 0.5, 0.4, 0.3, 0.25])


def test_pixelation_averages_whole_blocks_when_the_factor_divides():
    x = texture((2, 3, 224, 224), seed=5)
    out = Pixelation().apply(x, 5, schema=UNIT)  # factor 0.25 -> 56 cells of 4 x 4 pixels
    blocks = x.reshape(2, 3, 56, 4, 56, 4).mean(axis=(3, 5))
    expected = np.repeat(np.repeat(blocks, 4, axis=2), 4, axis=3)
    np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 2, 150, 200), (2, 1, 224, 224), (1, 3, 40, 36), (4, 3, 130, 60)])
def test_pixelation_is_the_exact_area_mean_of_each_cell(shape):
    """Every size takes its own route (whole maps as products, taps along H, taps along W from 128 px);
    all equal a float64 area average: cell k covers [k, k + 1) * side / cells, each pixel weighted by its
    overlap, and every output pixel shows the cell its centre lies in."""

    def area(size, cells):
        width, m = size / cells, np.zeros((size, size))
        for i in range(size):
            k = min(int((i + 0.5) / width), cells - 1)
            for j in range(size):
                m[i, j] = max(0.0, min((k + 1) * width, j + 1) - max(k * width, j)) / width
        return m

    x = texture(shape, seed=2).astype(np.float64)
    p = Pixelation()
    for severity in (2, 5):
        f = p.cells(severity, min(shape[2:])) / min(shape[2:])
        rows, cols = (area(s, max(1, min(round(s * f), s - severity))) for s in shape[2:])
        np.testing.assert_allclose(p.apply(x, severity, schema=UNIT), rows @ x @ cols.T, atol=2e-6)


@pytest.mark.parametrize("shape", [(1, 3, 224, 224), (3, 3, 130, 150), (1, 1, 300, 140), (1, 2, 300, 60)])
def test_pixelation_numpy_and_torch_routes_agree(shape):
    """One large image (up to ``array_work`` values) is pixelated with numpy's row copies; CPU batches of
    images from 128 px wide take the same route an image at a time (bit for bit); GPU batches and narrower
    CPU ones take torch's (``_pixelate_tensor``, run here on CPU): the same weighted sums, bit for bit where
    it takes taps along W, a product with the area matrix on narrower images (equal up to float rounding)."""
    from stalwart.perturb.image import _pixelate_maps, _pixelate_tensor

    x = texture(shape, seed=4) * 255.0
    p = Pixelation(constants="imagenet")
    byte = Schema("image", value_range=(0.0, 255.0))
    batch = np.concatenate([x, x[:, :, ::-1], x[:, :, :, ::-1]] * 3)  # 9 images: several chunks
    for severity in (1, 3, 5):
        arrays = p.apply(x, severity, schema=byte)
        tensors = p.apply(torch.from_numpy(batch), severity, schema=byte).numpy()
        f = p.cells(severity, min(shape[2:])) / min(shape[2:])
        maps = [_pixelate_maps(s, max(1, min(round(s * f), s - severity))) for s in shape[2:]]
        in_torch = _pixelate_tensor(torch.from_numpy(x), *maps).clamp_(0.0, 255.0).numpy()
        same = np.testing.assert_array_equal if shape[3] >= 128 else \
            functools.partial(np.testing.assert_allclose, rtol=0, atol=1e-4)
        for i, image in enumerate((x, x[:, :, ::-1], x[:, :, :, ::-1])):  # each image as if alone
            same(tensors[i * shape[0]:(i + 1) * shape[0]], p.apply(np.ascontiguousarray(image), severity, schema=byte))
        same(arrays, in_torch)
        assert not np.array_equal(arrays, x)


def test_pixelation_with_fractional_cells_keeps_the_mean_of_constant_regions():
    x = grey(0.7, (1, 1, 33, 31))
    np.testing.assert_allclose(Pixelation().apply(x, 5, schema=UNIT), x, atol=1e-6)
