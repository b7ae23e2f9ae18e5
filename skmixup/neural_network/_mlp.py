"""MixupMLPClassifier: a scikit-learn MLP classifier trained with Mixup."""

import copy
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from scipy import sparse
from scipy.special import log_softmax
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
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
from skmixup.neural_network._net import _GENERATORS, MixupNeuralNetClassifier
from skmixup.neural_network._persistence import (
    PORTABLE_KEY,
    fitted_state,
    load_fitted_state,
    reduce_with,
)
from skmixup.utils._callbacks import CallbackSupportMixin, EpochCallback, begin_fit
from skmixup.utils._console import plain_print
from skmixup.utils._labels import label_indices
from skmixup.utils._validation import MAX_SEED, class_sample_weight

__all__ = ["MixupMLPClassifier"]


class MixupMLPClassifier(CallbackSupportMixin, ClassifierMixin, BaseEstimator):
    """Multilayer perceptron classifier trained with Mixup, on PyTorch.

    The parameters mirror :class:`sklearn.neural_network.MLPClassifier` (Adam
    solver). Every minibatch is mixed with a random permutation of itself and the
    network minimises the Mixup loss of Zhang et al. (2018), the objective
    studied by Zhang et al. (2021):

    .. math::

        \\frac{1}{B} \\sum_i \\lambda_i \\,\\mathrm{CE}(f(\\tilde x_i), y_i)
        + (1 - \\lambda_i) \\,\\mathrm{CE}(f(\\tilde x_i), y_{\\pi(i)})
        + \\frac{\\alpha}{2B} \\|W\\|^2,
        \\quad \\tilde x_i = \\lambda_i x_i + (1 - \\lambda_i) x_{\\pi(i)},
        \\quad \\lambda_i \\sim \\mathrm{Beta}(a, b).

    The network is a :class:`MixupNeuralNetClassifier` (skorch), built in ``fit``
    and stored as ``net_``. Labels may be of any type (strings included).

    Read more in the User Guide.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(100,)
        Width of each hidden layer.
    activation : {"identity", "logistic", "tanh", "relu"}, default="relu"
        Hidden-layer activation.
    mixup_alpha : float, default=1.0
        First parameter ``a`` of the Beta law of the mixing weight (not the L2
        strength, which is ``alpha``).
    mixup_beta : float, default=None
        Second parameter ``b``; ``None`` means ``b = a``.
    mixup_prob : float, default=1.0
        Probability that a minibatch is mixed; ``0`` is plain training.
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
        Shuffle the training data at every epoch.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified) and stop when
        the validation accuracy has not improved by ``tol`` for
        ``n_iter_no_change`` epochs; the best weights are restored. When False,
        training stops when the training (Mixup) loss has not improved by ``tol``
        for ``n_iter_no_change`` epochs.
    validation_fraction : float, default=0.1
        Held-out fraction for early stopping.
    n_iter_no_change : int, default=10
        Patience, in epochs.
    tol : float, default=1e-4
        Minimum improvement of the monitored quantity.
    class_weight : dict or "balanced", default=None
        Weights of the classes, multiplied into ``sample_weight`` (the meaning of
        the linear estimators' ``class_weight``): ``{label: weight}``, or
        ``"balanced"`` for ``n_samples / (n_classes * bincount(y))``, computed on
        the ``y`` of each ``fit`` (or ``partial_fit`` chunk).
    device : str, default="auto"
        PyTorch device; ``"auto"`` is ``"cuda"`` when available, else ``"cpu"``.
    callbacks : list of (str, skorch.callbacks.Callback), default=None
        Extra skorch callbacks (copied in ``fit``; the fitted ones are in
        ``net_.callbacks_``).
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling, the validation split and the Mixup draws.
        An int gives identical weights on CPU at every fit; PyTorch's global
        generator is left as it was. For reproducible cross-validation pass an
        int (with a RandomState instance, clones share and advance it).
    verbose : int, default=0
        Print skorch's per-epoch table when > 0.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    net_ : MixupNeuralNetClassifier
        The fitted skorch net; its module returns logits.
    loss_curve_ : list of float
        Mean training (Mixup) loss per epoch, without the L2 term.
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
        Feature names, when ``X`` has string column names.

    See Also
    --------
    sklearn.neural_network.MLPClassifier : The same network without Mixup.
    MixupNeuralNetClassifier : Mixup for any PyTorch module (skorch).

    Notes
    -----
    ``float64`` input is cast to ``float32`` for PyTorch (values beyond its range
    are an error); ``predict_proba`` returns ``float64``. As in ``MLPClassifier``,
    ``fit`` raises a ``ConvergenceWarning`` when it runs ``max_iter`` epochs
    without the stopping rule firing; ``partial_fit`` never does.
    Mixing weights are ordered so that each row keeps the larger one (see
    :class:`MixupNeuralNetClassifier`), which leaves the expected loss unchanged.

    ``sample_weight`` weights each anchor's Mixup loss, and partners are drawn
    in proportion to their weight (see :class:`MixupNeuralNetClassifier`), so
    integer weights act as repeated rows in expectation. The validation
    accuracy of ``early_stopping`` is unweighted.

    Random numbers come from explicit generators (weight initialisation
    included); PyTorch's global generator is never used, so threads (a threaded
    ``GridSearchCV``) reproduce sequential results. In a process forked after
    its parent used PyTorch, training runs on one thread (PyTorch's OpenMP pool
    does not survive ``fork``).

    Ctrl-C (``KeyboardInterrupt``) propagates out of ``fit`` and leaves the
    estimator as it was, so an interrupted fit is never taken for a finished
    one. (scikit-learn's ``MLPClassifier`` instead catches it, warns and returns
    the partly trained model.)

    Pickling (``pickle``, ``joblib``, ``copy.deepcopy``) leaves the live
    estimator unchanged and saves a model trained on a GPU with a CPU copy of
    its network, so it loads on a machine without one (``device_`` is then
    ``"cpu"``). skops saves it without pickle; the only type to trust is
    ``skmixup.neural_network._mlp.MixupMLPClassifier`` (parameters, arrays and
    lists are built-in types).

    A subclass may change the network through ``_build_module`` and the
    training step through ``_net_class`` (a :class:`MixupNeuralNetClassifier`
    subclass); ``_build_net`` puts them together.

    References
    ----------
    .. [1] Zhang, H., Cisse, M., Dauphin, Y. N. and Lopez-Paz, D. "mixup: Beyond
       Empirical Risk Minimization", ICLR 2018.
    .. [2] Zhang, L., Deng, Z., Kawaguchi, K., Ghorbani, A. and Zou, J. "How Does
       Mixup Help With Robustness and Generalization?", ICLR 2021.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skmixup.neural_network import MixupMLPClassifier
    >>> X, y = make_classification(n_samples=100, n_features=5, random_state=0)
    >>> clf = MixupMLPClassifier(hidden_layer_sizes=(16,), random_state=0).fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)
    >>> clf.predict_proba(X[:3]).dtype
    dtype('float64')
    """

    _parameter_constraints = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        **MIXUP_LAW_CONSTRAINTS,
        "mixup_prob": [Interval(Real, 0, 1, closed="both")],
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
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "device": [str],
        "callbacks": [list, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        hidden_layer_sizes=(100,),
        activation="relu",
        mixup_alpha=1.0,
        mixup_beta=None,
        mixup_prob=1.0,
        alpha=1e-4,
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=200,
        shuffle=True,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        class_weight=None,
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
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.class_weight = class_weight
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
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: each anchor's Mixup loss is weighted, and
            partners are drawn in proportion to their weight (see Notes).

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
            self, X, y, accept_sparse="csr", dtype=[np.float64, np.float32]
        )
        check_classification_targets(y)
        classes, y_enc = np.unique(y, return_inverse=True)
        X32 = _to_float32(X)
        sample_weight = class_sample_weight(self.class_weight, y, sample_weight)
        seed = int(check_random_state(self.random_state).randint(MAX_SEED))
        device = _resolve_device(self.device)
        net = self._build_net(X.shape, len(classes), device, seed, incremental=False)
        epochs = dict(net.callbacks)["sklearn_callbacks"]  # from _build_net
        epochs.task_ = begin_fit(
            self, X, y, max_subtasks=self.max_iter, subtask_name="epoch"
        )
        # The model the callbacks score after each epoch (ScoringMonitor).
        epochs.attributes_ = {"classes_": classes, "net_": net, "device_": device}
        try:
            net.fit(X32, y_enc.astype(np.int64), sample_weight=sample_weight)
        finally:
            epochs.task_, task = None, epochs.task_
            epochs.attributes_ = None
        _raise_if_interrupted(net)
        self.classes_, self.net_, self.device_ = classes, net, device
        task.end()
        self._record_fit()
        self._warn_if_not_converged()
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
                stacklevel=4,  # past this helper and sklearn's _fit_context wrapper
            )

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Run one epoch of Mixup training on ``X, y``, without re-initialising.

        Early stopping is not used by ``partial_fit`` (as in ``MLPClassifier``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels.
        classes : array-like of shape (n_classes,), default=None
            All class labels; required on the first call.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights, as in ``fit``.

        Returns
        -------
        self : object
            The fitted estimator.

        Raises
        ------
        KeyboardInterrupt
            On Ctrl-C; an interrupted first call leaves the estimator unfitted,
            a later one leaves the epoch's updates so far and ``n_iter_``
            unchanged.
        """
        first = not hasattr(self, "net_")
        X, y = validate_data(
            self, X, y, accept_sparse="csr", dtype=[np.float64, np.float32], reset=first
        )
        check_classification_targets(y)
        if first:
            if classes is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit."
                )
            all_classes = np.unique(classes)
            device = _resolve_device(self.device)
            seed = int(check_random_state(self.random_state).randint(MAX_SEED))
            net = self._build_net(
                X.shape, len(all_classes), device, seed, incremental=True
            )
        else:
            all_classes, net, device = self.classes_, self.net_, self.device_
            if classes is not None and not np.array_equal(
                np.unique(classes), all_classes
            ):
                raise ValueError(
                    f"classes={classes!r} is not the same as on the first call to "
                    f"partial_fit, which was {all_classes!r}."
                )
            self._disable_early_stopping()
        y_enc = label_indices(all_classes, y).astype(np.int64)
        sample_weight = class_sample_weight(self.class_weight, y, sample_weight)
        task = begin_fit(self, X, y, max_subtasks=0, task_name="partial_fit")
        net.partial_fit(_to_float32(X), y_enc, epochs=1, sample_weight=sample_weight)
        _raise_if_interrupted(net)
        self.classes_, self.net_, self.device_ = all_classes, net, device
        task.end({})  # scikit-learn callbacks see the updated model
        self._record_fit()
        return self

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
        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, accept_sparse="csr", dtype=[np.float64, np.float32]
        )
        logits = self.net_.forward(_to_float32(X), training=False)
        return logits.numpy().astype(np.float64)

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
                len(self.classes_),
                "cpu",
                portable["seed"],
                portable["incremental"],
            )
            net.initialize()
            load_fitted_state(net, portable["fitted"])
            self.net_, self.device_ = net, "cpu"
            return
        super().__setstate__(state)

    # ------------------------------------------------------------- helpers
    # The skorch net class that trains the module; a subclass may swap it for
    # a net with another training step.
    _net_class = MixupNeuralNetClassifier

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

    def _build_net(self, shape, n_classes, device, seed, incremental):
        """The skorch net (``_net_class``) with the stopping rule, optimizer and
        seeds of this estimator; its module comes from ``_build_module``."""
        n_samples, n_features = shape
        batch_size = 200 if self.batch_size == "auto" else self.batch_size
        batch_size = int(min(batch_size, n_samples))
        callbacks = copy.deepcopy(list(self.callbacks or []))
        train_split = None
        if self.early_stopping and not incremental:
            train_split = ValidSplit(
                self.validation_fraction, stratified=True, random_state=seed
            )
            monitor = {
                "monitor": "valid_acc",
                "lower_is_better": False,
                "load_best": True,
            }
        else:
            monitor = {"monitor": "train_loss", "lower_is_better": True}
        stopper = EarlyStopping(
            patience=self.n_iter_no_change,
            threshold=self.tol,
            threshold_mode="abs",
            sink=print if self.verbose else noop,
            **monitor,
        )
        # scikit-learn's callbacks see every epoch, also the one on which the
        # stopping rule ends training (it raises in its own on_epoch_end)
        callbacks.append(("sklearn_callbacks", EpochCallback()))
        callbacks.append(("early_stopping", stopper))
        return self._net_class(
            self._build_module(n_features, n_classes),
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
            **self._net_params(),
        )

    def _net_params(self):
        """Parameters of ``_net_class`` that are specific to the estimator."""
        return {
            "mixup_alpha": self.mixup_alpha,
            "mixup_beta": self.mixup_beta,
            "mixup_prob": self.mixup_prob,
        }

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
        if self.net_.train_split is not None and "valid_acc" in history[-1]:
            self.validation_scores_ = [float(v) for v in history[:, "valid_acc"]]
            self.best_validation_score_ = max(self.validation_scores_)


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
