"""Probability distributions with PyTorch's ``torch.distributions`` API.

``Normal``, ``Bernoulli`` (``probs`` or ``logits``), ``Categorical`` (``probs`` or ``logits``)
and ``Independent``; each has ``batch_shape``/``event_shape``, ``sample(sample_shape)``,
``rsample`` where a reparameterisation exists (Normal, and Independent over it), ``log_prob``,
``entropy``, ``mean``/``variance``/``stddev``/``mode``, ``expand`` and argument validation
(``validate_args``) raising torch's ValueErrors. ``kl_divergence(p, q)`` dispatches to closed
forms registered with ``register_kl``. Draws come from pydl's generator, so
``pydl.manual_seed`` reproduces them. Everything is built from differentiable pydl ops, so
gradients reach the parameters through ``rsample``, ``log_prob``, ``entropy`` and the KLs.

``entropy``, ``cross_entropy`` and ``relative_entropy`` (the KL divergence), from
``pydl.distributions.information``, are the lecture notes' 2.13-2.15 on probability tensors (or
on distributions).
"""
from pydl.distributions import constraints
from pydl.distributions.bernoulli import Bernoulli
from pydl.distributions.categorical import Categorical
from pydl.distributions.distribution import Distribution
from pydl.distributions.independent import Independent
from pydl.distributions.kl import kl_divergence, register_kl
from pydl.distributions.normal import Normal
from pydl.distributions.information import cross_entropy, entropy, relative_entropy

__all__ = ["Bernoulli", "Categorical", "Distribution", "Independent", "Normal", "constraints",
           "cross_entropy", "entropy", "kl_divergence", "register_kl", "relative_entropy"]
