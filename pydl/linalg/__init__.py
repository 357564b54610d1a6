"""``pydl.linalg``: linear algebra with ``torch.linalg``'s names, arguments and return types.

Solvers (``solve``, ``inv``, ``pinv``, ``lstsq``), decompositions (``cholesky``, ``eigh``,
``eigvalsh``, ``svd``, ``svdvals``) and norms (``vector_norm``, ``matrix_norm``, ``norm``), for
float32 and float64 tensors with any leading batch dims. The forward passes run NumPy's LAPACK
on CPU; every backward formula is written with pydl ops, so gradients are differentiable again
(``create_graph=True``: Hessians, Newton steps, gradgradcheck).

Failures of the matrix itself (singular, not positive-definite) raise ``LinAlgError``, a
RuntimeError, naming the batch element as PyTorch does.
"""
from pydl.linalg._common import LinAlgError
from pydl.linalg.decompositions import cholesky, eigh, eigvalsh, svd, svdvals
from pydl.linalg.norms import matrix_norm, norm, vector_norm
from pydl.linalg.solvers import inv, lstsq, pinv, solve

__all__ = ["LinAlgError", "cholesky", "eigh", "eigvalsh", "inv", "lstsq", "matrix_norm", "norm",
           "pinv", "solve", "svd", "svdvals", "vector_norm"]
