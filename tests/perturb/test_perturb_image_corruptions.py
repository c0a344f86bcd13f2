"""The ImageNet-C families and geometric corruptions: contract, severity grading and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stalwart import perturb
from stalwart.data.schema import Schema
from stalwart.errors import ConfigError, InputError
from stalwart.perturb._image_blur import DefocusBlur, GlassBlur, MotionBlur, ZoomBlur, disk_kernel
from stalwart.perturb._image_digital import (
    JpegCompression,
    Saturate,
    _code_planes_folded,
    _code_separable,
    _colour_array,
    _jpeg_batches,
    _jpeg_cpu,
    _jpeg_large_array,
    _quantise,
    _upsample2,
    _upsample_array,
    jpeg_tables,
)
from stalwart.perturb._image_geometry import Crop, Flip, Occlusion, Scale
from stalwart.perturb._image_noise import ImpulseNoise, SpeckleNoise, _poisson_tables, poisson_counts
from stalwart.perturb._image_weather import Fog, plasma_fractal

NEW = ["impulse_noise", "speckle_noise", "defocus_blur", "motion_blur", "zoom_blur", "glass_blur", "fog",
       "saturate", "elastic_transform", "jpeg_compression", "scale", "flip", "crop", "occlusion"]
OLD = ["gaussian_noise", "shot_noise", "brightness", "contrast", "gaussian_blur", "rotation", "translation",
       "pixelation"]
ALL = NEW + OLD
DETERMINISTIC = {"defocus_blur", "zoom_blur", "saturate", "jpeg_compression", "brightness", "contrast",
                 "gaussian_blur", "pixelation"}
UNIT = Schema("image", value_range=(0.0, 1.0))


def natural(shape, seed=3) -> np.ndarray:
    """1/f^1.5 noise around mid-grey: the spectrum of natural images, with some colour."""
    n, c, h, w = shape
    rng = np.random.default_rng(seed)
    freq = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])
    freq[0, 0] = 1.0
    spec = (rng.normal(size=(n, c, h, w // 2 + 1)) + 1j * rng.normal(size=(n, c, h, w // 2 + 1))) / freq**1.5
    spec[..., 0, 0] = 0.0
    img = np.fft.irfft2(spec, s=(h, w))
    return np.clip(0.5 + 0.12 * img / img.std(axis=(1, 2, 3), keepdims=True), 0.0, 1.0).astype(np.float32)


def change(x, out) -> float:
    return float(np.abs(out.astype(np.float64) - x).mean())


# -- the shared contract ------------------------------------------------------------------------------------
def test_every_family_is_registered():
    assert set(ALL) <= set(perturb.names("image"))


@pytest.mark.parametrize("name", NEW)
def test_class_contract(name):
    p = perturb.get(name)
    cls = type(p)
    assert cls.name == name and cls.modality == "image" and len(cls.description) > 10
    assert "severity" in cls.__doc__ and "=====" in cls.__doc__  # the severity table is documented
    assert repr(cls(**p.params())) == repr(p)
    with pytest.raises(TypeError):
        cls(1)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", [(6, 3, 32, 32), (4, 3, 31, 45), (4, 1, 32, 32)])
def test_change_grows_with_severity(name, shape):
    if name == "saturate" and shape[1] == 1:
        pytest.skip("saturate needs RGB")
    x = natural(shape)
    p = perturb.get(name)
    sizes = [change(x, p.apply(x, s, rng=0, schema=UNIT)) for s in perturb.SEVERITIES]
    assert all(b >= a for a, b in zip(sizes, sizes[1:])), sizes
    assert sizes[-1] > sizes[0] > 0, sizes


@pytest.mark.parametrize("name", NEW)
def test_pure_seeded_and_typed(name):
    x = natural((3, 3, 20, 28))
    snapshot = x.copy()
    p = perturb.get(name)
    out = p.apply(x, 3, rng=5, schema=UNIT)
    np.testing.assert_array_equal(x, snapshot)  # no mutation
    np.testing.assert_array_equal(out, p.apply(x, 3, rng=np.random.default_rng(5), schema=UNIT))
    assert out.dtype == np.float32 and out.shape == x.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.array_equal(out, p.apply(x, 3, rng=6, schema=UNIT)) == (name in DETERMINISTIC)


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("shape", [(2, 1, 8, 8), (2, 3, 8, 8), (1, 3, 1, 1), (2, 3, 1, 7), (1, 1, 130, 40)])
def test_any_size_and_channel_count(name, shape):
    x = natural(shape) if min(shape[2:]) > 1 else np.full(shape, 0.3, dtype=np.float32)
    p = perturb.get(name)
    if name == "saturate" and shape[1] != 3:
        with pytest.raises(InputError, match=r"saturate needs 3-channel images \(RGB\); got 1 channel"):
            p.apply(x, 3, rng=0, schema=UNIT)
        return
    for severity in (1, 5):
        out = p.apply(x, severity, rng=0, schema=UNIT)
        assert out.shape == shape and np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("name", NEW)
def test_value_range_0_255_and_offsets_give_the_same_result_scaled(name):
    x = natural((2, 3, 16, 24))
    p = perturb.get(name)
    unit = p.apply(x, 4, rng=2, schema=UNIT)
    byte = p.apply(x * 255.0, 4, rng=2, schema=Schema("image", value_range=(0.0, 255.0)))
    # JPEG rounds to 8 bits: float rounding of x vs x * 255 may flip a level at a .5 boundary
    tol = 1.01 / 255 if name == "jpeg_compression" else 3e-5
    np.testing.assert_allclose(byte / 255.0, unit, atol=tol)
    signed = p.apply(x * 2.0 - 1.0, 4, rng=2, schema=Schema("image", value_range=(-1.0, 1.0)))
    np.testing.assert_allclose((signed + 1.0) / 2.0, unit, atol=tol)


@pytest.mark.parametrize("name", ["impulse_noise", "motion_blur", "glass_blur", "fog", "jpeg_compression",
                                  "occlusion", "gaussian_noise", "rotation"])
def test_torch_tensors_in_tensors_out_same_numbers(name):
    x = natural((2, 3, 16, 16))
    p = perturb.get(name)
    t = torch.from_numpy(x * 255.0)
    out = p.apply(t, 3, rng=1)  # range inferred as (0, 255) like for arrays
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.device == t.device
    np.testing.assert_allclose(out.numpy(), p.apply(x * 255.0, 3, rng=1), atol=1e-3)
    np.testing.assert_array_equal(t.numpy(), x * 255.0)  # not mutated


def test_tensor_input_is_validated():
    with pytest.raises(InputError, match="N x C x H x W; got shape"):
        perturb.get("fog").apply(torch.zeros(3, 8, 8), 1)
    with pytest.raises(InputError, match="NaN"):
        perturb.get("fog").apply(torch.full((1, 1, 4, 4), float("nan")), 1)


# -- noise --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("severity", [1, 5])
def test_impulse_noise_hits_the_table_fraction_half_salt_half_pepper(severity):
    x = np.full((20, 3, 32, 32), 0.4, dtype=np.float32)
    out = ImpulseNoise().apply(x, severity, rng=0, schema=UNIT)
    amount = ImpulseNoise.levels[severity - 1]
    salt, pepper = (out == 1.0).mean(), (out == 0.0).mean()
    tol = 4 * np.sqrt(amount / x.size)
    assert salt + pepper == pytest.approx(amount, abs=2 * tol)
    assert salt == pytest.approx(amount / 2, abs=tol) and pepper == pytest.approx(amount / 2, abs=tol)
    assert np.all((out == 0.4) | (out == 0.0) | (out == 1.0))
    # nested: everything hit at severity 1 is hit at severity 5
    hit1 = ImpulseNoise().apply(x, 1, rng=0, schema=UNIT) != 0.4
    hit5 = ImpulseNoise().apply(x, 5, rng=0, schema=UNIT) != 0.4
    assert np.all(hit5[hit1])


def _poisson_pmf(mu: float, k: np.ndarray) -> np.ndarray:
    return np.array([math.exp(i * math.log(mu) - mu - math.lgamma(i + 1)) for i in k])


@pytest.mark.parametrize("lam", [60.0, 12.0, 3.0])
def test_poisson_tables_hold_the_pmf(lam):
    guide, cdf = _poisson_tables(lam)
    cdf = cdf.reshape(256, -1)
    for j in (1, 77, 255):
        probs = np.diff(cdf[j], prepend=0)
        np.testing.assert_allclose(probs, _poisson_pmf(lam * j / 255, np.arange(cdf.shape[1])), atol=1e-12)
    assert np.all(cdf[0] == 1.0)  # mean 0: always 0 photons
    # a guide entry is the answer for its bucket's smallest uniform; flagged (< 0) where a CDF step is inside
    k0 = np.where(guide < 0, -1 - guide, guide).reshape(256, -1).astype(np.int64)
    low = np.arange(k0.shape[1]) / k0.shape[1]
    np.testing.assert_array_equal(k0, np.stack([np.searchsorted(row, low, side="right") for row in cdf]))
    step_inside = np.stack([np.searchsorted(row, low + 1 / k0.shape[1], side="left") for row in cdf]) > k0
    np.testing.assert_array_equal(guide.reshape(256, -1) < 0, step_inside)


@pytest.mark.parametrize(("lam", "value"), [(60.0, 0.4), (12.0, 0.123), (3.0, 200.3 / 255)])
def test_poisson_counts_follow_the_pmf_on_and_off_the_8_bit_grid(lam, value):
    x = torch.full((400_000,), value, dtype=torch.float32)
    counts = poisson_counts(x, lam, np.random.default_rng(5)).numpy()
    np.testing.assert_array_equal(counts, np.round(counts))
    mu = lam * float(np.float32(value))
    k = np.arange(int(counts.max()) + 3)
    pmf = _poisson_pmf(mu, k)
    freq = np.bincount(counts.astype(np.int64), minlength=k.size)[:k.size] / counts.size
    z = np.abs(freq - pmf) / np.sqrt(pmf * (1 - pmf) / counts.size)
    assert z[pmf > 1e-5].max() < 5.0  # every probability within 5 standard errors
    assert counts.mean() == pytest.approx(mu, abs=5 * math.sqrt(mu / counts.size))


def test_shot_noise_draws_do_not_depend_on_the_severity():
    x = natural((4, 3, 16, 16))  # off the 8-bit grid: exercises the rest sampler too
    lo = perturb.get("shot_noise").apply(x, 5, rng=9, schema=UNIT) * 3.0  # lam 3
    hi = perturb.get("shot_noise").apply(x, 1, rng=9, schema=UNIT) * 60.0  # lam 60
    # inversion with the same uniforms is monotone in the mean: more photons at the higher lam
    assert np.all(np.round(hi) >= np.round(lo))


def test_speckle_noise_std_is_proportional_to_the_value():
    x = np.concatenate([np.full((8, 3, 32, 32), 0.2), np.full((8, 3, 32, 32), 0.4)]).astype(np.float32)
    out = SpeckleNoise().apply(x, 1, rng=0, schema=UNIT)
    c = SpeckleNoise.levels[0]
    assert (out[:8] - 0.2).std() == pytest.approx(0.2 * c, rel=0.03)
    assert (out[8:] - 0.4).std() == pytest.approx(0.4 * c, rel=0.03)
    assert np.all(SpeckleNoise().apply(np.zeros((1, 3, 8, 8)), 5, rng=0, schema=UNIT) == 0.0)  # black stays black


# -- blur ---------------------------------------------------------------------------------------------------
def test_disk_kernel_is_a_normalised_disk():
    k = disk_kernel(6.0, 0.0)
    assert k.sum() == pytest.approx(1.0, abs=1e-6)
    assert k.shape == (13, 13) and k[6, 6] == pytest.approx(1 / (np.pi * 36), rel=0.02)  # flat top, area pi r^2
    np.testing.assert_allclose(k, k.T, atol=1e-7)
    np.testing.assert_allclose(k, k[::-1], atol=1e-7)


@pytest.mark.parametrize("name", ["defocus_blur", "motion_blur", "zoom_blur", "glass_blur", "gaussian_blur"])
def test_blurs_keep_constant_images(name):
    x = np.full((2, 3, 23, 17), 0.37, dtype=np.float32)
    np.testing.assert_allclose(perturb.get(name).apply(x, 5, rng=0, schema=UNIT), x, atol=1e-6)


def test_defocus_at_224_has_the_imagenet_radius():
    k = DefocusBlur().kernel(3, 224)  # radius 6
    assert k.shape[0] == 2 * 6 + 1 + 2  # disk plus the 3 x 3 anti-aliasing
    yy, xx = np.mgrid[:15, :15] - 7
    # second moment: r^2 / 2 for the disk plus 2 sigma^2 for the anti-aliasing Gaussian
    assert (k * (yy**2 + xx**2)).sum() == pytest.approx(36 / 2 + 2 * 0.5**2, rel=0.03)


@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (1, 2, 20, 37), (1, 1, 3, 5), (1, 3, 96, 80)])
def test_defocus_equals_a_direct_mirror_correlation(shape):
    """Small images take the kernel's separable terms as matrices, larger ones the FFT: both are the plain
    correlation with mirror padding (``dcb|abcd|cba``, folded again when the kernel outgrows the image)."""
    from scipy import ndimage

    x = natural(shape)
    p = DefocusBlur(constants="imagenet")
    for severity in (1, 3, 5):
        kernel = p.kernel(severity, min(shape[2:])).astype(np.float64)
        expected = np.stack([[ndimage.correlate(x[i, c].astype(np.float64), kernel, mode="mirror")
                              for c in range(shape[1])] for i in range(shape[0])])
        np.testing.assert_allclose(p.apply(x, severity, schema=UNIT), expected, atol=2e-6)


def test_motion_blur_moves_an_impulse_along_a_line():
    x = np.zeros((64, 1, 41, 41), dtype=np.float32)
    x[:, :, 20, 20] = 1.0
    out = MotionBlur().apply(x, 3, rng=0, schema=UNIT).astype(np.float64)
    weights = MotionBlur().taps(3, 41)
    np.testing.assert_allclose(out.sum(axis=(1, 2, 3)), 1.0, atol=1e-5)
    assert np.all(out[:, 0, 20, 20] >= weights[0] - 1e-6)  # tap 0 stays on the impulse
    assert np.all((out > 0).sum(axis=(1, 2, 3)) <= weights.size)  # one pixel per tap (taps may coincide)
    # the spread is along a line at an angle within [-45, 45] degrees of the rows
    yy, xx = np.mgrid[:41, :41] - 20
    my, mx = (out[:, 0] * yy).sum(axis=(1, 2)), (out[:, 0] * xx).sum(axis=(1, 2))
    assert np.all(np.abs(my) <= np.abs(mx) + 1e-6) and np.ptp(np.arctan2(my, mx)) > 1.0


def test_zoom_blur_keeps_the_centre_and_lists_the_table_zooms():
    assert ZoomBlur().zooms(1, 32) == pytest.approx(np.arange(1.0, 1.051, 0.01))
    assert ZoomBlur().zooms(5, 224) == pytest.approx(np.arange(1.0, 1.301, 0.03))
    x = natural((1, 1, 33, 33))
    out = ZoomBlur().apply(x, 5, schema=UNIT)
    assert out[0, 0, 16, 16] == pytest.approx(x[0, 0, 16, 16], abs=1e-6)  # the centre does not move


def test_glass_blur_moves_pixels_by_at_most_delta():
    x = np.zeros((4, 1, 30, 30), dtype=np.float32)
    x[:, :, 15, 15] = 1.0
    g = GlassBlur()
    sigma, delta, iterations = g.params_at(5, 30)
    assert (sigma, delta, iterations) == (pytest.approx(0.375), 1, 5)
    out = g.apply(x, 5, rng=0, schema=UNIT)
    reach = delta * iterations + 2 * int(np.ceil(3 * sigma))
    far = np.ones((30, 30), dtype=bool)
    far[15 - reach:16 + reach, 15 - reach:16 + reach] = False
    assert np.all(out[:, 0][:, far] == 0.0)


# -- weather ------------------------------------------------------------------------------------------------
def test_plasma_fractal_is_in_unit_range_and_smoother_with_decay():
    rough = plasma_fractal(4, 64, 1.4, np.random.default_rng(0))
    smooth = plasma_fractal(4, 64, 3.0, np.random.default_rng(0))
    assert rough.min() == 0.0 and rough.max() == 1.0
    tv = [np.abs(np.diff(m, axis=2)).mean() for m in (rough, smooth)]
    assert tv[0] > 2 * tv[1]


def test_fog_formula_on_a_constant_image():
    x = np.full((3, 3, 16, 16), 0.5, dtype=np.float32)
    out = Fog().apply(x, 2, rng=0, schema=UNIT)
    c, _ = Fog().params_at(2, 16)
    haze = (out * (0.5 + c) / 0.5 - 0.5) / c  # invert (x + c h) m / (m + c) with m = 0.5
    assert haze.min() == pytest.approx(0.0, abs=1e-5) and haze.max() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(haze[:, 0], haze[:, 2], atol=1e-6)  # same haze in every channel


# -- digital ------------------------------------------------------------------------------------------------
def test_saturate_of_grey_is_identity_and_hue_value_are_kept():
    grey = np.repeat(natural((2, 1, 12, 12)), 3, axis=1)
    for s in perturb.SEVERITIES:
        np.testing.assert_allclose(Saturate().apply(grey, s, schema=UNIT), grey, atol=1e-7)
    rgb = natural((2, 3, 12, 12)) * 0.5 + 0.25
    out = Saturate().apply(rgb, 1, schema=UNIT)
    np.testing.assert_allclose(out.max(axis=1), rgb.max(axis=1), atol=1e-6)  # V kept
    sat = lambda a: (a.max(axis=1) - a.min(axis=1)) / a.max(axis=1)  # noqa: E731
    np.testing.assert_allclose(sat(out), 0.3 * sat(rgb), atol=1e-5)  # S scaled by 0.3
    order = lambda a: np.argsort(a, axis=1)  # noqa: E731 - hue keeps the channel order
    assert np.mean(order(out) == order(rgb)) > 0.99


def test_jpeg_tables_and_constant_images():
    luma, chroma = jpeg_tables(50)
    assert luma[0, 0] == 16 and chroma[0, 0] == 17  # quality 50 is the Annex K table itself
    assert jpeg_tables(100)[0].max() == 1 and jpeg_tables(1)[0].min() == 255
    assert [JpegCompression().quality(s, 32) for s in range(1, 6)] == [80, 65, 58, 50, 40]
    assert [JpegCompression().quality(s, 224) for s in range(1, 6)] == [25, 18, 15, 10, 7]
    x = np.full((2, 3, 37, 21), 0.6, dtype=np.float32)
    x[1] = [[[0.2]], [[0.5]], [[0.7]]]
    out = JpegCompression().apply(x, 5, schema=UNIT)
    assert out.std(axis=(2, 3)).max() < 1e-6  # a flat image stays flat
    np.testing.assert_allclose(out, x, atol=6 / 255)


def test_jpeg_block_codec_matches_a_float64_reference():
    rng = np.random.default_rng(0)
    planes = rng.uniform(0, 255, (3, 16, 24))
    luma, _ = jpeg_tables(58)
    d = np.cos((2 * np.arange(8)[None, :] + 1) * np.arange(8)[:, None] * np.pi / 16) * np.sqrt(2 / 8)
    d[0] /= np.sqrt(2)
    blocks = planes.reshape(3, 2, 8, 3, 8).transpose(0, 1, 3, 2, 4) - 128.0
    coef = np.round(d @ blocks @ d.T / luma) * luma
    expected = (d.T @ coef @ d + 128.0).transpose(0, 1, 3, 2, 4).reshape(3, 16, 24)
    got = _quantise(torch.from_numpy(planes.astype(np.float32)), luma).reshape(3, 16, 24)
    np.testing.assert_allclose(got.numpy(), expected, atol=2e-3)


@pytest.mark.parametrize("width", [48, 40])  # two blocks per product along a row, or one
def test_jpeg_separable_codec_matches_a_float64_reference(width):
    rng = np.random.default_rng(1)
    planes = rng.uniform(0, 255, (2, 3, 16, width))  # not integers: no DC coefficient exactly on a .5 tie
    luma, _ = jpeg_tables(58)
    d = np.cos((2 * np.arange(8)[None, :] + 1) * np.arange(8)[:, None] * np.pi / 16) * np.sqrt(2 / 8)
    d[0] /= np.sqrt(2)
    blocks = planes.reshape(2, 3, 2, 8, width // 8, 8).swapaxes(3, 4) - 128.0
    coef = np.round(d @ blocks @ d.T / luma) * luma
    expected = (d.T @ coef @ d + 128.0).swapaxes(3, 4).reshape(planes.shape)
    steps = torch.from_numpy(np.tile(luma, (2, width // 8)).astype(np.float32))
    strided = torch.from_numpy(planes.astype(np.float32)).transpose(0, 1)  # any batch strides
    got = _code_separable(strided, steps, centred=False).transpose(0, 1)
    np.testing.assert_allclose(got.numpy(), expected, atol=2e-3)
    centred = _code_separable(strided - 128.0, steps, centred=True).transpose(0, 1)
    np.testing.assert_allclose(centred.numpy() + 128.0, expected, atol=2e-3)


def test_jpeg_chroma_upsampling_is_bilinear_with_repeated_edges():
    c = torch.from_numpy(np.random.default_rng(1).uniform(0, 255, (4, 5, 7)).astype(np.float32))
    ref = torch.nn.functional.interpolate(c[None], scale_factor=2, mode="bilinear", align_corners=False)[0]
    np.testing.assert_allclose(_upsample2(c).numpy(), ref.numpy(), atol=1e-4)
    # output (1, 2) lies a quarter pixel below source row 0 and left of column 1: weights 3/4 and 1/4 per axis
    col = lambda j: 0.75 * c[:, 0, j] + 0.25 * c[:, 1, j]  # noqa: E731
    np.testing.assert_allclose(_upsample2(c)[:, 1, 2].numpy(), (0.75 * col(1) + 0.25 * col(0)).numpy(), atol=1e-4)
    np.testing.assert_allclose(_upsample2(c)[:, 0, 0].numpy(), c[:, 0, 0].numpy(), atol=1e-4)  # corner repeated


def test_jpeg_is_eight_bit_and_matches_blocks():
    x = natural((2, 3, 32, 32))
    out = JpegCompression().apply(x, 3, schema=UNIT)
    np.testing.assert_allclose(out * 255, np.round(out * 255), atol=1e-4)
    grey = JpegCompression().apply(x[:, :1], 3, schema=UNIT)
    assert 1 / 255 < change(x[:, :1], grey) < 10 / 255


def test_jpeg_one_small_image_matches_the_batched_torch_codec():
    """One 32 px image per call runs the numpy codec (linear steps folded into fewer products), a large
    batch the torch one. Float32 rounding differs between them, and a DCT coefficient within ~1e-4 of a
    .5 boundary then quantises to the neighbouring level, which moves its 8 x 8 block by a few levels:
    about 1-3% of the values, far below what the coding itself changes."""
    x = natural((48, 3, 32, 40)) * 255.0
    for severity in (1, 3, 5):
        p = JpegCompression()
        batched = p.apply(torch.from_numpy(x), severity).numpy()  # 184k values: the torch codec
        singles = np.concatenate([p.apply(x[i:i + 1], severity) for i in range(len(x))])
        gap = np.mean((batched - singles) ** 2)
        assert np.mean(batched != singles) < 0.05 and gap < 0.02 * np.mean((batched - x) ** 2), severity


def test_jpeg_large_cpu_batches_are_coded_a_few_images_at_a_time():
    from stalwart.perturb._image_digital import _ARRAY_BATCH, _CPU_CHUNK

    x = torch.from_numpy(natural((8, 3, 224, 208)) * 255.0)
    p = JpegCompression()
    quality = p.quality(3, 208)
    per = _CPU_CHUNK // (3 * 224 * 208)
    assert 1 <= per < 8  # the torch route splits the batch
    whole = _jpeg_cpu(x, quality)
    assert torch.equal(whole, torch.cat([_jpeg_cpu(x[i:i + per], quality) for i in range(0, 8, per)]))
    out = p.apply(x, 3)  # images above 32 px: numpy, a few per call
    assert 1 <= _ARRAY_BATCH // (3 * 224 * 208) < 8
    singles = np.concatenate([_jpeg_large_array(x[i:i + 1].numpy(), quality) for i in range(8)]).clip(0, 255)
    np.testing.assert_array_equal(out.numpy(), singles)
    assert 1.0 < float((out - x).abs().mean()) < 10.0  # it did code them
    # the two routes differ only where a coefficient lies within float rounding of a .5 boundary
    torch_route = whole.clamp(0, 255)
    assert float((out != torch_route).float().mean()) < 0.01
    assert float(((out - torch_route) ** 2).mean()) < 0.01 * float(((torch_route - x) ** 2).mean())


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize(("side", "route"), [(32, "_jpeg_cpu"), (40, "_jpeg_batches")])
def test_jpeg_cpu_batches_take_the_route_measured_faster_for_their_size(side, route, channels, monkeypatch):
    from stalwart.perturb import _image_digital

    n = JpegCompression.array_work // (channels * side * side) + 1
    x = torch.from_numpy(natural((n, channels, side, side), seed=4) * 255.0)
    assert x.numel() >= JpegCompression.array_work  # a batch, not the one-image numpy routes
    calls = []
    real = getattr(_image_digital, route)
    monkeypatch.setattr(_image_digital, route, lambda *a: calls.append(a) or real(*a))
    p = JpegCompression()
    out = p.apply(x, 2)
    assert len(calls) == 1 and out.shape == x.shape
    other = (_jpeg_batches if route == "_jpeg_cpu" else _jpeg_cpu)(x, p.quality(2, side)).clamp(0, 255)
    assert float((out != other).float().mean()) < 0.03  # the other route: the same up to float ties
    assert float(((out - other) ** 2).mean()) < 0.02 * float(((other - x) ** 2).mean())


def test_jpeg_numpy_batches_take_permuted_views_and_refuse_nan():
    """CPU batches of large images run numpy on the tensor's memory: a permuted N x H x W x C view (made
    contiguous first) gives the contiguous result, nothing is written into the caller's memory, and NaN or
    infinity are refused before any coding."""
    nhwc = np.ascontiguousarray(natural((30, 3, 64, 56), seed=8).transpose(0, 2, 3, 1)) * 255.0
    x = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
    byte = Schema("image", value_range=(0.0, 255.0))
    p = JpegCompression()
    view = torch.from_numpy(nhwc).permute(0, 3, 1, 2)
    assert not view.is_contiguous() and view.numel() >= JpegCompression.array_work
    out = p.apply(view, 4, schema=byte)
    assert isinstance(out, torch.Tensor) and out.is_contiguous()
    expected = _jpeg_batches(torch.from_numpy(x), p.quality(4, 56)).clamp(0, 255)
    np.testing.assert_array_equal(out.numpy(), expected.numpy())
    np.testing.assert_array_equal(p.apply(x, 4, schema=byte), expected.numpy())  # an array batch: the same
    np.testing.assert_array_equal(view.numpy(), x)  # the caller's memory untouched
    for bad in (np.nan, np.inf):
        y = nhwc.copy()
        y[3, 10, 20, 1] = bad
        with pytest.raises(InputError, match="NaN or infinite"):
            p.apply(torch.from_numpy(y).permute(0, 3, 1, 2), 4, schema=byte)


def test_jpeg_matches_pillow_at_the_same_quality():
    """Against libjpeg itself (Pillow, when installed): the same 8-bit images out, up to libjpeg's
    fixed-point DCT and colour rounding, at both the 32 px (mild) and the 224 px (strong) qualities."""
    pil = pytest.importorskip("PIL.Image")
    import io

    for size, severity in ((32, 2), (224, 3)):
        x = np.round(natural((3, 3, size, size), seed=5) * 255.0)
        p = JpegCompression()
        ours = p.apply(x, severity, schema=Schema("image", value_range=(0.0, 255.0)))
        theirs = []
        for img in x.astype(np.uint8).transpose(0, 2, 3, 1):
            buf = io.BytesIO()
            pil.fromarray(img).save(buf, "JPEG", quality=p.quality(severity, size))
            theirs.append(np.asarray(pil.open(io.BytesIO(buf.getvalue())).convert("RGB")).transpose(2, 0, 1))
        theirs = np.stack(theirs).astype(np.float64)
        mse = float(np.mean((ours - theirs) ** 2))
        psnr = 10 * np.log10(255.0**2 / max(mse, 1e-12))
        coding = float(np.mean((x - theirs) ** 2))  # what JPEG itself changes, for scale
        assert psnr > 40 and mse < 0.05 * coding, (size, psnr, mse, coding)


@pytest.mark.parametrize("shape", [(1, 2, 8, 8), (2, 2, 16, 24), (1, 2, 112, 112)])
def test_jpeg_array_upsampling_by_windows_matches_the_torch_one(shape):
    c = np.random.default_rng(2).uniform(-128, 127, shape).astype(np.float32)
    n, p, h, w = shape
    out = np.full((n, 3, 2 * h, 2 * w), np.nan, dtype=np.float32)  # written into channels 1-2 of a wider array
    _upsample_array(c, out[:, 1:])
    np.testing.assert_allclose(out[:, 1:], _upsample2(torch.from_numpy(c)).numpy(), atol=1e-4)
    assert np.isnan(out[:, 0]).all()  # nothing written outside


@pytest.mark.parametrize("shape", [(1, 3, 224, 224), (2, 3, 150, 150), (1, 3, 200, 170), (2, 1, 224, 224)])
def test_jpeg_one_large_image_in_numpy_matches_the_batched_torch_codec(shape):
    """Large single images (up to ``array_work`` values) take the numpy route with the separable DCT (and CPU
    batches of images above 32 px), batches of small images the torch one (:func:`_jpeg_cpu`). They differ only
    where a coefficient lies within float rounding of a .5 boundary: well under 1% of the values, far below
    what the coding changes."""
    x = np.round(natural(shape, seed=7) * 255.0)
    p = JpegCompression()
    for severity in (1, 3, 5):
        quality = p.quality(severity, min(shape[2:]))
        ours = _jpeg_large_array(x, quality).clip(0, 255)
        batched = _jpeg_cpu(torch.from_numpy(x), quality).clamp(0, 255).numpy()  # the torch route
        assert ours.shape == x.shape and np.array_equal(ours, np.round(ours))
        gap = np.mean((batched - ours) ** 2)
        assert np.mean(batched != ours) < 0.01 and gap < 0.01 * np.mean((batched - x) ** 2), severity
    one = p.apply(x[:1], 3, schema=Schema("image", value_range=(0.0, 255.0)))  # apply takes the numpy route
    np.testing.assert_array_equal(one, _jpeg_large_array(x[:1], p.quality(3, min(shape[2:]))).clip(0, 255))


@pytest.mark.parametrize("pixels", [50176, 50175])  # cut into chunks for one BLAS thread each, or not cut (odd)
def test_jpeg_colour_products_in_chunks_equal_whole_products(pixels):
    rng = np.random.default_rng(3)
    m = rng.normal(size=(3, 3)).astype(np.float32)
    x = rng.uniform(0, 255, (2, 3, pixels)).astype(np.float32)
    out = np.empty_like(x)
    assert _colour_array(m, x, out=out) is out
    np.testing.assert_allclose(out, np.einsum("ij,njp->nip", m.astype(np.float64), x), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize(("h", "width"), [(16, 48), (16, 40), (256, 1024)])  # the last: products cut in two
@pytest.mark.parametrize("chroma", [False, True])
def test_jpeg_folded_codec_matches_a_float64_reference(h, width, chroma):
    """The numpy codec divides by the table inside the row DCT (one matrix per row frequency) and shifts the
    level on the DC coefficients only: the same as shifting, transforming, quantising and inverting."""
    from stalwart.perturb._image_digital import _ONE_THREAD

    rng = np.random.default_rng(5)
    assert (2 * h * width // 8 * 64 > _ONE_THREAD) == (width == 1024)
    ycc = rng.uniform(0, 255, (2, 3, h, width)).astype(np.float32)  # not integers: no coefficient on a .5 tie
    table = jpeg_tables(58)[1 if chroma else 0]
    d = np.cos((2 * np.arange(8)[None, :] + 1) * np.arange(8)[:, None] * np.pi / 16) * np.sqrt(2 / 8)
    d[0] /= np.sqrt(2)
    planes = ycc[:, 1].astype(np.float64) - (0.0 if chroma else 128.0)  # chroma arrives centred
    blocks = planes.reshape(2, h // 8, 8, width // 8, 8).swapaxes(2, 3)
    coef = np.round(d @ blocks @ d.T / table) * table
    expected = (d.T @ coef @ d).swapaxes(2, 3).reshape(planes.shape) + (0.0 if chroma else 128.0)
    before = ycc.copy()
    got = _code_planes_folded(ycc[:, 1], 58, chroma=chroma, out=ycc[:, 1])  # in place, on a strided plane
    np.testing.assert_allclose(got, expected, atol=2e-3)
    np.testing.assert_array_equal(ycc[:, [0, 2]], before[:, [0, 2]])  # the other planes untouched


def test_jpeg_one_224_px_image_matches_pillow():
    """The one-image route (numpy, separable DCT) against libjpeg at ImageNet-C's qualities (25 down to 7): as
    close as the batched torch route on the same images (PSNR 42.6-45.7 dB, within 0.5 dB of it), far below
    what the coding itself changes."""
    pil = pytest.importorskip("PIL.Image")
    import io

    x = np.round(natural((3, 3, 224, 224), seed=5) * 255.0)
    p = JpegCompression()
    for severity in (1, 3, 5):
        ours = np.concatenate([p.apply(x[i:i + 1], severity, schema=Schema("image", value_range=(0.0, 255.0)))
                               for i in range(3)])
        theirs = []
        for img in x.astype(np.uint8).transpose(0, 2, 3, 1):
            buf = io.BytesIO()
            pil.fromarray(img).save(buf, "JPEG", quality=p.quality(severity, 224))
            theirs.append(np.asarray(pil.open(io.BytesIO(buf.getvalue())).convert("RGB")).transpose(2, 0, 1))
        theirs = np.stack(theirs).astype(np.float64)
        mse = float(np.mean((ours - theirs) ** 2))
        psnr = 10 * np.log10(255.0**2 / mse)
        batched = _jpeg_cpu(torch.from_numpy(x), p.quality(severity, 224)).clamp(0, 255).numpy()  # torch route
        reference = 10 * np.log10(255.0**2 / float(np.mean((batched - theirs) ** 2)))
        assert psnr > 42 and psnr > reference - 0.5, (severity, psnr, reference)
        assert mse < 0.05 * float(np.mean((x - theirs) ** 2)), (severity, psnr)


def test_large_array_validation_finds_nan_and_infinity_and_takes_huge_finite_values():
    x = natural((1, 3, 224, 224)) * 255.0
    p = JpegCompression()
    byte = Schema("image", value_range=(0.0, 255.0))
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[0, 1, 100, 7] = bad
        with pytest.raises(InputError, match="NaN or infinite"):
            p.apply(y, 3, schema=byte)
    y = x.copy()
    y[0, 0, :2, :2] = 3e30  # finite, but the sum of squares overflows: checked value by value, then clipped
    out = p.apply(y, 3, schema=byte)
    assert np.isfinite(out).all() and out.max() <= 255.0


def test_elastic_displacement_scales_with_alpha():
    x = natural((4, 1, 48, 48))
    e = perturb.get("elastic_transform")
    d = [change(x, e.apply(x, s, rng=0, schema=UNIT)) for s in (1, 5)]
    assert 1.5 < d[1] / d[0] < 30 / 12.5 * 1.1  # displacement grows 2.4x, the change a bit less


# -- geometry ------------------------------------------------------------------------------------------------
def test_flip_is_exact_for_the_chosen_fraction():
    x = natural((400, 1, 5, 7))
    out = Flip().apply(x, 2, rng=0, schema=UNIT)
    flipped = np.all(out == x[..., ::-1], axis=(1, 2, 3))
    kept = np.all(out == x, axis=(1, 2, 3))
    assert np.all(flipped | kept)
    assert flipped.mean() == pytest.approx(0.4, abs=0.08)
    np.testing.assert_array_equal(Flip().apply(x, 5, rng=0, schema=UNIT), x[..., ::-1])


@pytest.mark.parametrize(("h", "w"), [(40, 40), (31, 45)])
@pytest.mark.parametrize("severity", [1, 3, 5])
def test_occlusion_covers_the_table_area(h, w, severity):
    x = np.full((5, 3, h, w), 0.5, dtype=np.float32)
    out = Occlusion(fill=0.25).apply(x, severity, rng=0, schema=UNIT)
    covered = out == 0.25
    assert np.all(covered | (out == 0.5))
    assert np.all(covered.all(axis=1) == covered.any(axis=1))  # every channel
    a = Occlusion.levels[severity - 1]
    expected = round(np.sqrt(a) * h) * round(np.sqrt(a) * w) / (h * w)
    np.testing.assert_allclose(covered[:, 0].mean(axis=(1, 2)), expected)
    assert expected == pytest.approx(a, rel=0.15)


def test_occlusion_fill_is_validated():
    with pytest.raises(ConfigError, match=r"Occlusion\(fill=\.\.\.\) must be a number in \[0, 1\]"):
        Occlusion(fill=2)


def test_crop_of_a_ramp_magnifies_by_one_over_k():
    w = 64
    x = np.tile(np.linspace(0.0, 1.0, w, dtype=np.float32), (6, 1, 16, 1))
    out = Crop().apply(x, 5, rng=0, schema=UNIT)
    slope = np.diff(out[:, 0, 8, 4:-4], axis=1).mean(axis=1)
    np.testing.assert_allclose(slope, Crop.levels[4] / (w - 1), rtol=1e-3)
    assert out.min() >= 0.0 and np.all(out[:, 0, :, 0] >= 0.0)


def test_scale_changes_a_ramp_slope_by_the_factor():
    x = np.tile(np.linspace(0.25, 0.75, 64, dtype=np.float32), (40, 1, 8, 1))
    out = Scale().apply(x, 4, rng=0, schema=UNIT)
    ratio = np.diff(out[:, 0, 4, 28:36], axis=1).mean(axis=1) / (0.5 / 63)
    assert np.all(np.isclose(ratio, 1.2, rtol=1e-3) | np.isclose(ratio, 1 / 1.2, rtol=1e-3))
    assert 10 < np.isclose(ratio, 1.2, rtol=1e-3).sum() < 30


# -- any memory layout ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(perturb.names("image")))
def test_strided_views_and_read_only_arrays_give_the_contiguous_result(name):
    nhwc = np.ascontiguousarray(natural((3, 3, 20, 28)).transpose(0, 2, 3, 1)) * 255.0
    x = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
    byte = Schema("image", value_range=(0.0, 255.0))
    p = perturb.get(name)
    for severity in (1, 5):
        expected = p.apply(x, severity, rng=7, schema=byte)
        view = torch.from_numpy(nhwc).permute(0, 3, 1, 2)  # the usual numpy-to-torch path: N x H x W x C memory
        assert not view.is_contiguous()
        out = p.apply(view, severity, rng=7, schema=byte)
        assert isinstance(out, torch.Tensor) and out.is_contiguous() and out.shape == view.shape
        np.testing.assert_allclose(out.numpy(), expected, atol=1e-3)
        np.testing.assert_allclose(p.apply(nhwc.transpose(0, 3, 1, 2), severity, rng=7, schema=byte), expected,
                                   atol=1e-3)  # a strided array
        flipped = x[:, :, ::-1]  # negative strides, which torch.from_numpy refuses
        np.testing.assert_allclose(p.apply(flipped, severity, rng=7, schema=byte),
                                   p.apply(flipped.copy(), severity, rng=7, schema=byte), atol=1e-3)
        frozen = x.copy()
        frozen.flags.writeable = False  # torch warns on read-only memory; warnings are errors here
        np.testing.assert_array_equal(p.apply(frozen, severity, rng=7, schema=byte), expected)
    np.testing.assert_array_equal(view.numpy(), x)  # nothing written into the caller's memory


# -- constants: size-scaled or one published table ------------------------------------------------------------
SIZED = ["gaussian_blur", "pixelation", "defocus_blur", "motion_blur", "zoom_blur", "glass_blur", "fog",
         "jpeg_compression"]


def test_exactly_the_size_dependent_corruptions_take_constants():
    import inspect
    takes = {n for n in perturb.names("image")
             if "constants" in inspect.signature(perturb.PERTURBATIONS.get(n)).parameters}
    assert takes == set(SIZED)


@pytest.mark.parametrize("name", SIZED)
def test_imagenet_constants_at_any_size_are_the_224_px_table(name):
    auto, imagenet, cifar = (perturb.get(name, constants=c) for c in ("auto", "imagenet", "cifar"))
    assert perturb.get(name).params() == {"constants": "auto"}
    assert repr(imagenet) == f"{type(imagenet).__name__}(constants='imagenet')"
    assert type(imagenet)(**imagenet.params()).params() == imagenet.params()  # YAML round trip
    table = {  # a size-dependent quantity of each class, at a given severity and image side
        "gaussian_blur": lambda p, s, n: p.sigma(s, n),
        "pixelation": lambda p, s, n: p.factor(s, n),
        "defocus_blur": lambda p, s, n: p.kernel(s, n).tobytes(),
        "motion_blur": lambda p, s, n: p.taps(s, n).tobytes(),
        "zoom_blur": lambda p, s, n: p.zooms(s, n).tobytes(),
        "glass_blur": lambda p, s, n: p.params_at(s, n),
        "fog": lambda p, s, n: p.params_at(s, n),
        "jpeg_compression": lambda p, s, n: p.quality(s, n),
    }[name]
    for severity in (1, 3, 5):
        for size in (8, 32, 64, 500):
            assert table(imagenet, severity, size) == table(auto, severity, 224)
            assert table(cifar, severity, size) == table(auto, severity, 32)


def test_imagenet_constants_change_small_images_as_much_as_the_peer_tables_say():
    x = natural((4, 3, 32, 32))
    for name in ("defocus_blur", "jpeg_compression", "pixelation", "zoom_blur"):
        auto = change(x, perturb.get(name).apply(x, 3, rng=0, schema=UNIT))
        imagenet = change(x, perturb.get(name, constants="imagenet").apply(x, 3, rng=0, schema=UNIT))
        assert imagenet > auto  # ImageNet-C's pixel constants are for 224 px: stronger on 32 px images
    assert JpegCompression(constants="imagenet").quality(3, 32) == 15


def test_constants_are_validated():
    with pytest.raises(ConfigError, match=r"DefocusBlur\(constants=\.\.\.\) must be one of \['auto', 'imagenet', "
                                          r"'cifar'\]; got 'ImageNet'"):
        perturb.get("defocus_blur", constants="ImageNet")
    with pytest.raises(ConfigError, match="constants"):
        perturb.get("gaussian_noise", constants="imagenet")  # pixel-wise: ImageNet-C's at every size already
