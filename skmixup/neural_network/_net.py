"""MixupNeuralNetClassifier: a skorch NeuralNetClassifier trained with Mixup."""

import contextlib
from collections.abc import Mapping
from numbers import Real

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_parameter_constraints
from skorch import NeuralNetClassifier
from skorch.dataset import ValidSplit, unpack_data
from skorch.utils import to_tensor

from skmixup._mixing import resolve_beta, sample_beta
from skmixup.neural_network._iterator import TensorBatchIterator

__all__ = ["MixupNeuralNetClassifier"]

_MAX_SEED = 2**31 - 1


@contextlib.contextmanager
def _seeded_torch(device, seed):
    """Run a block with PyTorch's global RNG seeded, then restore it.

    Weight initialisation and dropout draw from the global generator; forking it
    keeps them reproducible without changing the caller's RNG state.
    """
    device = torch.device(device)
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else 0]
    with torch.random.fork_rng(devices=devices, device_type="cuda"):
        torch.manual_seed(seed)
        yield


_MIXUP_CONSTRAINTS = {
    "mixup_alpha": [Interval(Real, 0, None, closed="neither")],
    "mixup_beta": [Interval(Real, 0, None, closed="neither"), None],
    "mixup_prob": [Interval(Real, 0, 1, closed="both")],
    "random_state": ["random_state"],
}


def _validate_mixup_params(net):
    """Validate the Mixup parameters (sklearn's machinery) and store the law."""
    validate_parameter_constraints(
        _MIXUP_CONSTRAINTS,
        {name: getattr(net, name) for name in _MIXUP_CONSTRAINTS},
        caller_name=type(net).__name__,
    )
    alpha, beta = resolve_beta(net.mixup_alpha, net.mixup_beta)
    net._mixup_law_ = (alpha, beta, float(net.mixup_prob))
    return net._mixup_law_


