"""The theory tools of :mod:`skmixup.theory` for PyTorch classifiers.

:mod:`skmixup.theory` sends :class:`MixupMLPClassifier`,
:class:`MixupRegularizedMLPClassifier` and skorch classifiers
(:class:`MixupNeuralNetClassifier`, ``NeuralNetClassifier``,
``NeuralNetBinaryClassifier``) here. Every evaluation runs on a float64 copy of
the fitted module on the CPU, so the numbers are exact to float64 rounding
whatever the training dtype or device.

* the exact Mixup loss goes through :func:`skmixup.theory.mixup_loss`'s own
  evaluation on explicitly mixed inputs, with :class:`Float64Classifier` as the
  model;
* ``R1``, ``R2``, ``R3`` are those of
  :func:`skmixup.neural_network._penalty.mixup_terms` (Lemma 3.1 / Eq. (3) of
  Zhang et al., 2021);
* ``eps_mix`` is the neural-network version of Theorem 3.1: the input gradient
  ``grad_x f(x_i)`` of each sample replaces ``theta``.
"""

import copy
import warnings

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNetBinaryClassifier, NeuralNetClassifier

from skmixup._mixing import draw_partners, mixing_moments
from skmixup.exceptions import TheoryAssumptionWarning
from skmixup.neural_network._base import _BaseMixupMLPClassifier
from skmixup.neural_network._penalty import mixup_terms, partner_moments
from skmixup.utils._labels import label_indices

__all__ = [
    "Float64Classifier",
    "approximate_mixup_loss",
    "float64_classifier",
    "is_torch_classifier",
    "mixup_radius",
]

# (anchor, direction) rows per directional-derivative call
_BLOCK_ROWS = 1 << 14


def is_torch_classifier(estimator):
    """Whether :mod:`skmixup.theory` should evaluate ``estimator`` here."""
    return isinstance(
        estimator,
        (_BaseMixupMLPClassifier, NeuralNetClassifier, NeuralNetBinaryClassifier),
    )


class Float64Classifier:
    """A fitted PyTorch classifier as a float64 function on the CPU.

    Parameters
    ----------
    module : torch.nn.Module
        A float64 copy of the fitted module, in eval mode.
    link : {"softmax", "sigmoid"}
        How the logits give probabilities.
    classes : ndarray
        ``classes_`` of the estimator (skorch nets: class indices).
    n_features : int or None
        Expected number of input columns, when known.
    log_output : bool
        The module returns probabilities (skorch's ``NLLLoss`` convention); their
        logarithm is used as logits.
    """

    def __init__(self, module, link, classes, n_features, log_output):
        self.module = module
        self.link = link
        self.classes_ = np.asarray(classes)
        self.n_features = n_features
        self.log_output = log_output

    def logits(self, X):
        """Logits of a float64 tensor ``X`` (differentiable in ``X``)."""
        out = self.module(X)
        out = out[0] if isinstance(out, tuple) else out
        if self.log_output:
            out = torch.log(out + torch.finfo(out.dtype).tiny)
        return out[:, None] if out.ndim == 1 else out

    def tensor(self, X):
        """``X`` (array or sparse matrix) as a float64 CPU tensor, shape-checked."""
        X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
        if self.n_features is not None and X.shape[1] != self.n_features:
            raise ValueError(
                f"X has {X.shape[1]} features, the estimator expects {self.n_features}."
            )
        return torch.as_tensor(np.ascontiguousarray(X, dtype=np.float64))

    def encode(self, y, n_samples):
        """Column index of each label in ``classes_``."""
        y = np.asarray(y)
        if y.shape != (n_samples,):
            raise ValueError(f"y must have shape ({n_samples},), got {y.shape}.")
        return label_indices(self.classes_, y)

    def predict_log_proba(self, X):
        """Log-probabilities, float64, columns in the order of ``classes_``."""
        with torch.no_grad():
            f = self.logits(self.tensor(X))
        if self.link == "sigmoid":
            f = torch.cat(
                [torch.nn.functional.logsigmoid(-f), torch.nn.functional.logsigmoid(f)],
                1,
            )
        else:
            f = torch.log_softmax(f, dim=1)
        return f.numpy()

    def predict_proba(self, X):
        """Probabilities, float64."""
        return np.exp(self.predict_log_proba(X))


def float64_classifier(estimator):
    """:class:`Float64Classifier` of a fitted PyTorch classifier."""
    if isinstance(estimator, _BaseMixupMLPClassifier):
        check_is_fitted(estimator)
        net, classes = estimator.net_, estimator.classes_
        n_features = estimator.n_features_in_
    else:
        estimator.check_is_fitted()
        net, n_features = estimator, None
    link = "sigmoid" if isinstance(net, NeuralNetBinaryClassifier) else "softmax"
    if link == "sigmoid":
        classes = np.array([0, 1])
    elif not isinstance(estimator, _BaseMixupMLPClassifier):
        classes = np.asarray(net.classes_)
    log_output = isinstance(getattr(net, "criterion_", None), torch.nn.NLLLoss)
    module = copy.deepcopy(net.module_).to(device="cpu", dtype=torch.float64)
    module.eval()
    for param in module.parameters():
        param.requires_grad_(False)
    return Float64Classifier(module, link, classes, n_features, log_output)


