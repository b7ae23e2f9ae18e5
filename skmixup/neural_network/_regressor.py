"""MixupMLPRegressor: an MLP regressor trained with Mixup or C-Mixup, on PyTorch.

A sibling of :class:`MixupMLPClassifier` on the shared private base
(``_base._BaseMixupMLP``: parameters, fit, seeds, fork, thread and Ctrl-C safety,
sample weights, callbacks, persistence); its skorch net is a sibling of
:class:`MixupNeuralNetClassifier` on ``_net._BaseMixupNet``. What is its own: the
target (mixed with the inputs, squared error), the partners (uniform or by the
label kernel, C-Mixup) and the validation score (R^2).
"""

from numbers import Real

import numpy as np
import torch
from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import EpochScoring
from skorch.dataset import get_len, unpack_data
from skorch.utils import to_tensor

from skmixup._constraints import PARTNER_CONSTRAINTS
from skmixup._mixing import resolve_kernel_bandwidth, sample_beta
from skmixup.neural_network._base import (
    BASE_CONSTRAINTS,
    _BaseMixupMLP,
    fill_parameter_docs,
)
from skmixup.neural_network._net import (
    _BASE_NET_CONSTRAINTS,
    _BaseMixupNet,
    _batch_device,
    _mix_inputs,
)

__all__ = ["MixupMLPRegressor"]

_MIXUP_PROB = {"mixup_prob": [Interval(Real, 0, 1, closed="both")]}


