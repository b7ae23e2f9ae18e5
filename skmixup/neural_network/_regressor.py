"""MixupMLPRegressor: an MLP regressor trained with Mixup or C-Mixup, on PyTorch.

It reuses the classifier's machinery (the skorch net with its seeded generators,
fork, thread and Ctrl-C handling, sample weights, callbacks and persistence, and
the estimator's net building): the regression net changes only the target (mixed
with the inputs, squared error), the partners (uniform or by the label kernel)
and the validation score (R^2).
"""

import numpy as np
import torch
from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNet
from skorch.callbacks import EpochScoring
from skorch.dataset import get_len, unpack_data
from skorch.utils import to_tensor

from skmixup._constraints import PARTNER_CONSTRAINTS
from skmixup._mixing import resolve_kernel_bandwidth
from skmixup.neural_network._data import detach_sample_weight
from skmixup.neural_network._mlp import (
    MixupMLPClassifier,
    _raise_if_interrupted,
    _resolve_device,
    _to_float32,
)
from skmixup.neural_network._net import MixupNeuralNetClassifier, _batch_device
from skmixup.utils._callbacks import begin_fit
from skmixup.utils._validation import MAX_SEED

__all__ = ["MixupMLPRegressor"]


class _MixupRegressionNet(MixupNeuralNetClassifier):
    """The Mixup skorch net for regression (private to MixupMLPRegressor).

    A training batch is mixed with partners drawn in the batch, uniformly
    (weighted by the sample weights) or by the C-Mixup label kernel
    ``w_j exp(-||y_i - y_j||^2 / (2 h^2))``; inputs and targets are mixed with
    the same ``lam ~ Beta(alpha, beta)`` and the loss is the (weighted) mean
    squared error on the mixed targets. Validation sees clean data and is scored
    by R^2 (``valid_r2``).
    """

    def __init__(
        self, module, *args, partners="uniform", kernel_bandwidth=1.0, **kwargs
    ):
        super().__init__(module, *args, **kwargs)
        self.partners = partners
        self.kernel_bandwidth = kernel_bandwidth

    @property
    def _default_callbacks(self):
        callbacks = [
            (n, cb) for n, cb in super()._default_callbacks if n != "valid_acc"
        ]
        r2 = ("valid_r2", EpochScoring("r2", lower_is_better=False, name="valid_r2"))
        return callbacks[:-1] + [r2] + callbacks[-1:]  # print_log stays last

    def check_data(self, X, y):
        NeuralNet.check_data(self, X, y)  # no class inference

    def _check_target(self, y, n_samples, caller):
        return y  # float targets, validated by MixupMLPRegressor

    def predict(self, X):
        """The network's output (the regression prediction)."""
        return self.predict_proba(X)

    def _draw_mixing(self, batch):
        _, _, prob = self._mixup_law_
        if prob < 1.0 and not self._mixup_rng_.random_sample() < prob:
            return None
        Xi, yi = unpack_data(batch)
        Xi, weights = detach_sample_weight(Xi)
        n = get_len(yi)
        lam = torch.from_numpy(self._sample_lambda(n))
        if self.partners == "uniform" and weights is None:
            # a uniform random permutation: each row is the partner of one row
            draw = torch.randperm(n, generator=self._mixup_generator_).double()
        else:
            draw = torch.rand(n, generator=self._mixup_generator_, dtype=torch.float64)
        on_device = self._transfer(
            torch.cat([lam, draw]), _batch_device(Xi, self.device)
        )
        lam, u = on_device[:n], on_device[n:]
        if self.partners == "uniform" and weights is None:
            return lam, u.long()
        w = torch.ones(n, dtype=torch.float64, device=lam.device)
        if weights is not None:
            w = to_tensor(weights, device=lam.device).double()
        if self.partners == "uniform":
            cdf = torch.cumsum(w, 0)
            partner = torch.searchsorted(cdf, u * cdf[-1], right=True)
        else:
            y = to_tensor(yi, device=lam.device).double().reshape(n, -1)
            if y.shape[1] == 1:
                d2 = (y - y.T).square_()
            else:
                d2 = torch.cdist(y, y).square_()
            # exp(0) = 1 on the diagonal: no row underflows to all zeros
            kernel = d2.mul_(-0.5 / self.kernel_bandwidth**2).exp_()
            if weights is not None:
                kernel.mul_(w)
            cdf = torch.cumsum(kernel, 1)
            partner = torch.searchsorted(cdf, u[:, None] * cdf[:, -1:], right=True)[
                :, 0
            ]
        return lam, partner.clamp_max(n - 1)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Squared error; on a training batch against the mixed targets
        ``lam y_i + (1 - lam) y_j``, weighted per anchor by the sample weights."""
        if isinstance(y_pred, tuple):
            y_pred = y_pred[0]
        mixing = getattr(self, "_batch_mixing", None) if training else None
        _, weights = detach_sample_weight(X)
        y_true = to_tensor(y_true, device=y_pred.device).to(y_pred.dtype)
        y_true = y_true.reshape(y_pred.shape)
        if mixing is not None:
            lam, partner = mixing
            lam = lam.to(y_pred.dtype).reshape(-1, 1)
            y_true = lam * y_true + (1.0 - lam) * y_true[partner]
        if weights is None:
            return self.criterion_(y_pred, y_true)
        per_sample = ((y_pred - y_true) ** 2).mean(dim=1)
        return (per_sample * to_tensor(weights, device=y_pred.device)).mean()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "regressor"
        return tags


def _never(estimator):
    return False


class MixupMLPRegressor(RegressorMixin, MixupMLPClassifier):
    """Multilayer perceptron regressor trained with Mixup or C-Mixup, on PyTorch.

    The parameters mirror :class:`sklearn.neural_network.MLPRegressor` (Adam
    solver). Every minibatch is mixed with partners drawn in the batch, and the
    network minimises the squared error on mixed inputs and mixed targets:

    .. math::

        \\frac{1}{B} \\sum_i s_i \\lVert f(\\tilde x_i) - \\tilde y_i \\rVert^2 / k
        + \\frac{\\alpha}{2B} \\|W\\|^2,
        \\quad \\tilde x_i = \\lambda_i x_i + (1 - \\lambda_i) x_{j},
        \\quad \\tilde y_i = \\lambda_i y_i + (1 - \\lambda_i) y_{j},

    with ``lam_i ~ Beta(mixup_alpha, mixup_beta)``, ``k`` the number of
    targets and ``s`` the sample weights. ``partners="uniform"`` draws ``j`` in
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
    hidden_layer_sizes : array-like of int, default=(100,)
        Units of each hidden layer.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Activation of the hidden layers.
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
        targets (averaged over targets). Ignored with uniform partners.
    alpha : float, default=1e-4
        L2 penalty, as in ``MLPRegressor`` (Adam weight decay ``alpha / batch``).
    batch_size : int or "auto", default="auto"
        ``min(200, n_samples)`` for ``"auto"``.
    learning_rate_init : float, default=1e-3
        Adam's learning rate.
    max_iter : int, default=200
        Epochs.
    shuffle : bool, default=True
        Shuffle the training rows every epoch (seeded).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and stop when its R^2 has
        not improved by ``tol`` for ``n_iter_no_change`` epochs (the best
        epoch's weights are kept).
    validation_fraction : float, default=0.1
        Fraction held out for early stopping.
    n_iter_no_change : int, default=10
        Patience of the stopping rule.
    tol : float, default=1e-4
        Improvement that counts for the stopping rule.
    device : str, default="auto"
        PyTorch device; ``"auto"`` is CUDA when available, else the CPU.
    callbacks : list of (str, skorch callback), default=None
        Extra skorch callbacks.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the shuffling, the partners and the Mixup weights.
    verbose : int, default=0
        Print skorch's epoch log.

    Attributes
    ----------
    net_ : skorch net
        The trained skorch net.
    kernel_bandwidth_ : float or None
        The label-kernel bandwidth used (``None`` with uniform partners).
    n_outputs_ : int
        Number of targets.
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

    _parameter_constraints = {
        **MixupMLPClassifier._parameter_constraints,
        **PARTNER_CONSTRAINTS,
    }

    _net_class = _MixupRegressionNet
    _validation_score = "valid_r2"
    _stratified_split = False

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
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            mixup_alpha=mixup_alpha,
            mixup_beta=mixup_beta,
            mixup_prob=mixup_prob,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate_init=learning_rate_init,
            max_iter=max_iter,
            shuffle=shuffle,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            device=device,
            callbacks=callbacks,
            random_state=random_state,
            verbose=verbose,
        )
        self.partners = partners
        self.kernel_bandwidth = kernel_bandwidth

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network to ``X, y`` with Mixup, from a fresh initialisation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (cast to float32 for PyTorch).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
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
        X, y = validate_data(
            self,
            X,
            y,
            dtype=[np.float64, np.float32],
            multi_output=True,
            y_numeric=True,
        )
        Y = self._net_target(y)
        fitted = {
            "n_outputs_": Y.shape[1],
            "_y_ndim": y.ndim,
            "kernel_bandwidth_": self._bandwidth(y, sample_weight),
        }
        self._fit_net(X, y, Y, sample_weight, fitted)
        self._warn_if_not_converged()
        return self

    def _bandwidth(self, y, sample_weight):
        return resolve_kernel_bandwidth(
            self.partners, self.kernel_bandwidth, y, sample_weight
        )

    def _net_target(self, y):
        Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        with np.errstate(over="ignore"):
            Y32 = Y.astype(np.float32)
        if not np.all(np.isfinite(Y32)):
            raise ValueError(
                "y has values too large for float32 (|y| > 3.4e38), in which the "
                "network computes; rescale the targets."
            )
        return Y32

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Run one epoch of Mixup training on ``X, y``, without re-initialising.

        Early stopping is not used by ``partial_fit``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights, as in ``fit``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        first = not hasattr(self, "net_")
        X, y = validate_data(
            self,
            X,
            y,
            dtype=[np.float64, np.float32],
            multi_output=True,
            y_numeric=True,
            reset=first,
        )
        Y = self._net_target(y)
        if first:
            seed = int(check_random_state(self.random_state).randint(MAX_SEED))
            device = _resolve_device(self.device)
            fitted = {
                "n_outputs_": Y.shape[1],
                "_y_ndim": y.ndim,
                "kernel_bandwidth_": self._bandwidth(y, sample_weight),
            }
            net = self._build_net(
                X.shape, Y.shape[1], device, seed, incremental=True, fitted=fitted
            )
        else:
            if Y.shape[1] != self.n_outputs_:
                raise ValueError(
                    f"y has {Y.shape[1]} targets, but the model was fitted with "
                    f"{self.n_outputs_}."
                )
            net, device, fitted = self.net_, self.device_, {}
            self._disable_early_stopping()
        task = begin_fit(self, X, y, max_subtasks=0, task_name="partial_fit")
        net.partial_fit(_to_float32(X), Y, epochs=1, sample_weight=sample_weight)
        _raise_if_interrupted(net)
        self.net_, self.device_ = net, device
        for name, value in fitted.items():
            setattr(self, name, value)
        task.end({})
        self._record_fit()
        return self

    def predict(self, X):
        """Predict targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Predictions (float64); 1d when ``y`` was 1d in ``fit``.
        """
        check_is_fitted(self)
        out = self._logits(X)
        return out.ravel() if self._y_ndim == 1 else out

    @available_if(_never)
    def predict_proba(self, X):
        """Not available: a regressor has no class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Unused.

        Returns
        -------
        proba : None
            Never returned (``hasattr(reg, "predict_proba")`` is False).
        """

    @available_if(_never)
    def predict_log_proba(self, X):
        """Not available: a regressor has no class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Unused.

        Returns
        -------
        log_proba : None
            Never returned (``hasattr(reg, "predict_log_proba")`` is False).
        """

    def _n_net_outputs(self, fitted=None):
        """Outputs of the network: one per target."""
        return (fitted or vars(self))["n_outputs_"]

    def _net_params(self, fitted=None):
        bandwidth = (fitted or vars(self)).get("kernel_bandwidth_")
        return {
            **super()._net_params(fitted),
            "criterion": torch.nn.MSELoss,
            "partners": self.partners,
            "kernel_bandwidth": 1.0 if bandwidth is None else bandwidth,
        }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags = None
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