class MixupNeuralNetClassifier(NeuralNetClassifier):
    """A skorch :class:`~skorch.NeuralNetClassifier` trained with Mixup.

    Each training batch ``(x_1..x_B, y_1..y_B)`` is paired with a random
    permutation ``j = pi(i)`` of itself, every row draws its own
    ``lam_i ~ Beta(mixup_alpha, mixup_beta)``, and the network is trained on

    .. math::

        \\frac{1}{B} \\sum_i \\lambda_i \\ell(f(\\tilde x_i), y_i)
        + (1 - \\lambda_i) \\ell(f(\\tilde x_i), y_{\\pi(i)}),
        \\qquad \\tilde x_i = \\lambda_i x_i + (1 - \\lambda_i) x_{\\pi(i)},

    an unbiased estimate of the Mixup loss of Zhang et al. (2018). Validation,
    scoring and prediction see clean inputs. Everything else (callbacks, history,
    checkpointing, ``set_params``) is skorch's.

    Parameters
    ----------
    module : torch.nn.Module class or instance
        The network. With the default criterion it must return **logits** of shape
        ``(n_samples, n_classes)``.
    *args
        Positional arguments of :class:`skorch.NeuralNetClassifier` after
        ``module`` (passing them by keyword is clearer).
    criterion : torch criterion class, default=torch.nn.CrossEntropyLoss
        A loss with a ``reduction`` argument; it is used with ``reduction="none"``
        to get per-sample losses. Unlike skorch's ``NeuralNetClassifier`` (which
        expects probabilities and uses ``NLLLoss``), the default here is
        ``CrossEntropyLoss`` on logits, and ``predict_proba`` applies a softmax.
        ``criterion=torch.nn.NLLLoss`` with a module that returns probabilities
        also works (the log is taken as skorch does).
    train_split : callable, default=ValidSplit(5, stratified=True)
        As in skorch; ``None`` trains on all data.
    iterator_train, iterator_valid : class, default=TensorBatchIterator
        :class:`TensorBatchIterator` keeps array data on the device and slices
        batches; pass :class:`torch.utils.data.DataLoader` for skorch's default.
        Training batches are shuffled unless ``iterator_train__shuffle=False``.
    mixup_alpha : float, default=1.0
        First parameter of the Beta law of the mixing weight; must be > 0.
    mixup_beta : float, default=None
        Second parameter; ``None`` means ``mixup_beta = mixup_alpha``.
    mixup_prob : float, default=1.0
        Probability that a training batch is mixed; the other batches are
        trained on as they are.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, the shuffling order, the mixing weights and
        partners (each from its own generator), and the global PyTorch generator
        inside ``fit`` (for dropout), which is restored afterwards. ``None`` draws
        the seeds from numpy's global RNG. Pass an int for reproducible results.
    **kwargs
        Any other :class:`skorch.NeuralNetClassifier` argument (``optimizer``,
        ``lr``, ``max_epochs``, ``batch_size``, ``callbacks``, ``device``, ...).

    Attributes
    ----------
    module_ : torch.nn.Module
        The initialised module.
    history_ : skorch.History
        Per-epoch and per-batch records; ``train_loss`` is the Mixup loss.
    classes_ : ndarray
        Class labels seen in ``fit`` (skorch's convention: ``y`` must hold the
        class indices ``0..n_classes-1`` and ``predict`` returns indices).

    See Also
    --------
    MixupMLPClassifier : A scikit-learn estimator (labels of any type,
        MLPClassifier's parameters) built on this net.

    Notes
    -----
    The pair is ordered so that each row keeps the larger weight:
    ``lam_i <- max(lam_i, 1 - lam_i)``. The partner index is a uniform random
    permutation, so ``(i, pi(i))`` is exchangeable and this ordering leaves the
    expected loss and gradient of Mixup unchanged (the loss is invariant under
    ``lam -> 1 - lam`` with ``i <-> j``). It makes ``mixup_alpha -> 0`` reduce
    exactly to training without Mixup on the same batches.

    Randomness never comes from PyTorch's global generator: mixing weights come
    from a seeded :class:`numpy.random.RandomState` (through
    :func:`skmixup._mixing.sample_beta`, which handles tiny ``mixup_alpha``), and
    partners and shuffling from seeded :class:`torch.Generator` objects on the
    CPU. Pickling works as in skorch; a net trained on a GPU loads on a CPU-only
    machine (with skorch's ``DeviceWarning``).

    References
    ----------
    .. [1] Zhang, H., Cisse, M., Dauphin, Y. N. and Lopez-Paz, D. "mixup: Beyond
       Empirical Risk Minimization", ICLR 2018.
    .. [2] Zhang, L., Deng, Z., Kawaguchi, K., Ghorbani, A. and Zou, J. "How Does
       Mixup Help With Robustness and Generalization?", ICLR 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from torch import nn
    >>> from skmixup.neural_network import MixupNeuralNetClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(60, 4).astype(np.float32)
    >>> y = (X[:, 0] > 0).astype(np.int64)
    >>> net = MixupNeuralNetClassifier(
    ...     nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)),
    ...     mixup_alpha=0.4, max_epochs=5, lr=0.1, batch_size=16,
    ...     train_split=None, verbose=0, random_state=0,
    ... ).fit(X, y)
    >>> net.predict_proba(X[:2]).shape
    (2, 2)
    """

    def __init__(
        self,
        module,
        *args,
        criterion=torch.nn.CrossEntropyLoss,
        train_split=ValidSplit(5, stratified=True),  # noqa: B008 (skorch's default)
        iterator_train=TensorBatchIterator,
        iterator_valid=TensorBatchIterator,
        mixup_alpha=1.0,
        mixup_beta=None,
        mixup_prob=1.0,
        random_state=None,
        **kwargs,
    ):
        super().__init__(
            module,
            *args,
            criterion=criterion,
            train_split=train_split,
            iterator_train=iterator_train,
            iterator_valid=iterator_valid,
            **kwargs,
        )
        self.mixup_alpha = mixup_alpha
        self.mixup_beta = mixup_beta
        self.mixup_prob = mixup_prob
        self.random_state = random_state

    @property
    def _parameter_constraints(self):
        # The Mixup parameters are validated here (in ``initialize`` and
        # ``partial_fit``); skorch's own parameters are left to skorch.
        constraints = dict.fromkeys(self.get_params(deep=False), "no_validation")
        constraints.update(_MIXUP_CONSTRAINTS)
        return constraints

    # ------------------------------------------------------------------ setup
    def initialize(self):
        """Seed the random generators, then initialise module, criterion, etc."""
        _validate_mixup_params(self)
        self._init_generators()
        with _seeded_torch(self.device, int(self._seed_rng_.randint(_MAX_SEED))):
            return super().initialize()

    def _init_generators(self):
        seeds = check_random_state(self.random_state).randint(_MAX_SEED, size=4)
        self._mixup_rng_ = np.random.RandomState(seeds[0])
        self._mixup_generator_ = torch.Generator().manual_seed(int(seeds[1]))
        self._shuffle_generator_ = torch.Generator().manual_seed(int(seeds[2]))
        # seeds weight initialisation and the global-RNG fork of each fit call
        self._seed_rng_ = np.random.RandomState(seeds[3])

    def _ensure_generators(self):
        if not hasattr(self, "_mixup_rng_"):
            self._init_generators()

    def initialize_criterion(self):
        """Initialise the criterion with per-sample losses (``reduction="none"``)."""
        super().initialize_criterion()
        for name in self._criteria:
            criterion = getattr(self, name + "_")
            if not hasattr(criterion, "reduction"):
                raise TypeError(
                    "MixupNeuralNetClassifier needs per-sample losses: the criterion "
                    f"{type(criterion).__name__} has no 'reduction' attribute."
                )
            criterion.reduction = "none"
        return self

    def get_iterator(self, dataset, training=False):
        """Return the batch iterator; :class:`TensorBatchIterator` gets the device
        and, for training, shuffling (on by default) from the seeded generator."""
        prefix = "iterator_train" if training else "iterator_valid"
        iterator = getattr(self, prefix)
        kwargs = self.get_params_for(prefix)
        kwargs.setdefault("batch_size", self.batch_size)
        if kwargs["batch_size"] == -1:
            kwargs["batch_size"] = len(dataset)
        if training:
            kwargs.setdefault("shuffle", True)
            if kwargs["shuffle"]:
                self._ensure_generators()
                kwargs.setdefault("generator", self._shuffle_generator_)
        if isinstance(iterator, type) and issubclass(iterator, TensorBatchIterator):
            kwargs.setdefault("device", self.device)
            kwargs.setdefault("dtype", self._input_dtype())
        return iterator(dataset, **kwargs)

    def _input_dtype(self):
        """Floating dtype of the module's parameters (None if unknown)."""
        module = getattr(self, "module_", None)
        if not isinstance(module, torch.nn.Module):
            return None
        for param in module.parameters():
            if isinstance(param, torch.nn.parameter.UninitializedParameter):
                return torch.get_default_dtype()  # lazy modules materialise so
            if torch.is_floating_point(param):
                return param.dtype
        return None

    def infer(self, x, **fit_params):
        """Run the module on a batch; floating tensors are cast to its dtype."""
        dtype = self._input_dtype()
        if dtype is not None:
            x = _cast_floating(to_tensor(x, device=self.device), dtype)
        return super().infer(x, **fit_params)

    # ------------------------------------------------------------------- fit
    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Train without re-initialising the module (skorch's ``partial_fit``).

        The global PyTorch RNG is seeded inside and restored afterwards.

        Parameters
        ----------
        X : array-like, tensor or dataset
            Training inputs, as skorch accepts them.
        y : array-like of shape (n_samples,), default=None
            Class indices ``0..n_classes-1``.
        classes : array-like, default=None
            Unused, as in skorch; kept for scikit-learn's signature.
        **fit_params : dict
            Passed to the module's ``forward``, as in skorch.

        Returns
        -------
        self : MixupNeuralNetClassifier
            The trained net.
        """
        if not self.initialized_:
            self.initialize()
        self._ensure_generators()
        _validate_mixup_params(self)
        seed = int(self._seed_rng_.randint(_MAX_SEED))
        with _seeded_torch(self.device, seed):
            return super().partial_fit(X, y, classes=classes, **fit_params)

    # ------------------------------------------------------------ Mixup step
    def _sample_lambda(self, n_samples):
        """Draw ``n_samples`` mixing weights ``lam ~ Beta(alpha, beta)`` (float64)."""
        alpha, beta, _ = self._mixup_law_
        return sample_beta(alpha, beta, n_samples, self._mixup_rng_)

    def _draw_mixing(self, n_samples):
        """Return ``(lam, perm)`` for one batch, or ``None`` if it is not mixed."""
        _, _, prob = self._mixup_law_
        if prob < 1.0 and not self._mixup_rng_.random_sample() < prob:
            return None
        lam = self._sample_lambda(n_samples)
        lam = np.maximum(lam, 1.0 - lam)  # see Notes: the row keeps the larger weight
        perm = torch.randperm(n_samples, generator=self._mixup_generator_)
        return torch.from_numpy(lam), perm

    def train_step_single(self, batch, **fit_params):
        """Mix the batch with a permutation of itself and back-propagate the
        Mixup loss."""
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        Xi = to_tensor(Xi, device=self.device)
        yi = to_tensor(yi, device=self.device)
        mixing = self._draw_mixing(len(yi))
        if mixing is None:
            y_pred = self.infer(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        else:
            lam, perm = mixing
            perm = perm.to(self.device, non_blocking=True)
            X_mix = _mix_inputs(Xi, lam, perm, self.device)
            y_pred = self.infer(X_mix, **fit_params)
            lam = lam.to(device=y_pred.device, dtype=y_pred.dtype)
            loss = (
                lam * self._per_sample_loss(y_pred, yi)
                + (1.0 - lam) * self._per_sample_loss(y_pred, yi[perm])
            ).mean()
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def _per_sample_loss(self, y_pred, y_true):
        if isinstance(y_pred, tuple):
            y_pred = y_pred[0]
        y_true = to_tensor(y_true, device=self.device)
        if isinstance(self.criterion_, torch.nn.NLLLoss):
            y_pred = torch.log(y_pred + torch.finfo(y_pred.dtype).eps)
        return self.criterion_(y_pred, y_true)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Mean per-sample loss on un-mixed data (validation and plain batches)."""
        return self._per_sample_loss(y_pred, y_true).mean()

    # --------------------------------------------------------- input gradient
    def _loss_input_gradient(self, X, y):
        """Gradient of each sample's cross-entropy at its label w.r.t. its input.

        Row ``i`` of the result is ``d loss(f(x_i), y_i) / d x_i`` computed by
        autograd with the module in eval mode; ``y`` holds class indices (what
        ``fit`` was given). Returns a float64 array of ``X``'s shape.
        """
        self.check_is_fitted()
        dtype = next(self.module_.parameters()).dtype
        Xt = torch.as_tensor(np.asarray(X), device=self.device).to(dtype)
        yt = torch.as_tensor(np.asarray(y).astype(np.int64), device=self.device)
        return _input_gradient(self, Xt, yt, np.asarray(X).shape)

    # ---------------------------------------------------------------- pickle
    def __getstate__(self):
        state = super().__getstate__()
        for key in ("_mixup_generator_", "_shuffle_generator_"):
            if key in state:
                state[key] = ("torch.Generator", state[key].get_state())
        return state

    def __setstate__(self, state):
        for key in ("_mixup_generator_", "_shuffle_generator_"):
            value = state.get(key)
            if isinstance(value, tuple) and value[0] == "torch.Generator":
                gen = torch.Generator()
                gen.set_state(value[1])
                state[key] = gen
        super().__setstate__(state)


def _cast_floating(x, dtype):
    if isinstance(x, Mapping):
        return {k: _cast_floating(v, dtype) for k, v in x.items()}
    if isinstance(x, torch.Tensor) and torch.is_floating_point(x) and x.dtype != dtype:
        return x.to(dtype)
    return x


def _mix_inputs(X, lam, perm, device):
    if isinstance(X, Mapping):
        return {k: _mix_inputs(v, lam, perm, device) for k, v in X.items()}
    if not isinstance(X, torch.Tensor) or not torch.is_floating_point(X):
        raise TypeError(
            "Mixup needs floating-point input tensors (or a dict of them); got "
            f"{type(X).__name__} of dtype {getattr(X, 'dtype', None)}."
        )
    lam = lam.to(device=X.device, dtype=X.dtype).reshape((-1,) + (1,) * (X.ndim - 1))
    return lam * X + (1.0 - lam) * X[perm]


def _input_gradient(net, Xt, yt, shape):
    """Autograd gradient of per-sample CE w.r.t. inputs, module in eval mode."""
    module = net.module_
    was_training = module.training
    module.eval()
    try:
        with torch.enable_grad():
            Xt = Xt.detach().clone().requires_grad_(True)
            out = module(Xt)
            out = out[0] if isinstance(out, tuple) else out
            if isinstance(net.criterion_, torch.nn.NLLLoss):
                logp = torch.log(out + torch.finfo(out.dtype).eps)
            else:
                logp = torch.log_softmax(out, dim=-1)
            loss = -logp.gather(1, yt.reshape(-1, 1)).sum()
            (grad,) = torch.autograd.grad(loss, Xt)
    finally:
        module.train(was_training)
    return grad.detach().cpu().numpy().astype(np.float64).reshape(shape)
