"""MixupRegularizedMLPClassifier: an MLP trained on the explicit Mixup penalty."""

from functools import partial
from numbers import Integral

import torch
from scipy import sparse
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from skorch.dataset import unpack_data
from skorch.utils import to_tensor

from skmixup._mixing import mixing_moments
from skmixup.neural_network._base import (
    BASE_CONSTRAINTS,
    CLASS_WEIGHT_CONSTRAINT,
    _BaseMixupMLPClassifier,
    fill_parameter_docs,
)
from skmixup.neural_network._data import detach_sample_weight
from skmixup.neural_network._net import _BaseMixupNetClassifier
from skmixup.neural_network._penalty import (
    is_piecewise_linear,
    mixup_terms,
    partner_moments,
    sparse_partner_moments,
)

__all__ = ["MixupRegularizedMLPClassifier"]

TERMS = ("R1+R2+R3", "R1+R2", "R2")
# With n_partners="auto", all partners (exact, rank(Sigma) + 1 directional
# derivatives per sample) up to this many features, else one sampled partner.
_AUTO_EXACT_MAX_FEATURES = 4

_PENALTY_CONSTRAINTS = {
    "terms": [StrOptions(set(TERMS))],
    "n_partners": [
        StrOptions({"auto", "all"}),
        Interval(Integral, 1, None, closed="left"),
    ],
}


def resolve_n_partners(n_partners, n_features):
    """``"all"`` or an int: what ``n_partners="auto"`` means for ``n_features``."""
    if n_partners == "auto":
        return "all" if n_features <= _AUTO_EXACT_MAX_FEATURES else 1
    return n_partners


class _MixupPenaltyNet(_BaseMixupNetClassifier):
    """The skorch net of :class:`MixupRegularizedMLPClassifier` (a sibling of
    :class:`MixupNeuralNetClassifier`: both derive from the base net).

    Trains on ``mean_i [CE_i + R1_i + R2_i + R3_i]`` (the chosen ``terms``) over
    each batch, with partners from the whole training set (the data given to
    ``fit`` or ``partial_fit``, after the validation split): through its mean
    and covariance (``n_partners="all"``) or ``n_partners`` seeded draws per
    sample and step. Inputs are never mixed.
    """

    def __init__(self, module, *args, terms="R1+R2+R3", n_partners="auto", **kwargs):
        super().__init__(module, *args, **kwargs)
        self.terms = terms
        self.n_partners = n_partners

    def _net_constraints(self):
        return {**super()._net_constraints(), **_PENALTY_CONSTRAINTS}

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """skorch's loop; the partner statistics live only while it runs."""
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        finally:
            self.__dict__.pop("_partners_", None)

    def get_iterator(self, dataset, training=False):
        """The parent's iterator; for training, also the partners it serves."""
        iterator = super().get_iterator(dataset, training=training)
        if training:
            X, _ = detach_sample_weight(getattr(iterator, "X_", None))
            if X is None:
                raise TypeError(
                    "The Mixup penalty needs in-memory array inputs (partners are "
                    "drawn from the training inputs); got a dataset that "
                    f"{type(iterator).__name__} cannot hold as one tensor."
                )
            n_partners = resolve_n_partners(self.n_partners, X.shape[1])
            if sparse.issparse(X):  # kept sparse: moments, or rows drawn per batch
                dtype = self._input_dtype() or torch.float32
                self._partners_ = (
                    sparse_partner_moments(X, dtype, self.device)
                    if n_partners == "all"
                    else X
                )
            else:
                self._partners_ = partner_moments(X) if n_partners == "all" else X
        return iterator

    def train_step_single(self, batch, **fit_params):
        """Back-propagate the cross-entropy plus the chosen Mixup terms."""
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        Xi = self._to_module_input(Xi)
        yi = to_tensor(yi, device=self.device)
        alpha, beta = self._mixup_law_
        m1, m2 = mixing_moments(alpha, beta)
        use_r3 = "R3" in self.terms and not is_piecewise_linear(self.module_)
        module = self.module_
        if fit_params:
            module = partial(self.module_, **fit_params)
        terms = mixup_terms(
            module,
            Xi,
            yi,
            m1=m1,
            m2=m2,
            partners=self._batch_partners(Xi),
            order=2 if use_r3 else 1,
        )
        loss = terms.standard + terms.R2
        if "R1" in self.terms:
            loss = loss + terms.R1
        if use_r3:
            loss = loss + terms.R3
        weights = getattr(self, "_batch_weights", None)  # class weights
        if weights is not None:
            loss = loss * to_tensor(weights, device=loss.device).to(loss.dtype)
        loss = loss.mean()
        loss.backward()
        return {"loss": loss, "y_pred": terms.logits}

    def _batch_partners(self, Xi):
        partners = self._partners_
        is_sparse = sparse.issparse(partners)
        if not (is_sparse or isinstance(partners, torch.Tensor)):
            return partners
        n_partners = resolve_n_partners(self.n_partners, Xi.shape[1])
        self._ensure_generators()
        idx = torch.randint(
            partners.shape[0],
            (len(Xi), n_partners),
            generator=self._mixup_generator_,
        )
        if is_sparse:  # the drawn rows only, made dense
            rows = partners[idx.numpy().ravel()].toarray()
            rows = torch.as_tensor(rows, device=Xi.device, dtype=Xi.dtype)
            return rows.reshape(len(Xi), n_partners, -1)
        return partners[idx.to(partners.device)]


