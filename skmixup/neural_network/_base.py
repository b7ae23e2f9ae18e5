"""The private bases of the scikit-learn network estimators.

:class:`_BaseMixupMLP` holds what every network estimator of skmixup shares: the
parameters of :class:`sklearn.neural_network.MLPClassifier` that are not about
Mixup (and their documentation, :data:`PARAMETER_DOCS`), ``fit`` and
``partial_fit`` (validation, seeds, the skorch net, the scikit-learn callbacks,
Ctrl-C, convergence), prediction of the module's outputs, and persistence
(pickle, joblib, copy, skops). :class:`_BaseMixupMLPClassifier` adds what is
about classification: ``classes_``, the label encoding and ``predict``,
``predict_proba``, ``predict_log_proba``.

How a new network estimator plugs in
------------------------------------

* Derive from :class:`_BaseMixupMLPClassifier` (a classifier) or from
  :class:`_BaseMixupMLP` with :class:`sklearn.base.RegressorMixin` (another
  task).
* ``__init__`` stores the shared parameters (see :data:`PARAMETER_DOCS`) and the
  estimator's own; ``_parameter_constraints`` is ``{**BASE_CONSTRAINTS,
  ...own}``.
* ``_net_class`` is the skorch net class that trains the module (a subclass of
  :class:`~skmixup.neural_network._net._BaseMixupNet`), and ``_net_params()``
  returns the estimator's own parameters of that net (they override the
  defaults of ``_build_net``: a subclass trains through Accelerate on several
  processes or GPUs with ``accelerator``, ``device=None`` and DataLoaders, see
  the user guide's "Scaling out").
* A new task implements the target hooks of :class:`_BaseMixupMLP`:
  ``_encode_fit_target(y)`` and ``_encode_partial_fit_target(y, classes,
  first)`` (the encoded target and the number of outputs),
  ``_set_fitted_target(state)``, ``_n_outputs()``, ``_valid_split(seed)`` and
  ``_early_stopping_monitor()`` (what ``early_stopping`` monitors on the
  validation split), and its prediction methods from :meth:`_outputs`.
* ``fit`` (and ``partial_fit``) are public methods of the estimator, decorated
  with ``_fit_context``, that document their own signature and call
  :meth:`_fit` (:meth:`_partial_fit`).
* The class docstring writes ``%(name)s`` for a shared parameter's text;
  :func:`fill_parameter_docs` replaces them.
"""

import copy
import warnings
from numbers import Integral, Real
from types import SimpleNamespace

import numpy as np
import torch
from scipy import sparse
from scipy.special import log_softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import EarlyStopping
from skorch.dataset import ValidSplit
from skorch.utils import noop

from skmixup._constraints import MIXUP_LAW_CONSTRAINTS
from skmixup.neural_network._module import MLPModule
from skmixup.neural_network._net import _GENERATORS
from skmixup.neural_network._persistence import (
    PORTABLE_KEY,
    fitted_state,
    load_fitted_state,
    reduce_with,
)
from skmixup.utils._callbacks import CallbackSupportMixin, begin_fit
from skmixup.utils._console import plain_print
from skmixup.utils._labels import label_indices
from skmixup.utils._validation import MAX_SEED, class_sample_weight

__all__ = [
    "BASE_CONSTRAINTS",
    "CLASS_WEIGHT_CONSTRAINT",
    "PARAMETER_DOCS",
    "fill_parameter_docs",
]

# The classifiers' class_weight (multiplied into the sample weights).
CLASS_WEIGHT_CONSTRAINT = {"class_weight": [dict, StrOptions({"balanced"}), None]}

# Constraints of the shared parameters (a subclass adds its own).
BASE_CONSTRAINTS = {
    "hidden_layer_sizes": [
        "array-like",
        Interval(Integral, 1, None, closed="left"),
    ],
    "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
    **MIXUP_LAW_CONSTRAINTS,
    "alpha": [Interval(Real, 0, None, closed="left")],
    "batch_size": [
        StrOptions({"auto"}),
        Interval(Integral, 1, None, closed="left"),
    ],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "shuffle": ["boolean"],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
    "device": [str],
    "callbacks": [list, None],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}

