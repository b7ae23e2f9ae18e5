"""The skorch nets of skmixup: a private base and the Mixup classifier net.

:class:`_BaseMixupNet` holds what every skmixup net shares, whatever its training
step: the seeded generators (weight initialisation, shuffling, Mixup draws), the
validation of array input, sample weights (unpacked once per batch and carried
beside it to the loss), Ctrl-C and skorch-callback stops told apart, the
scikit-learn callbacks, forks, and persistence. :class:`_BaseMixupNetClassifier`
adds skorch's classification conventions (logits and ``CrossEntropyLoss`` by
default, ``NLLLoss`` on probabilities). :class:`MixupNeuralNetClassifier`
trains on mixed batches; the penalty net of
:class:`~skmixup.neural_network.MixupRegularizedMLPClassifier`
(``_regularized.py``) is its sibling.

A new training step derives from :class:`_BaseMixupNetClassifier` (or from
:class:`_BaseMixupNet` with another skorch net, e.g. ``NeuralNetRegressor``),
adds its parameters to ``_net_constraints`` and overrides
``_weighted_train_step(batch, weights)`` (or skorch's ``train_step_single``).
"""

import contextlib
import copy
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import torch
from scipy import sparse
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import (
    Interval,
    Options,
    StrOptions,
    validate_parameter_constraints,
)
from skorch import NeuralNet, NeuralNetClassifier
from skorch.dataset import ValidSplit, get_len, unpack_data
from skorch.utils import get_map_location, to_tensor

from skmixup._constraints import MIXUP_LAW_CONSTRAINTS
from skmixup._mixing import resolve_beta, sample_beta
from skmixup.neural_network._data import (
    attach_sample_weight,
    check_feature_names,
    check_n_features,
    check_net_input,
    check_net_target,
    detach_sample_weight,
)
from skmixup.neural_network._iterator import TensorBatchIterator
from skmixup.neural_network._persistence import (
    PORTABLE_KEY,
    fitted_state,
    load_fitted_state,
    reduce_with,
)
from skmixup.neural_network._runtime import (
    forward_draws_no_random_numbers,
    global_rng_section,
    init_parameters,
    sigint_recorder,
)
from skmixup.utils._callbacks import (
    FIT_IN_PROGRESS,
    SkorchCallbackSupportMixin,
    begin_fit,
    callback_management,
    report_epoch,
)
from skmixup.utils._threads import torch_runtime
from skmixup.utils._torch import uncompiled
from skmixup.utils._validation import MAX_SEED, class_sample_weight

__all__ = ["MixupNeuralNetClassifier"]

# attributes that hold the state of a fit in progress, not parameters
_FIT_STATE = (
    "_batch_mixing",
    "_batch_weights",
    "_in_fit_loop",
    "_input_checked",
    "_interrupt",
)
_GENERATORS = ("_mixup_generator_", "_shuffle_generator_", "_init_generator_")

# The parameters that every skmixup net validates (with scikit-learn's machinery).
_BASE_NET_CONSTRAINTS = {
    **MIXUP_LAW_CONSTRAINTS,
    "random_state": ["random_state"],
    # skorch's batch_size: a positive size, or -1 for the whole data set (0 would
    # fail later, in range(), with no word of batch_size)
    "batch_size": [Interval(Integral, 1, None, closed="left"), Options(Integral, {-1})],
}


