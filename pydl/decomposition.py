"""``pydl.decomposition.PCA``: principal component analysis by the SVD of the centred data,
with scikit-learn's API (``sklearn.decomposition.PCA`` with ``svd_solver="full"``).

The course (lecture notes 20.1) sets PCA next to the autoencoder: the k leading principal
directions span the subspace that a linear autoencoder with a k-unit code, trained on the
squared reconstruction error, converges to (Baldi & Hornik, 1989); PCA finds it in closed
form. With X_c = X - mean = U S V^T (S descending), the components are the rows of V^T, the
code of x is (x - mean) V_k, and the reconstruction code V_k^T + mean minimises the squared
error over all rank-k affine maps (Eckart-Young).

Inputs may be NumPy arrays or pydl Tensors (CPU); ``transform`` and friends return the type
they were given. The fitted attributes are NumPy arrays, as scikit-learn's. Float32 input is
fitted in float32 (as scikit-learn), anything else in float64.
"""
from __future__ import annotations

from numbers import Integral, Real
from typing import Optional, Union

import numpy as np

from pydl.tensor import Tensor

__all__ = ["PCA", "svd_flip"]


def svd_flip(u: Optional[np.ndarray], v: np.ndarray, u_based_decision: bool = False):
    """Make the SVD's signs deterministic, as scikit-learn's ``utils.extmath.svd_flip``: with
    ``u_based_decision=False`` (what its PCA uses since 1.5) each row of ``v`` is flipped so
    that its entry of largest absolute value is positive; ``u``'s columns flip with it."""
    if u_based_decision:
        signs = np.sign(u[np.argmax(np.abs(u), axis=0), np.arange(u.shape[1])])
    else:
        signs = np.sign(v[np.arange(v.shape[0]), np.argmax(np.abs(v), axis=1)])
    signs[signs == 0] = 1.0
    if u is not None:
        u = u * signs[: u.shape[1]]
    return u, v * signs[:, None]


def _as_array(X, what: str, dtype=None) -> np.ndarray:
    if isinstance(X, Tensor):
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"PCA.{what}: expected a 2-D array (n_samples, n_features), got shape "
                         f"{X.shape}")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise TypeError(f"PCA.{what}: expected numbers, got dtype {X.dtype}")
    if dtype is None:
        dtype = np.float32 if X.dtype == np.float32 else np.float64
    X = X.astype(dtype, copy=False)
    if not np.isfinite(X).all():
        raise ValueError(f"PCA.{what}: input contains NaN or infinity")
    return X


def _like(result: np.ndarray, like):
    """Return ``result`` as the type of the user's input (a Tensor for a Tensor)."""
    if isinstance(like, Tensor):
        return Tensor._wrap(np.ascontiguousarray(result))
    return result


