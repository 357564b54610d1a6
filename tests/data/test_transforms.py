"""Image transforms against loop-based NumPy references."""
import itertools

import numpy as np
import pytest

import pydl
from pydl.data import transforms as T


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _image(rng, shape=(3, 5, 7)):
    return rng.standard_normal(shape).astype(np.float32)


def _ref_shift(img, dy, dx, fill=0.0):
    """out[c, i, j] = img[c, i - dy, j - dx] inside the image, else fill (loops)."""
    c, h, w = img.shape
    out = np.full_like(img, fill)
    for ch in range(c):
        for i in range(h):
            for j in range(w):
                si, sj = i - dy, j - dx
                if 0 <= si < h and 0 <= sj < w:
                    out[ch, i, j] = img[ch, si, sj]
    return out


def _ref_rot90(img, k):
    """Counter-clockwise rotation by k*90 degrees of each (H, W) plane (loops)."""
    out = img
    for _ in range(k % 4):
        c, h, w = out.shape
        r = np.empty((c, w, h), dtype=img.dtype)
        for ch in range(c):
            for i in range(w):
                for j in range(h):
                    r[ch, i, j] = out[ch, j, w - 1 - i]
        out = r
    return out


def _ref_pad(img, left, top, right, bottom, fill):
    c, h, w = img.shape
    out = np.full((c, h + top + bottom, w + left + right), fill, dtype=img.dtype)
    for ch in range(c):
        for i in range(h):
            for j in range(w):
                out[ch, i + top, j + left] = img[ch, i, j]
    return out


def _matches_one(out, candidates):
    return [i for i, c in enumerate(candidates) if c.shape == out.shape and np.array_equal(out, c)]


def test_compose_applies_in_order():
    t = T.Compose([T.Lambda(lambda x: x + 1), T.Lambda(lambda x: x * 2)])
    assert t(3) == 8
    assert "Lambda" in repr(t)


def test_to_tensor(rng):
    hwc = rng.integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
    out = T.ToTensor()(hwc)
    assert isinstance(out, pydl.Tensor) and out.shape == (3, 4, 6) and out.dtype == np.float32
    for c in range(3):
        np.testing.assert_allclose(out.numpy()[c], hwc[:, :, c] / 255.0, rtol=1e-6)
    gray = T.ToTensor()(np.ones((2, 2), np.float64))
    assert gray.shape == (1, 2, 2) and gray.numpy().max() == 1.0
    with pytest.raises(ValueError, match="ToTensor"):
        T.ToTensor()(np.zeros((1, 2, 3, 4)))


@pytest.mark.parametrize("shape", [(3, 5, 7), (2, 3, 1, 4), (1, 1, 1)])
def test_normalize_matches_reference(rng, shape):
    img = _image(rng, shape)
    c = shape[-3]
    mean = rng.standard_normal(c).tolist()
    std = (rng.random(c) + 0.5).tolist()
    out = T.Normalize(mean, std)(pydl.from_numpy(img))
    ref = np.empty(shape, dtype=np.float64)
    for idx in itertools.product(*map(range, shape)):
        ch = idx[-3]
        ref[idx] = (float(img[idx]) - mean[ch]) / std[ch]
    assert isinstance(out, pydl.Tensor) and out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-6)
    # NumPy in, NumPy out; in place modifies the array
    arr = img.copy()
    same = T.Normalize(mean, std, inplace=True)(arr)
    assert same is arr
    np.testing.assert_allclose(arr, ref, rtol=1e-5, atol=1e-6)


