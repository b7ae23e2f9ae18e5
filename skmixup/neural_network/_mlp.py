"""MixupMLPClassifier: a scikit-learn MLP classifier trained with Mixup."""

from numbers import Real

from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval

from skmixup.neural_network._base import (
    BASE_CONSTRAINTS,
    CLASS_WEIGHT_CONSTRAINT,
    _BaseMixupMLPClassifier,
    fill_parameter_docs,
)
from skmixup.neural_network._net import MixupNeuralNetClassifier

__all__ = ["MixupMLPClassifier"]


@fill_parameter_docs
class MixupMLPClassifier(_BaseMixupMLPClassifier):
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
    %(network_parameters)s
    mixup_alpha : float, default=1.0
        First parameter ``a`` of the Beta law of the mixing weight (not the L2
        strength, which is ``alpha``).
    mixup_beta : float, default=None
        Second parameter ``b``; ``None`` means ``b = a``.
    mixup_prob : float, default=1.0
        Probability that a minibatch is mixed; ``0`` is plain training.
    %(training_parameters)s
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified) and stop when
        the validation accuracy has not improved by ``tol`` for
        ``n_iter_no_change`` epochs; the best weights are restored. When False,
        training stops when the training (Mixup) loss has not improved by ``tol``
        for ``n_iter_no_change`` epochs.
    validation_fraction : float, default=0.1
        Held-out fraction for early stopping.
    %(stopping_parameters)s
    %(class_weight_parameter)s
    %(device_parameters)s
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling, the validation split and the Mixup draws.
        An int gives identical weights on CPU at every fit; PyTorch's global
        generator is left as it was. For reproducible cross-validation pass an
        int (with a RandomState instance, clones share and advance it).
    %(verbose_parameter)s

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    net_ : MixupNeuralNetClassifier
        The fitted skorch net; its module returns logits.
    loss_curve_ : list of float
        Mean training (Mixup) loss per epoch, without the L2 term.
    %(fitted_attributes)s

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

    :class:`MixupRegularizedMLPClassifier` is a sibling: both derive from one
    private base (``skmixup/neural_network/_base.py``, whose docstring says how
    a new network estimator plugs in). Training on several processes or GPUs
    with Accelerate is a subclass whose ``_net_class`` is an Accelerate net and
    whose ``_net_params`` adds the accelerator: see :ref:`scaling_networks`.

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
        **BASE_CONSTRAINTS,
        **CLASS_WEIGHT_CONSTRAINT,
        "mixup_prob": [Interval(Real, 0, 1, closed="both")],
    }
    # The skorch net that trains the module.
    _net_class = MixupNeuralNetClassifier

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
        return self._fit(X, y, sample_weight)

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
        return self._partial_fit(X, y, classes=classes, sample_weight=sample_weight)

    def _net_params(self):
        return {**super()._net_params(), "mixup_prob": self.mixup_prob}