def approximate_mixup_loss(estimator, X, y, sample_weight, moments, n_partners, rng):
    """``(standard, R1, R2, R3)`` of a fitted PyTorch classifier on ``X, y``.

    ``sample_weight`` (normalised to sum to one) weights the anchors and defines
    the partner law; ``moments`` is ``(m1, m2)``; ``n_partners="all"`` is exact
    (training mean and covariance), an int draws that many partners per anchor
    from the ``numpy.random.RandomState`` ``rng``.
    """
    model = float64_classifier(estimator)
    Xt = model.tensor(X)
    n = Xt.shape[0]
    codes = torch.as_tensor(model.encode(y, n))
    sw = torch.as_tensor(np.asarray(sample_weight, dtype=np.float64))
    sw = sw / sw.sum()
    m1, m2 = moments
    if n_partners == "all":
        partners = partner_moments(Xt, sw)
        per_anchor = partners.factor.shape[1] + 1
    else:
        idx, _ = draw_partners(n, n_partners, rng, sw.numpy())
        per_anchor = idx.shape[1]
    target = codes if model.link == "softmax" else codes.to(torch.float64)
    rows = max(1, _BLOCK_ROWS // per_anchor)
    totals = torch.zeros(4, dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, n, rows):
            sl = slice(start, min(start + rows, n))
            block = partners if n_partners == "all" else Xt[torch.as_tensor(idx[sl])]
            terms = mixup_terms(
                model.logits,
                Xt[sl],
                target[sl],
                m1=m1,
                m2=m2,
                partners=block,
                link=model.link,
            )
            values = torch.stack([terms.standard, terms.R1, terms.R2, terms.R3])
            totals += values @ sw[sl]
    return tuple(float(v) for v in totals)


def mixup_radius(
    estimator, X, *, mixup_alpha, mixup_beta=None, per_sample=False, y=None
):
    """``(eps_mix, eps_mix_l2, per_sample)`` with ``grad_x f(x_i)`` for ``theta``.

    The neural-network version of Theorem 3.1 (Zhang et al., 2021): for a network
    with ``f(x_i) = grad f(x_i)^T x_i`` and ``Hess f(x_i) = 0`` (ReLU networks
    without biases), centered training inputs and zero training error,
    ``eps_mix = R c_x m1`` with ``R = min_i |cos(grad f(x_i), x_i)|`` and
    ``c_x = min_i ||x_i|| / sqrt(d)``. For two classes ``f`` is the logit
    difference ``f_1 - f_0`` (or the single logit of a sigmoid output). For more
    classes (an extension, derived for this library) the direction is the loss
    gradient ``J_i^T (p_i - y_i)``, which needs ``y``.
    """
    model = float64_classifier(estimator)
    Xt = model.tensor(X)
    n, d = Xt.shape
    codes = None if y is None else torch.as_tensor(model.encode(y, n))
    Xg = Xt.clone().requires_grad_(True)
    with torch.enable_grad():
        F = model.logits(Xg)
        binary = F.shape[1] <= 2
        if binary:
            score = F[:, 0] if F.shape[1] == 1 else F[:, 1] - F[:, 0]
        elif codes is None:
            raise ValueError(
                "mixup_radius needs y for a network with more than two classes: "
                "the direction is the loss gradient J^T (p - y)."
            )
        else:
            resid = torch.softmax(F, 1) - torch.nn.functional.one_hot(codes, F.shape[1])
            score = (resid.detach() * F).sum(1)
        (G,) = torch.autograd.grad(score.sum(), Xg)
    score, F = score.detach(), F.detach()
    m1, _ = mixing_moments(mixup_alpha, mixup_beta)
    g_norm = G.norm(dim=1)
    x_norm = Xt.norm(dim=1)
    proj = (G * Xt).sum(1)
    _check_assumptions(Xt, F, score, proj, codes, binary)
    c_x = float(x_norm.min()) / np.sqrt(d)
    denom = g_norm * x_norm
    cos = torch.where(denom > 0, proj.abs() / denom.clamp_min(1e-300), 0.0)
    eps = float(cos.min()) * c_x * m1
    ps = None
    if per_sample:
        ps = torch.where(g_norm > 0, m1 * proj.abs() / g_norm.clamp_min(1e-300), 0.0)
        ps = ps.numpy()
    return eps, eps * np.sqrt(d), ps


def _check_assumptions(X, F, score, proj, codes, binary):
    problems = []
    mean = X.mean(0)
    if float(mean.norm()) > 1e-8 * max(1.0, float(X.norm(dim=1).max())):
        problems.append(
            f"X is not centered (||x_bar|| = {float(mean.norm()):.3g}; the theorem "
            "needs x_bar = 0, e.g. StandardScaler on the training set)"
        )
    gap = float((score - proj).abs().max())
    if gap > 1e-6 * max(1.0, float(score.abs().max())):
        problems.append(
            "the network is not positively homogeneous (f(x_i) != grad f(x_i)^T "
            f"x_i, by up to {gap:.3g}): the theorem needs a ReLU network without "
            "biases"
        )
    if codes is not None:
        if binary:
            wrong = (2.0 * codes - 1.0) * score < 0
        else:
            wrong = F.argmax(1) != codes
        if int(wrong.sum()):
            problems.append(
                f"the network misclassifies {int(wrong.sum())} training points"
            )
    if problems:
        warnings.warn(
            "The assumptions of the neural-network version of Theorem 3.1 do not "
            "hold: "
            + "; ".join(problems)
            + ". eps_mix is returned but the inequality is not guaranteed.",
            TheoryAssumptionWarning,
            stacklevel=4,
        )
