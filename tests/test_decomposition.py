"""pydl.decomposition.PCA against a float64 NumPy reference (eigen-decomposition of the
covariance, written here) and against scikit-learn where it is installed."""
import numpy as np
import pytest

import pydl
from pydl.decomposition import PCA, svd_flip


def reference_pca(X, k):
    """Principal directions from the covariance's eigenvectors (not the SVD PCA uses), signs
    fixed as scikit-learn: the largest-|.| entry of each direction positive."""
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(0)
    cov = (X - mean).T @ (X - mean) / (len(X) - 1)
    w, V = np.linalg.eigh(cov)
    order = np.argsort(w)[::-1]
    w, V = w[order], V[:, order].T
    for row in V:
        if row[np.argmax(np.abs(row))] < 0:
            row *= -1
    return mean, V[:k], w[:k], w / w.sum()


def data(rng, n, d, rank=None):
    if rank is None:
        return rng.standard_normal((n, d)) * np.linspace(3, 0.5, d) + rng.standard_normal(d)
    return rng.standard_normal((n, rank)) @ rng.standard_normal((rank, d))


@pytest.mark.parametrize("n,d,k", [(50, 7, 3), (13, 5, 5), (40, 11, 1), (6, 9, 4)])
def test_pca_matches_eigendecomposition(rng, n, d, k):
    X = data(rng, n, d)
    pca = PCA(n_components=k).fit(X)
    mean, V, var, ratio = reference_pca(X, k)
    np.testing.assert_allclose(pca.mean_, mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pca.components_, V, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(pca.explained_variance_, var, rtol=1e-10)
    np.testing.assert_allclose(pca.explained_variance_ratio_, ratio[:k], rtol=1e-10)
    np.testing.assert_allclose(pca.singular_values_, np.sqrt(var * (n - 1)), rtol=1e-10)
    Z = pca.transform(X)
    np.testing.assert_allclose(Z, (X - mean) @ V.T, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(pca.fit_transform(X), Z, rtol=1e-8, atol=1e-10)
    R = pca.inverse_transform(Z)
    np.testing.assert_allclose(R, Z @ V + mean, rtol=1e-8, atol=1e-10)
    assert pca.n_components_ == k and pca.n_features_in_ == d and pca.n_samples_ == n
    all_var = reference_pca(X, d)[2]
    noise = all_var[k:min(n, d)].mean() if k < min(n, d) else 0.0
    assert pca.noise_variance_ == pytest.approx(noise, rel=1e-8, abs=1e-12)


def test_pca_reconstruction_error_is_the_discarded_variance(rng):
    """Eckart-Young: the squared error of the rank-k reconstruction is (n-1) times the sum of
    the discarded eigenvalues of the covariance."""
    X = data(rng, 60, 8)
    w = reference_pca(X, 8)[2]
    for k in (1, 3, 8):
        pca = PCA(k).fit(X)
        err = np.sum((pca.inverse_transform(pca.transform(X)) - X) ** 2)
        assert err == pytest.approx((len(X) - 1) * w[k:].sum(), rel=1e-8, abs=1e-9)


def test_pca_whiten(rng):
    X = data(rng, 80, 6)
    pca = PCA(4, whiten=True)
    Z = pca.fit_transform(X)
    np.testing.assert_allclose(np.cov(Z, rowvar=False), np.eye(4), atol=1e-10)
    np.testing.assert_allclose(pca.transform(X), Z, rtol=1e-8, atol=1e-10)
    plain = PCA(4).fit(X)
    np.testing.assert_allclose(pca.inverse_transform(Z),
                               plain.inverse_transform(plain.transform(X)), rtol=1e-8, atol=1e-10)


def test_pca_float_and_none_components(rng):
    X = data(rng, 70, 9)
    ratio = reference_pca(X, 9)[3]
    cum = np.cumsum(ratio)
    for frac in (0.3, 0.8, 0.95, 0.999):
        k = PCA(frac).fit(X).n_components_
        assert cum[k - 1] > frac and (k == 1 or cum[k - 2] <= frac)
    assert PCA().fit(X).n_components_ == 9
    assert PCA(None).fit(X[:5]).n_components_ == 5  # min(n_samples, n_features)


def test_pca_tensors_in_tensors_out(rng):
    X = data(rng, 30, 5).astype(np.float32)
    pca = PCA(2)
    Zt = pca.fit_transform(pydl.from_numpy(X))
    assert isinstance(Zt, pydl.Tensor) and Zt.shape == (30, 2) and Zt.dtype == pydl.float32
    assert pca.components_.dtype == np.float32  # float32 in, float32 fit (as scikit-learn)
    Z = pca.transform(X)
    assert isinstance(Z, np.ndarray)
    np.testing.assert_allclose(Zt.numpy(), Z, rtol=1e-4, atol=1e-4)
    R = pca.inverse_transform(Zt)
    assert isinstance(R, pydl.Tensor) and R.shape == (30, 5)
    # non-contiguous input
    Xt = pydl.from_numpy(np.ascontiguousarray(X.T)).T
    np.testing.assert_allclose(pca.transform(Xt).numpy(), Z, rtol=1e-5, atol=1e-5)


def test_pca_errors(rng):
    X = data(rng, 10, 4)
    with pytest.raises(ValueError, match="between 1 and"):
        PCA(5).fit(X)
    with pytest.raises(ValueError, match="between 1 and"):
        PCA(0).fit(X)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        PCA(1.5).fit(X)
    with pytest.raises(ValueError, match="mle"):
        PCA("mle").fit(X)
    with pytest.raises(TypeError, match="n_components"):
        PCA(True).fit(X)
    with pytest.raises(ValueError, match="2-D"):
        PCA(2).fit(X[0])
    with pytest.raises(ValueError, match="at least 2 samples"):
        PCA(1).fit(X[:1])
    with pytest.raises(ValueError, match="NaN"):
        PCA(1).fit(np.full((3, 2), np.nan))
    with pytest.raises(RuntimeError, match="not fitted"):
        PCA(2).transform(X)
    pca = PCA(2).fit(X)
    with pytest.raises(ValueError, match="4"):
        pca.transform(X[:, :3])
    with pytest.raises(ValueError, match="PCA has 2"):
        pca.inverse_transform(X)
    assert repr(PCA(3, whiten=True)) == "PCA(n_components=3, whiten=True)"


def test_svd_flip_u_based(rng):
    u, s, vt = np.linalg.svd(rng.standard_normal((6, 4)), full_matrices=False)
    fu, fv = svd_flip(-u, -vt, u_based_decision=True)
    for j in range(4):
        assert fu[np.argmax(np.abs(fu[:, j])), j] > 0
    np.testing.assert_allclose((fu * s) @ fv, u @ np.diag(s) @ vt, atol=1e-12)


@pytest.mark.parametrize("k", [1, 5, 0.9, None])
@pytest.mark.parametrize("whiten", [False, True])
def test_pca_matches_scikit_learn(rng, k, whiten):
    sk = pytest.importorskip("sklearn.decomposition")
    X = data(rng, 45, 12)
    ours = PCA(k, whiten=whiten)
    theirs = sk.PCA(k, whiten=whiten, svd_solver="full")
    Z = ours.fit_transform(X)
    Zs = theirs.fit_transform(X)
    np.testing.assert_allclose(Z, Zs, rtol=1e-7, atol=1e-9)
    for name in ("components_", "explained_variance_", "explained_variance_ratio_",
                 "singular_values_", "mean_", "noise_variance_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-7,
                                   atol=1e-10, err_msg=name)
    assert ours.n_components_ == theirs.n_components_
    np.testing.assert_allclose(ours.transform(X[:7]), theirs.transform(X[:7]), rtol=1e-7,
                               atol=1e-9)
    np.testing.assert_allclose(ours.inverse_transform(Z), theirs.inverse_transform(Zs),
                               rtol=1e-7, atol=1e-9)