class _BaseMixupNet(SkorchCallbackSupportMixin, NeuralNet):
    """Base of the skmixup skorch nets (see the module docstring).

    ``mixup_alpha``, ``mixup_beta`` (the law of the mixing weight, used by every
    training step: mixing or its expansion) and ``random_state`` are its
    parameters; skorch's are passed on.
    """

    # skorch pickles these through torch's unpickler with a map_location, in one
    # stream with module_, criterion_ and optimizer_: an LRScheduler's optimizer
    # state then moves to the CPU with them and stays the net's optimizer.
    cuda_dependent_attributes_ = ["callbacks_"]
    # (scikit-learn callbacks' task, attributes) of the fit in progress
    _fit_task_ = None
    # input validated by the estimator that owns the net (see _forward_validated)
    _input_checked = False

    def __init__(
        self,
        module,
        *args,
        iterator_train=TensorBatchIterator,
        iterator_valid=TensorBatchIterator,
        mixup_alpha=1.0,
        mixup_beta=None,
        random_state=None,
        **kwargs,
    ):
        super().__init__(
            module,
            *args,
            iterator_train=iterator_train,
            iterator_valid=iterator_valid,
            **kwargs,
        )
        self.mixup_alpha = mixup_alpha
        self.mixup_beta = mixup_beta
        self.random_state = random_state

    def _net_constraints(self):
        """The constraints of the net's own parameters (a subclass adds its)."""
        return dict(_BASE_NET_CONSTRAINTS)

    @property
    def _parameter_constraints(self):
        # The skmixup parameters are validated here (in ``initialize`` and
        # ``fit``/``partial_fit``); skorch's own parameters are left to skorch.
        constraints = dict.fromkeys(self.get_params(deep=False), "no_validation")
        constraints.update(self._net_constraints())
        return constraints

    def _validate_net_params(self):
        """Validate the skmixup parameters and store the Mixup law."""
        constraints = self._net_constraints()
        validate_parameter_constraints(
            constraints,
            {name: getattr(self, name) for name in constraints},
            caller_name=type(self).__name__,
        )
        self._mixup_law_ = resolve_beta(self.mixup_alpha, self.mixup_beta)

    # ------------------------------------------------------------------ setup
    def _get_param_names(self):
        # skorch lists every attribute not ending in "_" as a parameter; the state
        # of a fit in progress is not one (clone must not pass it to __init__)
        return [k for k in super()._get_param_names() if k not in _FIT_STATE]

    def initialize(self):
        """Seed the generators, then initialise module, criterion, etc."""
        self._validate_net_params()
        self._init_generators()
        return super().initialize()

    def _init_generators(self):
        seeds = check_random_state(self.random_state).randint(MAX_SEED, size=5)
        self._mixup_rng_ = np.random.RandomState(seeds[0])
        self._mixup_generator_ = torch.Generator().manual_seed(int(seeds[1]))
        self._shuffle_generator_ = torch.Generator().manual_seed(int(seeds[2]))
        self._init_generator_ = torch.Generator().manual_seed(int(seeds[3]))
        # seeds the global generator where a module needs it (see Notes)
        self._seed_rng_ = np.random.RandomState(seeds[4])

    def _ensure_generators(self):
        if not hasattr(self, "_mixup_rng_"):
            self._init_generators()

    def initialize_module(self):
        """Build the module and initialise its weights from the seeded generator.

        A module instance is copied (the user's instance is never trained); an
        instance built on the ``"meta"`` device is materialised on the CPU. See
        the Notes for which layers draw from the explicit generator.
        """
        self._ensure_generators()
        kwargs = self.get_params_for("module")
        module = self.module
        if isinstance(module, torch.nn.Module) and not kwargs:
            module = copy.deepcopy(module)
            if any(p.is_meta for p in module.parameters()):
                module = module.to_empty(device="cpu")  # built on "meta"
        seed = int(self._seed_rng_.randint(MAX_SEED))
        with global_rng_section(seed, "cpu"):
            self.module_ = self.initialized_instance(module, kwargs)
            init_parameters(self.module_, self._init_generator_)
        return self

    def get_iterator(self, dataset, training=False):
        """Return the batch iterator; :class:`TensorBatchIterator` gets the device
        and, for training, shuffling (on by default) from the seeded generator.
        Outside ``fit`` (prediction) it copies one batch at a time."""
        prefix = "iterator_train" if training else "iterator_valid"
        iterator = getattr(self, prefix)
        kwargs = self.get_params_for(prefix)
        kwargs.setdefault("batch_size", self.batch_size)
        if kwargs["batch_size"] == -1:
            kwargs["batch_size"] = max(len(dataset), 1)
        if training:
            kwargs.setdefault("shuffle", True)
            if kwargs["shuffle"]:
                self._ensure_generators()
                kwargs.setdefault("generator", self._shuffle_generator_)
        if isinstance(iterator, type) and issubclass(iterator, TensorBatchIterator):
            kwargs.setdefault("device", self.device or "cpu")
            kwargs.setdefault("dtype", self._input_dtype())
            kwargs.setdefault("preload", training or self._fitting)
        return iterator(dataset, **kwargs)

    @property
    def _fitting(self):
        return getattr(self, "_in_fit_loop", False)

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

    # ------------------------------------------------------------------- fit
    def fit(self, X, y=None, sample_weight=None, **fit_params):
        """Initialise the module and train it (skorch's ``fit``), with Mixup.

        Parameters
        ----------
        X : array-like, tensor, dict or dataset
            Training inputs, as skorch accepts them; arrays, lists and numeric
            DataFrames are validated and passed on as arrays.
        y : array-like of shape (n_samples,), default=None
            Class indices ``0..n_classes-1``.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the anchors' losses (see Notes).
        **fit_params : dict
            Passed to the module's ``forward``, as in skorch.

        Returns
        -------
        self : MixupNeuralNetClassifier
            The trained net.
        """
        if not self.warm_start or not self.initialized_:
            self.initialize()
        return self._train(X, y, sample_weight, "fit", fit_params)

    def partial_fit(self, X, y=None, classes=None, sample_weight=None, **fit_params):
        """Train without re-initialising the module (skorch's ``partial_fit``).

        Parameters
        ----------
        X : array-like, tensor, dict or dataset
            Training inputs, as for ``fit``.
        y : array-like of shape (n_samples,), default=None
            Class indices ``0..n_classes-1``.
        classes : array-like, default=None
            Unused, as in skorch; kept for scikit-learn's signature.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the anchors' losses (see Notes).
        **fit_params : dict
            Passed to the module's ``forward``, as in skorch.

        Returns
        -------
        self : MixupNeuralNetClassifier
            The trained net.
        """
        if not self.initialized_:
            self.initialize()
        return self._train(X, y, sample_weight, "partial_fit", fit_params)

    def _train(self, X, y, sample_weight, routing, fit_params):
        """``fit`` and ``partial_fit`` of the net itself: validate, then train,
        reporting to the net's own scikit-learn callbacks."""
        fit_params.pop("_routing_method", None)
        self._ensure_generators()
        self._validate_net_params()
        caller = type(self).__name__
        check_feature_names(self, X, reset=routing == "fit" or not self._trained_once)
        X = check_net_input(X, caller)
        y = check_net_target(y, _n_rows(X), caller)
        if y is not None and getattr(self, "class_weight", None) is not None:
            sample_weight = class_sample_weight(self.class_weight, y, sample_weight)
        epochs = fit_params.get("epochs")
        epochs = self.max_epochs if epochs is None else epochs
        with callback_management(self):
            task = begin_fit(
                self, X, y, max_subtasks=epochs, task_name=routing, subtask_name="epoch"
            )
            self._train_validated(
                X,
                y,
                sample_weight,
                routing,
                task,
                {"_in_fit_loop": False},
                **fit_params,
            )
            task.end({})
        return self

    def _train_validated(
        self, X, y, sample_weight, routing, task, attributes=None, **fit_params
    ):
        """Train on ``X, y`` already validated (by :meth:`_train`, or by the
        scikit-learn estimator that owns the net, which validates once).

        Every finished epoch is reported to ``task`` (the one fit task of the
        caller, :func:`~skmixup.utils._callbacks.begin_fit`) with the fitted
        ``attributes`` (default: none, the owner predicts with this net).
        """
        if not hasattr(self, "_mixup_law_"):
            # an initialize() that does not call ours (skorch's AccelerateMixin
            # replaces NeuralNet.initialize): seed and validate here
            self._ensure_generators()
            self._validate_net_params()
        check_n_features(self, X, reset=routing == "fit" or not self._trained_once)
        X = attach_sample_weight(X, sample_weight, type(self).__name__)
        self._fit_task_ = (task, {} if attributes is None else attributes)
        try:
            with torch_runtime(), self._global_rng_if_needed():
                super().partial_fit(X, y, _routing_method=routing, **fit_params)
        finally:
            del self._fit_task_
        return self

    @property
    def _trained_once(self):
        return self.initialized_ and len(self.history) > 0

    def _global_rng_if_needed(self):
        """Seeded global generator (with its lock) only if a module may draw."""
        modules = [getattr(self, name + "_", None) for name in self._modules]
        if all(
            forward_draws_no_random_numbers(uncompiled(module))
            for module in modules
            if isinstance(module, torch.nn.Module)
        ):
            return contextlib.nullcontext()
        seed = int(self._seed_rng_.randint(MAX_SEED))
        return global_rng_section(seed, self.device)

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """skorch's loop; tells Ctrl-C apart from a callback's stop request.

        skorch's callbacks stop training by raising ``KeyboardInterrupt`` (as
        ``EarlyStopping`` does), and skorch's ``partial_fit`` catches it, as it
        catches Ctrl-C. A ``KeyboardInterrupt`` that comes from SIGINT, or that
        does not come out of a callback, is recorded before skorch handles it,
        so that :class:`MixupMLPClassifier` can re-raise it.
        """
        self._interrupt = None
        self._in_fit_loop = True
        try:
            with sigint_recorder() as sigint:
                return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt as exc:
            if sigint["received"] or not getattr(exc, "_skmixup_callback_stop", 0):
                self._interrupt = exc
            raise
        finally:
            self._in_fit_loop = False

    def notify(self, method_name, **cb_kwargs):
        """skorch's ``notify``; marks a callback's ``KeyboardInterrupt`` as a stop
        request. Each epoch's end is reported to scikit-learn's callbacks too."""
        task, attributes = None, None
        if method_name == "on_epoch_end" and self._fit_task_ is not None:
            task, attributes = self._fit_task_
        try:
            with report_epoch(task, attributes):
                return super().notify(method_name, **cb_kwargs)
        except KeyboardInterrupt as exc:
            exc._skmixup_callback_stop = True
            raise

    def forward_iter(self, X, training=False, device="cpu"):
        """skorch's ``forward_iter`` on validated input, batch by batch."""
        if not self._fitting and not self._input_checked:
            check_feature_names(self, X, reset=False)
            X = check_net_input(X, type(self).__name__)
            check_n_features(self, X, reset=False)
        with torch_runtime():
            yield from super().forward_iter(X, training=training, device=device)

    def _forward_validated(self, X):
        """``forward(X)`` (on the CPU, eval mode) of input that the owning
        estimator validated already."""
        self._input_checked = True
        try:
            return self.forward(X, training=False)
        finally:
            self._input_checked = False

    # ------------------------------------------------------ the training step
    def train_step(self, batch, **fit_params):
        """skorch's training step; the batch's sample weights are taken out
        once, carried beside the batch (``_batch_weights``) to ``get_loss``."""
        Xi, yi = unpack_data(batch)
        Xi, weights = detach_sample_weight(Xi)
        self._batch_weights = weights
        try:
            return self._weighted_train_step((Xi, yi), weights, **fit_params)
        finally:
            self._batch_weights = None

    def _weighted_train_step(self, batch, weights, **fit_params):
        """The training step on a batch without weights (``weights`` beside it,
        None when equal); skorch's by default."""
        return super().train_step(batch, **fit_params)

    def validation_step(self, batch, **fit_params):
        """skorch's validation step, with the batch's sample weights beside it."""
        Xi, yi = unpack_data(batch)
        Xi, weights = detach_sample_weight(Xi)
        self._batch_weights = weights
        try:
            return super().validation_step((Xi, yi), **fit_params)
        finally:
            self._batch_weights = None

    def _to_module_input(self, x):
        """A batch as tensors on the net's device, floating ones in the
        module's dtype."""
        dtype = self._input_dtype()
        if self.device is not None:
            x = to_tensor(x, device=self.device)
        if dtype is not None:
            x = _cast_floating(x, dtype)
        return x

    def infer(self, x, **fit_params):
        """Run the module on a batch (floating tensors cast to the module's
        dtype)."""
        return super().infer(self._to_module_input(x), **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The criterion's loss; with per-sample terms (sample weights of the
        batch, or a subclass's ``_per_sample_loss``) when there are any.

        The batch's sample weights multiply each sample's loss, which is then
        reduced as the criterion's ``reduction`` says.
        """
        weights = getattr(self, "_batch_weights", None)
        if weights is None and not self._needs_per_sample_loss(training):
            return self._criterion_loss(y_pred, y_true)
        criterion = uncompiled(self.criterion_)
        reduction = getattr(criterion, "reduction", None)
        if reduction not in ("mean", "sum", "none"):
            raise TypeError(
                f"{type(self).__name__} needs per-sample losses for Mixup and "
                f"sample weights: the criterion {type(criterion).__name__} has no "
                "'reduction' attribute of 'mean', 'sum' or 'none'."
            )
        y_true = to_tensor(y_true, device=_output_device(y_pred))
        criterion.reduction = "none"
        try:
            loss = self._per_sample_loss(y_pred, y_true, training)
        finally:
            criterion.reduction = reduction
        if weights is not None:
            loss = loss * to_tensor(weights, device=loss.device).to(loss.dtype)
        if reduction == "mean":
            return loss.mean()
        return loss.sum() if reduction == "sum" else loss

    def _needs_per_sample_loss(self, training):
        """Whether the loss of this batch has per-sample terms without weights."""
        return False

    def _per_sample_loss(self, y_pred, y_true, training):
        """Each sample's loss (the criterion's ``reduction`` is ``"none"``)."""
        return self._criterion_loss(y_pred, y_true)

    def _criterion_loss(self, y_pred, y_true):
        """The criterion on the module's output (skorch's ``get_loss``)."""
        if isinstance(y_pred, tuple):
            y_pred = y_pred[0]
        y_true = to_tensor(y_true, device=_output_device(y_pred))
        return self.criterion_(y_pred, y_true)

    # ----------------------------------------------------------- persistence
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # CSR, kept sparse until each batch
        return tags

    def trim_for_prediction(self):
        """skorch's :meth:`~skorch.net.NeuralNet.trim_for_prediction`, and the
        fit-only state: the random generators of the Mixup draws, shuffling and
        initialisation (the net predicts without them; it can no longer be
        trained, as skorch's trimmed nets). The criterion stays, so that
        ``predict_proba`` still applies its nonlinearity."""
        criteria = {name: getattr(self, name + "_", None) for name in self._criteria}
        super().trim_for_prediction()
        for name, criterion in criteria.items():
            setattr(self, name + "_", criterion)
        for name in (*_GENERATORS, "_mixup_rng_", "_seed_rng_", "_mixup_law_"):
            self.__dict__.pop(name, None)

    def __reduce_ex__(self, protocol):
        # pickle, joblib and copy: skorch's state (see _persistence.py)
        return reduce_with(self, self._pickle_state())

    def _pickle_state(self):
        state = super().__getstate__()
        for key in _GENERATORS:  # numpy: plain pickle, no torch storage
            if key in state:
                state[key] = ("torch.Generator", state[key].get_state().numpy())
        for key in ("_batch_mixing", "_fit_task_", *FIT_IN_PROGRESS):
            state.pop(key, None)  # a fit in progress (pickled by a Checkpoint)
        return state

    def __getstate__(self):
        """The portable state (parameters and arrays) that skops saves."""
        params = self.get_params(deep=False)
        if isinstance(params.get("module"), torch.nn.Module):
            raise TypeError(
                f"{type(self).__name__} can be saved without pickle (skops) only "
                "when module is a class (with module__ parameters), not an "
                "instance; use pickle for module instances."
            )
        state = {PORTABLE_KEY: True, "params": params}
        if self.initialized_:
            state["fitted"] = fitted_state(self, _GENERATORS)
        return state

    def __setstate__(self, state):
        if state.get(PORTABLE_KEY):
            self._load_portable(state)
            return
        for key in _GENERATORS:
            value = state.get(key)
            if isinstance(value, tuple) and value[0] == "torch.Generator":
                gen = torch.Generator()
                gen.set_state(torch.as_tensor(value[1]))
                state[key] = gen
        super().__setstate__(state)

    def _load_portable(self, state):
        self.__dict__.update(type(self)(**state["params"]).__dict__)
        if "fitted" in state:
            self.device = self._check_device(self.device, get_map_location(self.device))
            self.initialize()
            load_fitted_state(self, state["fitted"])


class _BaseMixupNetClassifier(_BaseMixupNet, NeuralNetClassifier):
    """skorch's classification conventions for a skmixup net: a module that
    returns logits, ``CrossEntropyLoss`` by default (``NLLLoss`` on
    probabilities also works, as in skorch), a stratified validation split."""

    def __init__(
        self,
        module,
        *args,
        criterion=torch.nn.CrossEntropyLoss,
        train_split=ValidSplit(5, stratified=True),  # noqa: B008 (skorch's default)
        **kwargs,
    ):
        super().__init__(
            module, *args, criterion=criterion, train_split=train_split, **kwargs
        )

    def _criterion_loss(self, y_pred, y_true):
        """skorch's classifier loss: the log is taken for ``NLLLoss``."""
        if isinstance(y_pred, tuple):
            y_pred = y_pred[0]
        if isinstance(uncompiled(self.criterion_), torch.nn.NLLLoss):
            y_pred = torch.log(y_pred + torch.finfo(y_pred.dtype).eps)
        y_true = to_tensor(y_true, device=_output_device(y_pred))
        return self.criterion_(y_pred, y_true)


class MixupNeuralNetClassifier(_BaseMixupNetClassifier):
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
        A loss with a ``reduction`` attribute: on mixed batches it is switched to
        ``"none"`` for the per-sample losses, which are then reduced as the
        criterion's own ``reduction`` says (``"mean"``, ``"sum"`` or ``"none"``).
        Unlike skorch's ``NeuralNetClassifier`` (which expects probabilities and
        uses ``NLLLoss``), the default here is ``CrossEntropyLoss`` on logits, and
        ``predict_proba`` applies a softmax. ``criterion=torch.nn.NLLLoss`` with a
        module that returns probabilities also works (the log is taken as skorch
        does), compiled (``compile=True``) or not.
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
    class_weight : dict or "balanced", default=None
        Weights of the classes (keys: the labels of ``y``), multiplied into
        ``sample_weight``, as for the linear estimators; ``"balanced"`` is
        ``n_samples / (n_classes * bincount(y))`` on each ``fit``'s ``y``.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, the shuffling order, the mixing weights and
        the partners, each from its own explicit generator. A module *instance*
        is copied and re-initialised from these generators at every ``fit``.
        ``None`` draws the seeds from numpy's global RNG. Pass an int for results
        that are reproducible across processes and threads (see Notes).
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

    Random numbers come from explicit generators: mixing weights from a seeded
    :class:`numpy.random.RandomState` (through :func:`skmixup._mixing.sample_beta`,
    which handles tiny ``mixup_alpha``), partners, shuffling and the weights of
    ``Linear``, ``ConvNd`` and ``Embedding`` layers from seeded
    :class:`torch.Generator` objects. PyTorch's global generator is used only
    where a module leaves no choice: other layers' ``reset_parameters``, lazy
    layers, and a forward pass that may draw (dropout, RReLU, or any custom
    ``forward``, which cannot be inspected). Such a fit forks, seeds and
    restores the global generator under a process-wide lock, so that threads
    (a threaded ``GridSearchCV``) run such fits one at a time and reproduce the
    sequential results. ``torch.manual_seed`` is never called: only the
    generator of the device in use is seeded, inside a fork that restores it.

    ``sample_weight`` weights each anchor's Mixup loss (the loss is the weighted
    mean over the batch, weights normalised to mean 1 over the training set),
    and partners are drawn with probability proportional to their weight, with
    replacement, within the batch; so an integer weight acts as repeated rows,
    as anchor and as partner, in expectation. Equal weights train exactly as no
    weights.

    Ctrl-C (``KeyboardInterrupt``) stops training as in skorch: ``fit`` returns
    the net trained so far. Differences with skorch's ``NeuralNetClassifier``:
    array-like ``X`` is validated (finite, non-empty, numeric DataFrames become
    arrays), ``y`` must hold class indices, a module instance is re-initialised
    at each ``fit`` instead of being trained further, and ``predict`` copies one
    batch at a time to the device.

    Pickling works as in skorch, callbacks included (an LRScheduler's optimizer
    state is mapped to the CPU with the net); a net trained on a GPU loads on a
    CPU-only machine (with skorch's ``DeviceWarning``). For skops, see
    :class:`MixupMLPClassifier`.

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
    ...     train_split=None, verbose=0, random_state=0, device="cpu",
    ... ).fit(X, y)
    >>> net.predict_proba(X[:2]).shape
    (2, 2)

    The module instance is copied and re-initialised from ``random_state``, so
    the result does not depend on the global PyTorch state or the process:

    >>> round(float(net.history[-1, "train_loss"]), 3)
    0.61
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
        class_weight=None,
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
            mixup_alpha=mixup_alpha,
            mixup_beta=mixup_beta,
            random_state=random_state,
            **kwargs,
        )
        self.mixup_prob = mixup_prob
        self.class_weight = class_weight

    def _net_constraints(self):
        return {
            **super()._net_constraints(),
            "mixup_prob": [Interval(Real, 0, 1, closed="both")],
            "class_weight": [dict, StrOptions({"balanced"}), None],
        }

    # ------------------------------------------------------------ Mixup step
    def _sample_lambda(self, n_samples):
        """Draw ``n_samples`` mixing weights ``lam ~ Beta(alpha, beta)`` (float64)."""
        alpha, beta = self._mixup_law_
        return sample_beta(alpha, beta, n_samples, self._mixup_rng_)

    def _draw_mixing(self, batch, weights=None):
        """Return ``(lam, partner)`` on the batch's device, or None when the
        batch is not mixed (``mixup_prob < 1``).

        ``weights`` are the batch's sample weights (None: equal). The mixing
        weights and the partners' draw travel in one host-to-device copy,
        queued before the forward pass.
        """
        if self.mixup_prob < 1.0 and not self._mixup_rng_.random_sample() < float(
            self.mixup_prob
        ):
            return None
        Xi, yi = unpack_data(batch)
        n = get_len(yi) if yi is not None else get_len(Xi)
        lam = self._sample_lambda(n)
        lam = np.maximum(lam, 1.0 - lam)  # see Notes: the row keeps the larger weight
        if weights is None:
            draw = torch.randperm(n, generator=self._mixup_generator_)
        else:
            draw = torch.rand(n, generator=self._mixup_generator_, dtype=torch.float64)
        host = torch.cat([torch.from_numpy(lam), draw.to(torch.float64)])
        on_device = self._transfer(host, _batch_device(Xi, self.device))
        lam, draw = on_device[:n], on_device[n:]
        if weights is None:
            return lam, draw.long()
        # partners with probability proportional to their weight (inverse CDF)
        cdf = torch.cumsum(to_tensor(weights, device=draw.device).double(), 0)
        partner = torch.searchsorted(cdf, draw * cdf[-1], right=True)
        return lam, partner.clamp_max(n - 1)

    def _transfer(self, host, device):
        """The one host-to-device copy of a training step's random draws."""
        if device.type == "cuda":
            host = host.pin_memory()
        return host.to(device, non_blocking=True)

    def _weighted_train_step(self, batch, weights, **fit_params):
        """skorch's training step on the batch mixed with its partners.

        The draws are made once per batch, before skorch's step (so optimizers
        that call the closure several times see the same mixed batch); ``infer``
        mixes the inputs and ``get_loss`` mixes the losses. Any training step
        that calls ``infer`` and ``get_loss(..., training=True)`` (skorch's, or
        ``AccelerateMixin``'s) therefore trains with Mixup.
        """
        self._batch_mixing = self._draw_mixing(batch, weights)
        try:
            return super()._weighted_train_step(batch, weights, **fit_params)
        finally:
            self._batch_mixing = None

    def infer(self, x, **fit_params):
        """Run the module on a batch, mixed inside a training step (floating
        tensors cast to the module's dtype)."""
        mixing = getattr(self, "_batch_mixing", None)
        if mixing is not None:
            lam, partner = mixing
            x = _mix_inputs(self._to_module_input(x), lam, partner)
        return super().infer(x, **fit_params)

    def _per_sample_loss(self, y_pred, y_true, training):
        """The Mixup loss of each sample on a mixed training batch:
        ``lam_i l(f(x~_i), y_i) + (1 - lam_i) l(f(x~_i), y_partner(i))``."""
        loss = self._criterion_loss(y_pred, y_true)
        mixing = getattr(self, "_batch_mixing", None) if training else None
        if mixing is not None:
            lam, partner = mixing
            lam = lam.to(dtype=loss.dtype)
            partner_loss = self._criterion_loss(y_pred, y_true[partner])
            loss = lam * loss + (1.0 - lam) * partner_loss
        return loss

    def _needs_per_sample_loss(self, training):
        mixing = getattr(self, "_batch_mixing", None) if training else None
        return mixing is not None