@fill_parameter_docs
class MixupRegularizedMLPClassifier(_BaseMixupMLPClassifier):
    """Multilayer perceptron trained on the second-order Mixup penalty, on PyTorch.

    Instead of mixing inputs, the network minimises the standard cross-entropy plus
    the explicit terms of the second-order expansion of the Mixup loss (Zhang et
    al., 2021, Lemma 3.1 and Eq. (3)), plus weight decay:

    .. math::

        \\frac{1}{n} \\sum_i \\mathrm{CE}(f(x_i), y_i) + R_1 + R_2 + R_3
        + \\frac{\\alpha}{2B} \\|W\\|^2,

    .. math::

        R_1 = \\frac{m_1}{n} \\sum_i e_i^\\top J_i\\, \\mathbb{E}_r[\\Delta_i],
        \\quad
        R_2 = \\frac{m_2}{2n} \\sum_i \\mathbb{E}_r[(J_i \\Delta_i)^\\top H_i
        (J_i \\Delta_i)],
        \\quad
        R_3 = \\frac{m_2}{2n} \\sum_i \\sum_k e_{ik}\\,
        \\mathbb{E}_r[\\Delta_i^\\top \\nabla^2_x f_k(x_i) \\Delta_i],

    with ``Delta_i = r - x_i`` for a training input ``r`` (``x_i`` included),
    ``J_i`` the Jacobian of the logits with respect to the input at ``x_i``,
    ``e_i = p_i - y_i``, ``H_i = diag(p_i) - p_i p_i^T`` and
    ``m1 = E[1 - lambda]``, ``m2 = E[(1 - lambda)^2]`` under the law ``D~`` of
    Lemma 3.1 (``lambda ~ Beta(mixup_alpha, mixup_beta)``). The derivatives in
    ``x`` are forward-mode directional derivatives, so one training step costs a
    few forward passes per partner direction. ``R3`` vanishes for ReLU (and
    identity) networks, which are piecewise linear in ``x``; it is then skipped.

    Everything else (the shared parameters, fitted attributes, early stopping,
    pickling, devices) is as in :class:`MixupMLPClassifier`: both derive from
    one base.

    Read more in the User Guide.

    Parameters
    ----------
    %(network_parameters)s
    mixup_alpha : float, default=1.0
        First parameter ``a`` of the Beta law of the mixing weight, which sets
        ``m1`` and ``m2`` (not the L2 strength, which is ``alpha``).
    mixup_beta : float, default=None
        Second parameter ``b``; ``None`` means ``b = a``.
    terms : {"R1+R2+R3", "R1+R2", "R2"}, default="R1+R2+R3"
        Penalty terms added to the cross-entropy. ``R1`` rewards larger logits on
        correctly fitted samples, so without weight decay it can push the weights
        up; ``"R2"`` keeps only the data-adaptive gradient penalty.
    n_partners : int, "all" or "auto", default="auto"
        ``"all"``: exact expectation over every training input, through the
        training mean and covariance (``rank(Sigma) + 1`` directional derivatives
        per sample and step). An int: that many partners drawn per sample and
        step (seeded, an unbiased estimate, as Mixup draws them). ``"auto"``:
        ``"all"`` up to 4 features, else 1.
    %(training_parameters)s
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified) and stop when the
        validation accuracy has not improved by ``tol`` for ``n_iter_no_change``
        epochs; the best weights are restored. When False, training stops when
        the training objective has not improved by ``tol`` for
        ``n_iter_no_change`` epochs.
    validation_fraction : float, default=0.1
        Held-out fraction for early stopping (partners come from the rest).
    %(stopping_parameters)s
    %(class_weight_parameter)s
    %(device_parameters)s
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling, the validation split and the partner
        draws. An int gives identical weights on CPU at every fit.
    %(verbose_parameter)s

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    net_ : skorch.NeuralNetClassifier
        The fitted skorch net (it trains on the penalty); its module returns
        logits.
    loss_curve_ : list of float
        Mean training objective (cross-entropy plus the chosen terms, without the
        L2 term) per epoch.
    %(fitted_attributes)s

    See Also
    --------
    MixupMLPClassifier : The same network trained with Mixup itself.
    skmixup.linear_model.MixupRegularizedLogisticRegression : The penalty for
        linear models.
    skmixup.theory.approximate_mixup_loss : The terms of a fitted network.

    Notes
    -----
    The penalty is the second-order part of the Mixup loss, not the Mixup loss:
    it is accurate when the logits change little along mixing segments, and its
    minimiser differs from Mixup's (Zhang et al. 2021 make no claim that it
    trains better). ``partial_fit`` draws partners from the chunk it is given.
    The network must treat rows independently (it does; no batch statistics).

    References
    ----------
    .. [1] Zhang, L., Deng, Z., Kawaguchi, K., Ghorbani, A. and Zou, J. "How Does
       Mixup Help With Robustness and Generalization?", ICLR 2021.
    .. [2] Zhang, H., Cisse, M., Dauphin, Y. N. and Lopez-Paz, D. "mixup: Beyond
       Empirical Risk Minimization", ICLR 2018.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skmixup.neural_network import MixupRegularizedMLPClassifier
    >>> X, y = make_classification(n_samples=100, n_features=5, random_state=0)
    >>> clf = MixupRegularizedMLPClassifier(
    ...     hidden_layer_sizes=(16,), tol=1e-2, random_state=0
    ... )
    >>> clf = clf.fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)
    >>> len(clf.loss_curve_) == clf.n_iter_
    True
    """

    _parameter_constraints = {
        **BASE_CONSTRAINTS,
        **CLASS_WEIGHT_CONSTRAINT,
        **_PENALTY_CONSTRAINTS,
    }
    _net_class = _MixupPenaltyNet

    def __init__(
        self,
        *,
        hidden_layer_sizes=(100,),
        activation="relu",
        mixup_alpha=1.0,
        mixup_beta=None,
        terms="R1+R2+R3",
        n_partners="auto",
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
        self.terms = terms
        self.n_partners = n_partners
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
    def fit(self, X, y):
        """Fit the network on the penalised loss, from a fresh initialisation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (cast to float32 for PyTorch); the partners of the
            penalty.
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        # The penalty takes no sample weights (yet): the signature has none, so
        # that a weight argument is refused rather than ignored.
        return self._fit(X, y)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None):
        """Run one epoch on the penalised loss, partners from this chunk.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; its mean and covariance (or its rows) are the partners.
        y : array-like of shape (n_samples,)
            Class labels.
        classes : array-like of shape (n_classes,), default=None
            All class labels; required on the first call.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._partial_fit(X, y, classes=classes)

    def _net_params(self):
        return {
            "mixup_alpha": self.mixup_alpha,
            "mixup_beta": self.mixup_beta,
            "terms": self.terms,
            "n_partners": self.n_partners,
        }