# The documentation of the shared parameters and attributes, written once
# (numpydoc entries, indented as in a class docstring).
PARAMETER_DOCS = {
    "network_parameters": """\
    hidden_layer_sizes : array-like of int, default=(100,)
        Width of each hidden layer.
    activation : {"identity", "logistic", "tanh", "relu"}, default="relu"
        Hidden-layer activation.""",
    "training_parameters": """\
    alpha : float, default=1e-4
        L2 penalty on the weights (not the biases), as in ``MLPClassifier``: it
        adds ``alpha / (2 * batch_size) * ||W||^2`` to each batch loss
        (Adam's coupled ``weight_decay = alpha / batch_size``).
    batch_size : int or "auto", default="auto"
        Minibatch size; ``"auto"`` is ``min(200, n_samples)``. Clipped to
        ``n_samples``.
    learning_rate_init : float, default=1e-3
        Adam learning rate.
    max_iter : int, default=200
        Maximum number of epochs.
    shuffle : bool, default=True
        Shuffle the training data at every epoch.""",
    "stopping_parameters": """\
    n_iter_no_change : int, default=10
        Patience, in epochs.
    tol : float, default=1e-4
        Minimum improvement of the monitored quantity.""",
    "class_weight_parameter": """\
    class_weight : dict or "balanced", default=None
        Weights of the classes, multiplied into each sample's weight (the
        meaning of the linear estimators' ``class_weight``): ``{label: weight}``,
        or ``"balanced"`` for ``n_samples / (n_classes * bincount(y))``, computed
        on the ``y`` of each ``fit`` (or ``partial_fit`` chunk).""",
    "device_parameters": """\
    device : str, default="auto"
        PyTorch device; ``"auto"`` is ``"cuda"`` when available, else ``"cpu"``.
    callbacks : list of (str, skorch.callbacks.Callback), default=None
        Extra skorch callbacks (copied in ``fit``; the fitted ones are in
        ``net_.callbacks_``).""",
    "verbose_parameter": """\
    verbose : int, default=0
        Print skorch's per-epoch table when > 0.""",
    "fitted_attributes": """\
    validation_scores_ : list of float or None
        Validation accuracy per epoch with ``early_stopping``, else None.
    best_validation_score_ : float or None
        Best validation accuracy with ``early_stopping``, else None.
    n_iter_ : int
        Number of epochs run.
    device_ : str
        Device the network lives on.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` has string column names.""",
}


def fill_parameter_docs(cls):
    """Class decorator: replace ``%(name)s`` in the docstring by
    ``PARAMETER_DOCS[name]``."""
    doc = cls.__doc__
    for name, text in PARAMETER_DOCS.items():
        doc = doc.replace(f"    %({name})s", text)
    cls.__doc__ = doc
    return cls