def _n_rows(X):
    if sparse.issparse(X):
        return X.shape[0]
    if isinstance(X, Mapping) or not hasattr(X, "__len__"):
        return None
    return len(X)


def _batch_device(x, default):
    if isinstance(x, Mapping):
        x = next(iter(x.values()), None)
    if isinstance(x, torch.Tensor):
        return x.device
    return torch.device(default or "cpu")


def _output_device(y_pred):
    y_pred = y_pred[0] if isinstance(y_pred, tuple) else y_pred
    return y_pred.device


def _cast_floating(x, dtype):
    if isinstance(x, Mapping):
        return {k: _cast_floating(v, dtype) for k, v in x.items()}
    if isinstance(x, torch.Tensor) and torch.is_floating_point(x) and x.dtype != dtype:
        return x.to(dtype)
    return x


def _mix_inputs(X, lam, partner):
    if isinstance(X, Mapping):
        return {k: _mix_inputs(v, lam, partner) for k, v in X.items()}
    if not isinstance(X, torch.Tensor) or not torch.is_floating_point(X):
        raise TypeError(
            "Mixup needs floating-point input tensors (or a dict of them); got "
            f"{type(X).__name__} of dtype {getattr(X, 'dtype', None)}."
        )
    lam = lam.to(device=X.device, dtype=X.dtype).reshape((-1,) + (1,) * (X.ndim - 1))
    return lam * X + (1.0 - lam) * X[partner]