class _MixupRegressionNet(_BaseMixupNet):
    """The Mixup skorch net for regression (private to MixupMLPRegressor).

    A training batch is mixed with partners drawn in the batch, uniformly
    (weighted by the sample weights) or by the C-Mixup label kernel
    ``w_j exp(-||y_i - y_j||^2 / (2 h^2))``; inputs and targets are mixed with
    the same ``lam ~ Beta(alpha, beta)`` (not reordered to ``max(lam, 1 - lam)``:
    the label-kernel pair law is not symmetric) and the loss is the (weighted)
    mean squared error on the mixed targets. Validation sees clean data and is
    scored by R^2 (``valid_r2``). ``kernel_bandwidth=None`` is resolved at each
    ``fit`` from the training targets (``kernel_bandwidth_``).
    """

    def __init__(
        self,
        module,
        *args,
        criterion=torch.nn.MSELoss,
        mixup_prob=1.0,
        partners="uniform",
        kernel_bandwidth=None,
        **kwargs,
    ):
        super().__init__(module, *args, criterion=criterion, **kwargs)
        self.mixup_prob = mixup_prob
        self.partners = partners
        self.kernel_bandwidth = kernel_bandwidth

    def _net_constraints(self):
        return {**_BASE_NET_CONSTRAINTS, **_MIXUP_PROB, **PARTNER_CONSTRAINTS}

    @property
    def _default_callbacks(self):
        callbacks = list(super()._default_callbacks)
        r2 = ("valid_r2", EpochScoring("r2", lower_is_better=False, name="valid_r2"))
        return callbacks[:-1] + [r2] + callbacks[-1:]  # print_log stays last

    def _train_validated(self, X, y, sample_weight, routing, *args, **kwargs):
        if routing == "fit" or not hasattr(self, "kernel_bandwidth_"):
            self.kernel_bandwidth_ = resolve_kernel_bandwidth(
                self.partners, self.kernel_bandwidth, y, sample_weight
            )
        return super()._train_validated(X, y, sample_weight, routing, *args, **kwargs)

    def _draw_mixing(self, batch, weights=None):
        """``(lam, partner)`` on the batch's device, or None (not mixed)."""
        if self.mixup_prob < 1.0 and not self._mixup_rng_.random_sample() < float(
            self.mixup_prob
        ):
            return None
        Xi, yi = unpack_data(batch)
        n = get_len(yi)
        alpha, beta = self._mixup_law_
        lam = torch.from_numpy(sample_beta(alpha, beta, n, self._mixup_rng_))
        permutation = self.partners == "uniform" and weights is None
        if permutation:  # each row is the partner of exactly one row
            draw = torch.randperm(n, generator=self._mixup_generator_).double()
        else:
            draw = torch.rand(n, generator=self._mixup_generator_, dtype=torch.float64)
        host = torch.cat([lam, draw])
        device = _batch_device(Xi, self.device)
        if device.type == "cuda":
            host = host.pin_memory()
        on_device = host.to(device, non_blocking=True)  # one copy per batch
        lam, u = on_device[:n], on_device[n:]
        if permutation:
            return lam, u.long()
        w = None if weights is None else to_tensor(weights, device=lam.device).double()
        if self.partners == "uniform":
            cdf = torch.cumsum(w, 0)
            partner = torch.searchsorted(cdf, u * cdf[-1], right=True)
        else:
            # float32 is enough for one batch's cumulative sum (B terms <= 1)
            y = to_tensor(yi, device=lam.device).float().reshape(n, -1)
            d2 = (y - y.T).square_() if y.shape[1] == 1 else torch.cdist(y, y).square_()
            # exp(0) = 1 on the diagonal: no row underflows to all zeros
            kernel = d2.mul_(-0.5 / self.kernel_bandwidth_**2).exp_()
            if w is not None:
                kernel.mul_(w.float())
            cdf = torch.cumsum(kernel, 1)
            u = u.float()[:, None]
            partner = torch.searchsorted(cdf, u * cdf[:, -1:], right=True)
            partner = partner[:, 0]
        return lam, partner.clamp_max(n - 1)

    def _weighted_train_step(self, batch, weights, **fit_params):
        """skorch's training step on the batch mixed with its partners (drawn once
        per batch, so that a closure called several times sees the same batch)."""
        self._batch_mixing = self._draw_mixing(batch, weights)
        try:
            return super()._weighted_train_step(batch, weights, **fit_params)
        finally:
            self._batch_mixing = None

    def infer(self, x, **fit_params):
        """Run the module on a batch, mixed inside a training step."""
        mixing = getattr(self, "_batch_mixing", None)
        if mixing is not None:
            lam, partner = mixing
            x = _mix_inputs(self._to_module_input(x), lam, partner)
        return super().infer(x, **fit_params)

    def _needs_per_sample_loss(self, training):
        return training and getattr(self, "_batch_mixing", None) is not None

    def _per_sample_loss(self, y_pred, y_true, training):
        """Squared error of each sample (mean over the targets); on a mixed
        training batch against ``lam y_i + (1 - lam) y_j``."""
        if isinstance(y_pred, tuple):
            y_pred = y_pred[0]
        y_true = y_true.to(y_pred.dtype).reshape(y_pred.shape)
        mixing = getattr(self, "_batch_mixing", None) if training else None
        if mixing is not None:
            lam, partner = mixing
            lam = lam.to(y_pred.dtype).reshape(-1, 1)
            y_true = lam * y_true + (1.0 - lam) * y_true[partner]
        return ((y_pred - y_true) ** 2).mean(dim=1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "regressor"
        return tags


@fill_parameter_docs
class MixupMLPRegressor(RegressorMixin, _BaseMixupMLP):
    """Multilayer perceptron regressor trained with Mixup or C-Mixup, on PyTorch.

    The parameters mirror :class:`sklearn.neural_network.MLPRegressor` (Adam
    solver). Every minibatch is mixed with partners drawn in the batch, and the
    network minimises the squared error on mixed inputs and mixed targets:

    .. math::

        \\frac{1}{B} \\sum_i s_i (f(\\tilde x_i) - \\tilde y_i)^2
        + \\frac{\\alpha}{2B} \\|W\\|^2,
        \\quad \\tilde x_i = \\lambda_i x_i + (1 - \\lambda_i) x_{j},
        \\quad \\tilde y_i = \\lambda_i y_i + (1 - \\lambda_i) y_{j},

    with ``lam_i ~ Beta(mixup_alpha, mixup_beta)`` and ``s`` the sample weights
    (one target: ``y`` 1d). ``partners="uniform"`` draws ``j`` in
    proportion to ``s_j`` (Mixup, Zhang et al. 2018); ``"label_kernel"`` in
    proportion to ``s_j exp(-||y_i - y_j||^2 / (2 h^2))`` (C-Mixup, Yao et al.
    2022, Eq. 6), so rows are mixed with rows of similar label. The network is a
    skorch net built in ``fit`` and stored as ``net_``; it shares the seeded
    generators, fork, thread and Ctrl-C safety, callbacks and persistence of
    :class:`MixupMLPClassifier`. Targets are not rescaled (as in
    ``MLPRegressor``): wrap in :class:`~sklearn.compose.TransformedTargetRegressor`
    with a ``StandardScaler`` for targets far from unit scale.

    Read more in the User Guide.

    Parameters
    ----------
    %(network_parameters)s
    mixup_alpha : float, default=1.0
        First parameter of the Mixup law ``Beta(mixup_alpha, mixup_beta)``.
    mixup_beta : float, default=None
        Second parameter; ``None`` means ``mixup_beta = mixup_alpha``.
    mixup_prob : float, default=1.0
        Probability that a training batch is mixed.
    partners : {"uniform", "label_kernel"}, default="uniform"
        How each row's partner is drawn within its batch.
    kernel_bandwidth : float, default=None
        Bandwidth ``h`` of the label kernel, in units of ``y``; ``None``:
        Silverman's rule ``0.9 min(sd, IQR / 1.34) n^(-1/5)`` of the training
        targets. Ignored with uniform partners.
    %(training_parameters)s
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and stop when its R^2 has
        not improved by ``tol`` for ``n_iter_no_change`` epochs (the best
        epoch's weights are kept).
    validation_fraction : float, default=0.1
        Fraction held out for early stopping.
    %(stopping_parameters)s
    %(device_parameters)s
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the shuffling, the partners and the Mixup weights.
    %(verbose_parameter)s

    Attributes
    ----------
    net_ : skorch net
        The trained skorch net.
    kernel_bandwidth_ : float or None
        The label-kernel bandwidth used (``None`` with uniform partners).
    loss_curve_ : list of float
        Training loss (on mixed batches) per epoch.
    n_iter_ : int
        Epochs run.
    validation_scores_ : list of float or None
        Validation R^2 per epoch with early stopping.
    best_validation_score_ : float or None
        Best validation R^2.
    device_ : str
        Device the net trained on.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, for DataFrame input.

    See Also
    --------
    MixupMLPClassifier : The classifier.
    skmixup.compose.MixupRegressor : Mixup and C-Mixup for any regressor that
        takes sample weights.

    References
    ----------
    H. Yao, Y. Wang, L. Zhang, J. Zou and C. Finn, "C-Mixup: Improving
    Generalization in Regression", NeurIPS 2022.

    Examples
    --------
    >>> import torch
    >>> from sklearn.datasets import make_friedman1
    >>> from skmixup.neural_network import MixupMLPRegressor
    >>> X, y = make_friedman1(200, random_state=0)
    >>> reg = MixupMLPRegressor(hidden_layer_sizes=(32,), max_iter=50,
    ...                         learning_rate_init=0.01, partners="label_kernel",
    ...                         device="cpu", random_state=0).fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
    """

    _parameter_constraints = {**BASE_CONSTRAINTS, **_MIXUP_PROB, **PARTNER_CONSTRAINTS}
    _net_class = _MixupRegressionNet

    def __init__(
        self,
        *,
        hidden_layer_sizes=(100,),
        activation="relu",
        mixup_alpha=1.0,
        mixup_beta=None,
        mixup_prob=1.0,
        partners="uniform",
        kernel_bandwidth=None,
        alpha=1e-4,
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=200,
        shuffle=True,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        device="auto",
        callbacks=None,
        random_state=None,
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.mixup_alpha = mixup_alpha
        self.mixup_beta = mixup_beta
        self.mixup_prob = mixup_prob
        self.partners = partners
        self.kernel_bandwidth = kernel_bandwidth
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network to ``X, y`` with Mixup, from a fresh initialisation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (cast to float32 for PyTorch).
        y : array-like of shape (n_samples,)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the anchors' losses; partners are drawn in
            proportion to them.

        Returns
        -------
        self : object
            The fitted estimator.

        Raises
        ------
        KeyboardInterrupt
            On Ctrl-C; the estimator is then left as it was before ``fit``.
        """
        return self._fit(X, y, sample_weight)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Run one epoch of Mixup training on ``X, y``, without re-initialising.

        Early stopping is not used by ``partial_fit``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights, as in ``fit``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._partial_fit(X, y, sample_weight=sample_weight)

    def predict(self, X):
        """Predict targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predictions (float64).
        """
        check_is_fitted(self)
        return self._outputs(X)[:, 0]

    # ------------------------------------------------------------ target hooks
    def _encode_fit_target(self, y):
        y = np.asarray(y, dtype=np.float64)
        with np.errstate(over="ignore"):
            y32 = y.astype(np.float32).reshape(-1, 1)
        if not np.all(np.isfinite(y32)):
            raise ValueError(
                "y has values too large for float32 (|y| > 3.4e38), in which the "
                "network computes; rescale the targets."
            )
        return y32, 1, None

    def _encode_partial_fit_target(self, y, classes, first):
        return self._encode_fit_target(y)

    def _set_fitted_target(self, state):
        pass  # one target, nothing to remember but the bandwidth (_record_fit)

    def _n_outputs(self):
        return 1

    def _early_stopping_monitor(self):
        return {"monitor": "valid_r2", "lower_is_better": False, "load_best": True}

    def _net_params(self):
        return {
            **super()._net_params(),
            "mixup_prob": self.mixup_prob,
            "partners": self.partners,
            "kernel_bandwidth": self.kernel_bandwidth,
        }

    def _record_fit(self):
        super()._record_fit()
        self.kernel_bandwidth_ = self.net_.kernel_bandwidth_

    def __setstate__(self, state):
        super().__setstate__(state)
        net = self.__dict__.get("net_")
        if net is not None and not hasattr(net, "kernel_bandwidth_"):
            net.kernel_bandwidth_ = self.kernel_bandwidth_  # a rebuilt (skops) net