class _BaseMixupMLP(CallbackSupportMixin, BaseEstimator):
    """Base of the scikit-learn network estimators (see the module docstring)."""

    # The skorch net class that trains the module (a subclass sets it).
    _net_class = None

    # --------------------------------------------------------------- fitting
    def _fit(self, X, y, sample_weight=None):
        """``fit``: a fresh network trained on ``X, y``."""
        X, y = validate_data(
            self, X, y, accept_sparse="csr", dtype=[np.float64, np.float32]
        )
        y_enc, n_outputs, target_state = self._encode_fit_target(y)
        sample_weight = class_sample_weight(
            getattr(self, "class_weight", None), y, sample_weight
        )
        X32 = _to_float32(X)
        seed = int(check_random_state(self.random_state).randint(MAX_SEED))
        device = _resolve_device(self.device)
        net = self._build_net(X.shape, n_outputs, device, seed, incremental=False)
        task = begin_fit(self, X, y, max_subtasks=self.max_iter, subtask_name="epoch")
        net.initialize()
        # The model the callbacks score after each epoch (ScoringMonitor): a copy
        # of this estimator with the network in training and its fitted target.
        attributes = SimpleNamespace()
        type(self)._set_fitted_target(attributes, target_state)
        attributes = {**vars(attributes), "net_": net, "device_": device}
        net._train_validated(
            X32, y_enc, sample_weight, "fit", task=task, attributes=attributes
        )
        _raise_if_interrupted(net)
        self._set_fitted_target(target_state)
        self.net_, self.device_ = net, device
        task.end()
        self._record_fit()
        self._warn_if_not_converged()
        return self

    def _partial_fit(self, X, y, classes=None, sample_weight=None):
        """``partial_fit``: one epoch, without re-initialising."""
        first = not hasattr(self, "net_")
        X, y = validate_data(
            self, X, y, accept_sparse="csr", dtype=[np.float64, np.float32], reset=first
        )
        y_enc, n_outputs, target_state = self._encode_partial_fit_target(
            y, classes, first
        )
        sample_weight = class_sample_weight(
            getattr(self, "class_weight", None), y, sample_weight
        )
        if first:
            device = _resolve_device(self.device)
            seed = int(check_random_state(self.random_state).randint(MAX_SEED))
            net = self._build_net(X.shape, n_outputs, device, seed, incremental=True)
            net.initialize()
        else:
            net, device = self.net_, self.device_
            self._disable_early_stopping()
        task = begin_fit(self, X, y, max_subtasks=0, task_name="partial_fit")
        net._train_validated(
            _to_float32(X), y_enc, sample_weight, "partial_fit", task=task, epochs=1
        )
        _raise_if_interrupted(net)
        self._set_fitted_target(target_state)
        self.net_, self.device_ = net, device
        task.end({})  # scikit-learn callbacks see the updated model
        self._record_fit()
        return self

    def _warn_if_not_converged(self):
        stopper = dict(self.net_.callbacks_)["early_stopping"]
        if self.n_iter_ >= self.max_iter and stopper.misses_ < stopper.patience:
            warnings.warn(
                f"Stochastic optimizer: maximum iterations ({self.max_iter}) "
                "reached and the optimization hasn't converged yet (the monitored "
                f"{stopper.monitor} still improved by more than tol={self.tol} "
                f"within the last {stopper.patience} epochs).",
                ConvergenceWarning,
                stacklevel=5,  # past _fit, fit and sklearn's _fit_context wrapper
            )

    # ------------------------------------------------------------ target hooks
    def _encode_fit_target(self, y):
        """``(y_encoded, n_outputs, state)`` for ``fit``; ``state`` goes to
        :meth:`_set_fitted_target` once the fit succeeded."""
        raise NotImplementedError

    def _encode_partial_fit_target(self, y, classes, first):
        """As :meth:`_encode_fit_target`, for ``partial_fit``."""
        raise NotImplementedError

    def _set_fitted_target(self, state):
        """Set the fitted attributes of the target (e.g. ``classes_``)."""
        raise NotImplementedError

    def _n_outputs(self):
        """Outputs of the fitted module (the network is rebuilt from it)."""
        raise NotImplementedError

    def _valid_split(self, seed):
        """The validation split of ``early_stopping``."""
        return ValidSplit(self.validation_fraction, random_state=seed)

    def _early_stopping_monitor(self):
        """skorch's ``EarlyStopping`` settings of ``early_stopping``."""
        return {"monitor": "valid_loss", "lower_is_better": True, "load_best": True}

    # ------------------------------------------------------------ prediction
    def _outputs(self, X):
        """The module's outputs for ``X`` (float64), ``X`` validated once."""
        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, accept_sparse="csr", dtype=[np.float64, np.float32]
        )
        outputs = self.net_._forward_validated(_to_float32(X))
        return outputs.numpy().astype(np.float64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False  # an int random_state is exact on CPU
        tags.input_tags.sparse = True  # CSR, kept sparse until each batch
        return tags

    # ----------------------------------------------------------- persistence
    def __reduce_ex__(self, protocol):
        # pickle, joblib and copy (skops reads __getstate__; see _persistence.py)
        return reduce_with(self, self._pickle_state())

    def _pickle_state(self):
        # A copy: on Python >= 3.11 BaseEstimator returns the object's own
        # __dict__, which must not be edited (the live estimator stays on its
        # device).
        state = dict(super().__getstate__())
        net = state.get("net_")
        if net is not None and torch.device(net.device).type != "cpu":
            state["net_"] = _net_on_cpu(net)
            state["device_"] = "cpu"
        return state

    def __getstate__(self):
        """The portable state (parameters and arrays) that skops saves."""
        state = dict(super().__getstate__())
        net = state.pop("net_", None)
        if net is not None:
            state[PORTABLE_KEY] = {
                "batch_size": int(net.batch_size),
                "seed": int(net.random_state),
                "incremental": net.train_split is None,
                "fitted": fitted_state(net, _GENERATORS),
            }
        return state

    def __setstate__(self, state):
        state = dict(state)
        portable = state.pop(PORTABLE_KEY, None)
        if isinstance(portable, dict):
            # a skops file: rebuild the net on the CPU and copy the arrays in
            super().__setstate__(state)
            shape = (portable["batch_size"], self.n_features_in_)
            net = self._build_net(
                shape,
                self._n_outputs(),
                "cpu",
                portable["seed"],
                portable["incremental"],
            )
            net.initialize()
            load_fitted_state(net, portable["fitted"])
            self.net_, self.device_ = net, "cpu"
            return
        super().__setstate__(state)

    # ------------------------------------------------------------- the net
    def _build_module(self, n_features, n_outputs):
        """The PyTorch module, built on the meta device (no memory, no random
        numbers): the net materialises it and draws its weights from its
        seeded generator at every fit."""
        hidden = tuple(int(h) for h in np.atleast_1d(self.hidden_layer_sizes))
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        with torch.device("meta"):
            return MLPModule(
                n_features,
                n_outputs,
                hidden_layer_sizes=hidden,
                activation=self.activation,
            )

    def _build_net(self, shape, n_outputs, device, seed, incremental):
        """The skorch net (``_net_class``) with the stopping rule, optimizer and
        seeds of this estimator; its module comes from ``_build_module``."""
        n_samples, n_features = shape
        batch_size = 200 if self.batch_size == "auto" else self.batch_size
        batch_size = int(min(batch_size, n_samples))
        callbacks = copy.deepcopy(list(self.callbacks or []))
        train_split = None
        if self.early_stopping and not incremental:
            train_split = self._valid_split(seed)
            monitor = self._early_stopping_monitor()
        else:
            monitor = {"monitor": "train_loss", "lower_is_better": True}
        stopper = EarlyStopping(
            patience=self.n_iter_no_change,
            threshold=self.tol,
            threshold_mode="abs",
            sink=print if self.verbose else noop,
            **monitor,
        )
        callbacks.append(("early_stopping", stopper))
        params = dict(
            optimizer=torch.optim.Adam,
            optimizer__param_groups=[
                ("*weight", {"weight_decay": self.alpha / batch_size})
            ],
            lr=self.learning_rate_init,
            max_epochs=self.max_iter,
            batch_size=batch_size,
            iterator_train__shuffle=self.shuffle,
            train_split=train_split,
            callbacks=callbacks,
            device=device,
            verbose=self.verbose,
            callbacks__print_log__sink=plain_print if self.verbose else noop,
            random_state=seed,
        )
        # a subclass's net parameters win (e.g. Accelerate's device=None and
        # DataLoaders, docs/user_guide.rst "Scaling out")
        params.update(self._net_params())
        return self._net_class(self._build_module(n_features, n_outputs), **params)

    def _net_params(self):
        """Parameters of ``_net_class`` that are specific to the estimator; they
        override the defaults of ``_build_net``."""
        return {"mixup_alpha": self.mixup_alpha, "mixup_beta": self.mixup_beta}

    def _disable_early_stopping(self):
        net = self.net_
        if net.train_split is not None:
            net.set_params(train_split=None, callbacks__early_stopping=None)
            net.initialize_callbacks()

    def _record_fit(self):
        history = self.net_.history
        self.loss_curve_ = [float(v) for v in history[:, "train_loss"]]
        self.n_iter_ = len(history)
        self.validation_scores_ = None
        self.best_validation_score_ = None
        monitor = self._early_stopping_monitor()["monitor"]
        if self.net_.train_split is not None and monitor in history[-1]:
            self.validation_scores_ = [float(v) for v in history[:, monitor]]
            best = min if self._early_stopping_monitor()["lower_is_better"] else max
            self.best_validation_score_ = best(self.validation_scores_)


class _BaseMixupMLPClassifier(ClassifierMixin, _BaseMixupMLP):
    """The classification layer: ``classes_``, labels of any type, and the
    probabilities (softmax of the logits the module returns)."""

    def _encode_fit_target(self, y):
        check_classification_targets(y)
        classes, y_enc = np.unique(y, return_inverse=True)
        return y_enc.astype(np.int64), len(classes), classes

    def _encode_partial_fit_target(self, y, classes, first):
        check_classification_targets(y)
        if first:
            if classes is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit."
                )
            all_classes = np.unique(classes)
        else:
            all_classes = self.classes_
            if classes is not None and not np.array_equal(
                np.unique(classes), all_classes
            ):
                raise ValueError(
                    f"classes={classes!r} is not the same as on the first call to "
                    f"partial_fit, which was {all_classes!r}."
                )
        y_enc = label_indices(all_classes, y).astype(np.int64)
        return y_enc, len(all_classes), all_classes

    def _set_fitted_target(self, classes):
        self.classes_ = classes

    def _n_outputs(self):
        return len(self.classes_)

    def _valid_split(self, seed):
        return ValidSplit(self.validation_fraction, stratified=True, random_state=seed)

    def _early_stopping_monitor(self):
        return {"monitor": "valid_acc", "lower_is_better": False, "load_best": True}

    def predict_proba(self, X):
        """Class probabilities (softmax of the logits, in float64).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        return np.exp(self.predict_log_proba(X))

    def predict_log_proba(self, X):
        """Log class probabilities (log-softmax of the logits, in float64).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities, columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        return log_softmax(self._logits(X), axis=1)

    def predict(self, X):
        """Predict class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        check_is_fitted(self)
        logits = self._logits(X)
        return self.classes_[np.argmax(logits, axis=1)]

    def _logits(self, X):
        return self._outputs(X)


def _to_float32(X):
    """X as float32 for PyTorch (CSR stays CSR); values beyond float32's range
    are an error."""
    values = X.data if sparse.issparse(X) else X
    with np.errstate(over="ignore"):
        values32 = np.ascontiguousarray(values, dtype=np.float32)
    if values.dtype != np.float32 and not np.all(np.isfinite(values32)):
        raise ValueError(
            "X has values too large for float32 (|x| > 3.4e38), in which the "
            "network computes; rescale the features (e.g. with StandardScaler)."
        )
    if sparse.issparse(X):
        return sparse.csr_matrix(
            (values32, X.indices, X.indptr), shape=X.shape, dtype=np.float32
        )
    return values32


def _raise_if_interrupted(net):
    """Re-raise a Ctrl-C that skorch caught: an interrupted fit is not a fit."""
    interrupt = getattr(net, "_interrupt", None)
    if interrupt is not None:
        raise interrupt


def _resolve_device(device):
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    torch_device = torch.device(device)  # raises on a malformed name
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available.")
    return device


def _net_on_cpu(net):
    """A copy of a skorch net whose tensors are all on the CPU.

    Uses the net's own pickling state with the device switched to ``"cpu"``, so
    skorch's unpickler maps every CUDA tensor (module, optimizer, criterion) to
    the CPU.
    """
    state = net._pickle_state()
    state["device"] = "cpu"
    cpu_net = type(net).__new__(type(net))
    cpu_net.__setstate__(state)
    return cpu_net