def test_normalize_fit_uses_training_statistics(rng):
    scale = np.array([2.0, 0.5]).reshape(1, 2, 1, 1)
    train = (rng.standard_normal((6, 2, 3, 4)) * scale + 3).astype(np.float32)
    norm = T.Normalize.fit(pydl.from_numpy(train))
    for c in range(2):
        vals = [float(v) for v in train[:, c].ravel()]
        m = sum(vals) / len(vals)
        s = (sum((v - m) ** 2 for v in vals) / len(vals)) ** 0.5
        assert norm.mean[c] == pytest.approx(m, rel=1e-6)
        assert norm.std[c] == pytest.approx(s, rel=1e-6)
    z = norm(train)
    np.testing.assert_allclose(z.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(0, 2, 3)), 1, atol=1e-5)
    const = T.Normalize.fit(np.ones((2, 1, 2, 2), np.float32))  # constant channel: std 1
    assert const.std.tolist() == [1.0]
    ds = pydl.data.TensorDataset(pydl.from_numpy(train), pydl.zeros(6))
    assert np.allclose(T.Normalize.fit(ds).mean, norm.mean)


def test_normalize_errors():
    with pytest.raises(ValueError, match="division by zero"):
        T.Normalize([0.0], [0.0])
    with pytest.raises(ValueError, match="3 channels"):
        T.Normalize([0, 0], [1, 1])(np.zeros((3, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        T.Normalize.fit(np.zeros((3, 2, 2)))
    with pytest.raises(TypeError, match="Tensor or numpy"):
        T.Normalize([0], [1])([1, 2, 3])


@pytest.mark.parametrize("cls,axis", [(T.RandomHorizontalFlip, -1), (T.RandomVerticalFlip, -2)])
def test_flips(rng, cls, axis):
    img = _image(rng)
    c, h, w = img.shape
    flipped = np.empty_like(img)
    for ch in range(c):
        for i in range(h):
            for j in range(w):
                if axis == -1:
                    flipped[ch, i, j] = img[ch, i, w - 1 - j]
                else:
                    flipped[ch, i, j] = img[ch, h - 1 - i, j]
    gen = pydl.Generator().manual_seed(0)
    outcomes = []
    for _ in range(60):
        out = cls(p=0.5, generator=gen)(pydl.from_numpy(img)).numpy()
        hit = _matches_one(out, [img, flipped])
        assert len(hit) == 1
        outcomes.append(hit[0])
    assert 10 < sum(outcomes) < 50  # both happen, about half the time
    assert np.array_equal(cls(p=1.0)(img), flipped)
    assert np.array_equal(cls(p=0.0)(img), img)
    with pytest.raises(ValueError, match="probability"):
        cls(p=1.5)


def test_rot90(rng):
    img = _image(rng, (2, 4, 4))
    refs = [_ref_rot90(img, k) for k in range(4)]
    gen = pydl.Generator().manual_seed(1)
    seen = set()
    for _ in range(60):
        hit = _matches_one(T.RandomRot90(generator=gen)(img), refs)
        assert len(hit) == 1
        seen.add(hit[0])
    assert seen == {0, 1, 2, 3}
    wide = _image(rng, (1, 3, 5))
    out = T.RandomRot90(ks=(2,))(pydl.from_numpy(wide)).numpy()
    np.testing.assert_array_equal(out, _ref_rot90(wide, 2))
    with pytest.raises(ValueError, match="non-square"):
        T.RandomRot90(ks=(1,))(wide)


@pytest.mark.parametrize("max_shift", [1, 2, (0, 3)])
def test_translate_is_a_zero_padded_shift(rng, max_shift):
    img = _image(rng, (2, 5, 6))
    my, mx = (max_shift, max_shift) if isinstance(max_shift, int) else max_shift
    shifts = [(dy, dx) for dy in range(-my, my + 1) for dx in range(-mx, mx + 1)]
    refs = [_ref_shift(img, dy, dx) for dy, dx in shifts]
    gen = pydl.Generator().manual_seed(2)
    seen = set()
    t = T.RandomTranslate(max_shift, generator=gen)
    for _ in range(40 * len(shifts)):
        out = t(pydl.from_numpy(img)).numpy()
        hit = _matches_one(out, refs)
        assert hit, "output is not a shift of the input"
        seen.add(shifts[hit[0]])
    assert seen == set(shifts)


def test_translate_fill_and_large_shift(rng):
    img = _image(rng, (1, 3, 3))
    out = T.RandomTranslate(5, fill=-7.0, generator=pydl.Generator().manual_seed(0))
    outs = [out(img) for _ in range(50)]
    candidates = [_ref_shift(img, dy, dx, fill=-7.0) for dy in range(-5, 6) for dx in range(-5, 6)]
    assert all(_matches_one(o, candidates) for o in outs)
    assert any(np.all(o == -7.0) for o in outs)  # shifted entirely out of the image
    with pytest.raises(ValueError, match="max_shift"):
        T.RandomTranslate(-1)


@pytest.mark.parametrize("size,padding", [(4, None), (5, 2), ((3, 6), (1, 0)), (7, (1, 2, 3, 0))])
def test_random_crop(rng, size, padding):
    img = _image(rng, (2, 5, 6))
    th, tw = (size, size) if isinstance(size, int) else size
    if padding is None:
        pad = (0, 0, 0, 0)
    elif isinstance(padding, int):
        pad = (padding,) * 4
    elif len(padding) == 2:
        pad = (padding[0], padding[1], padding[0], padding[1])
    else:
        pad = padding
    padded = _ref_pad(img, *pad, fill=0.0)
    H, W = padded.shape[1:]
    crops = [padded[:, i:i + th, j:j + tw] for i in range(H - th + 1) for j in range(W - tw + 1)]
    gen = pydl.Generator().manual_seed(3)
    seen = set()
    for _ in range(30 * len(crops)):
        out = T.RandomCrop(size, padding=padding, generator=gen)(pydl.from_numpy(img)).numpy()
        assert out.shape == (2, th, tw)
        hit = _matches_one(out, crops)
        assert hit
        seen.add(hit[0])
    assert len(seen) == len(crops)


def test_random_crop_modes_and_errors(rng):
    img = _image(rng, (1, 3, 3))
    out = T.RandomCrop(5, padding=1, padding_mode="edge")(img)
    np.testing.assert_array_equal(out, np.pad(img, [(0, 0), (1, 1), (1, 1)], mode="edge"))
    out = T.RandomCrop(5, padding=1, fill=2.5)(img)
    np.testing.assert_array_equal(out, _ref_pad(img, 1, 1, 1, 1, 2.5))
    assert T.RandomCrop(6, pad_if_needed=True)(img).shape == (1, 6, 6)
    with pytest.raises(ValueError, match="larger than"):
        T.RandomCrop(4)(img)
    with pytest.raises(ValueError, match="padding_mode"):
        T.RandomCrop(3, padding_mode="wrap")


def test_gaussian_noise_statistics(rng):
    img = np.zeros((1, 200, 200), np.float32) + 0.5
    out = T.AddGaussianNoise(mean=0.1, std=0.2, generator=pydl.Generator().manual_seed(0))(
        pydl.from_numpy(img)).numpy()
    noise = (out - img).astype(np.float64)
    assert out.dtype == np.float32 and out.shape == img.shape
    # 40,000 draws: the mean is within 4 standard errors, the std within 2%
    assert abs(noise.mean() - 0.1) < 4 * 0.2 / 200
    assert abs(noise.std() - 0.2) < 0.004
    clipped = T.AddGaussianNoise(std=1.0, clip=(0.0, 1.0))(img)
    assert clipped.min() >= 0.0 and clipped.max() <= 1.0
    with pytest.raises(TypeError, match="floating"):
        T.AddGaussianNoise()(np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="std"):
        T.AddGaussianNoise(std=-1)


def test_transforms_reproducible_under_global_seed(rng):
    img = _image(rng, (1, 6, 6))
    t = T.Compose([T.RandomCrop(6, padding=2), T.RandomHorizontalFlip(), T.AddGaussianNoise()])
    pydl.manual_seed(42)
    a = [t(img) for _ in range(5)]
    pydl.manual_seed(42)
    b = [t(img) for _ in range(5)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