class PCA:
    """Principal component analysis (scikit-learn's ``PCA(svd_solver="full")``).

    Args:
        n_components: int k (1 <= k <= min(n_samples, n_features)); a float in (0, 1): the
            fewest components whose explained variance ratio sums to more than it; None: all
            min(n_samples, n_features).
        whiten: scale the codes to unit variance (divide by sqrt(explained_variance_));
            ``inverse_transform`` undoes it.
        copy: accepted for scikit-learn compatibility (the input is never modified).

    Attributes after ``fit`` (NumPy arrays): ``components_`` (k, n_features), rows are the
    principal directions (unit norm, orthogonal, sign fixed by ``svd_flip``);
    ``explained_variance_`` (k,) = S^2 / (n_samples - 1); ``explained_variance_ratio_`` (k,);
    ``singular_values_`` (k,); ``mean_`` (n_features,); ``noise_variance_`` (the mean of the
    discarded variances, Tipping & Bishop); ``n_components_``, ``n_features_in_``,
    ``n_samples_``.
    """

    def __init__(self, n_components: Union[int, float, None] = None, *, copy: bool = True,
                 whiten: bool = False):
        self.n_components = n_components
        self.copy = copy
        self.whiten = whiten

    def __repr__(self) -> str:
        args = []
        if self.n_components is not None:
            args.append(f"n_components={self.n_components!r}")
        if self.whiten:
            args.append("whiten=True")
        return f"PCA({', '.join(args)})"

    def _check_n_components(self, n_samples: int, n_features: int):
        k = self.n_components
        limit = min(n_samples, n_features)
        if k is None:
            return limit
        if isinstance(k, str):
            raise ValueError(f"PCA: n_components={k!r} is not supported by pydl (scikit-learn's "
                             f"'mle'); pass an int, a float in (0, 1) or None")
        if isinstance(k, bool) or not isinstance(k, (Integral, Real)):
            raise TypeError(f"PCA: n_components must be an int, a float or None, got "
                            f"{type(k).__name__}")
        if isinstance(k, Integral):
            if not 1 <= k <= limit:
                raise ValueError(f"PCA: n_components={k} must be between 1 and min(n_samples, "
                                 f"n_features)={limit} (data of shape "
                                 f"({n_samples}, {n_features}))")
            return int(k)
        if not 0.0 < k < 1.0:
            raise ValueError(f"PCA: a float n_components is a fraction of the variance in "
                             f"(0, 1), got {k}")
        return float(k)

    def _fit(self, X):
        X = _as_array(X, "fit")
        n, d = X.shape
        if n < 2:
            raise ValueError(f"PCA.fit: needs at least 2 samples to estimate a variance, got "
                             f"data of shape {X.shape}")
        k = self._check_n_components(n, d)
        self.mean_ = X.mean(axis=0)
        centred = X - self.mean_
        U, S, Vt = np.linalg.svd(centred, full_matrices=False)
        U, Vt = svd_flip(U, Vt, u_based_decision=False)
        variance = S ** 2 / (n - 1)
        total = variance.sum()
        ratio = variance / total if total > 0 else np.zeros_like(variance)
        if isinstance(k, float):
            # the fewest components whose cumulated ratio exceeds k (scikit-learn's rule)
            cumulated = np.cumsum(ratio, dtype=np.float64)
            k = int(np.searchsorted(cumulated, k, side="right")) + 1
            k = min(k, len(S))
        self.n_components_ = k
        self.n_features_in_ = d
        self.n_samples_ = n
        self.components_ = Vt[:k]
        self.explained_variance_ = variance[:k]
        self.explained_variance_ratio_ = ratio[:k]
        self.singular_values_ = S[:k].copy()
        self.noise_variance_ = (float(variance[k:].mean()) if k < min(n, d) else 0.0)
        self.noise_variance_ = np.asarray(self.noise_variance_, dtype=X.dtype)[()]
        return U[:, :k], S[:k], X

    def fit(self, X, y=None) -> "PCA":
        """Fit the model to X (n_samples, n_features); ``y`` is ignored. Returns self."""
        self._fit(X)
        return self

    def fit_transform(self, X, y=None):
        """Fit and return the codes of X, (n_samples, n_components_): U_k S_k (U_k sqrt(n - 1)
        when whitening), the same as ``fit(X).transform(X)`` up to rounding."""
        U, S, _ = self._fit(X)
        Z = U * (np.sqrt(self.n_samples_ - 1) if self.whiten else S)
        return _like(Z, X)

    def _check_fitted(self, what: str):
        if not hasattr(self, "components_"):
            raise RuntimeError(f"PCA.{what}: this PCA instance is not fitted yet; call fit "
                               f"first")

    def transform(self, X):
        """The codes (X - mean_) components_^T, (n_samples, n_components_); divided by
        sqrt(explained_variance_) when whitening."""
        self._check_fitted("transform")
        A = _as_array(X, "transform", self.components_.dtype)
        if A.shape[1] != self.n_features_in_:
            raise ValueError(f"PCA.transform: X has {A.shape[1]} features, but PCA was fitted "
                             f"with {self.n_features_in_} (X shape {A.shape})")
        Z = (A - self.mean_) @ self.components_.T
        if self.whiten:
            Z = Z / np.sqrt(self.explained_variance_)
        return _like(Z, X)

    def inverse_transform(self, X):
        """Back to the data space: Z components_ + mean_ (Z scaled by sqrt(explained_variance_)
        first when whitening): the reconstruction, (n_samples, n_features)."""
        self._check_fitted("inverse_transform")
        Z = _as_array(X, "inverse_transform", self.components_.dtype)
        if Z.shape[1] != self.n_components_:
            raise ValueError(f"PCA.inverse_transform: codes have {Z.shape[1]} components, but "
                             f"PCA has {self.n_components_} (codes shape {Z.shape})")
        if self.whiten:
            Z = Z * np.sqrt(self.explained_variance_)
        return _like(Z @ self.components_ + self.mean_, X)
