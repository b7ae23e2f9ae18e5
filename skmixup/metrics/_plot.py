"""Robust accuracy against the attack radius, in scikit-learn's Display style."""

import numpy as np
from sklearn.metrics import accuracy_score

from skmixup.metrics._attacks import (
    _ascent_direction,
    _check_clip,
    _check_feature_scale,
    _check_norm,
    _clip,
)
from skmixup.metrics._gradients import (
    _check_gradient,
    _check_real,
    _input_wrapper,
    _loss_gradient,
    _validate_inputs,
)
from skmixup.metrics._scorer import _attacked, _resolve_attack


class RobustnessCurveDisplay:
    """Robustness curve: robust accuracy as a function of the attack radius.

    Build it with :meth:`from_estimator`; the attributes hold the numbers, and
    :meth:`plot` draws them (matplotlib is imported only then; install it with the
    ``skmixup[plot]`` extra). The accuracy is over all samples, as in
    :func:`robust_accuracy_score`, so the curve starts at the clean accuracy at
    ``eps=0``.

    Parameters
    ----------
    eps : array-like of shape (n_points,)
        Attack radii.
    accuracy : array-like of shape (n_points,)
        Robust accuracy at each radius.
    estimator_name : str, default=None
        Name used in the legend; None for no legend.
    attack : str, default=None
        Name of the attack, shown in the x label.

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes with the curve.
    figure_ : matplotlib Figure
        Figure containing the curve.
    line_ : matplotlib Line2D
        The curve.

    See Also
    --------
    robust_accuracy_score : One point of the curve.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmixup.metrics import RobustnessCurveDisplay
    >>> X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    >>> clf = LogisticRegression().fit(X, y)
    >>> display = RobustnessCurveDisplay.from_estimator(
    ...     clf, X, y, eps=[0.0, 0.1, 0.2, 0.5])
    >>> display.accuracy.shape
    (4,)
    >>> bool(display.accuracy[0] == clf.score(X, y))
    True
    >>> plt.close(display.figure_)
    """

    def __init__(self, *, eps, accuracy, estimator_name=None, attack=None):
        self.eps = np.asarray(eps, dtype=np.float64)
        self.accuracy = np.asarray(accuracy, dtype=np.float64)
        self.estimator_name = estimator_name
        self.attack = attack

    def plot(self, ax=None, *, name=None, **kwargs):
        """Plot the curve.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None creates a new figure.
        name : str, default=None
            Legend label; None uses ``estimator_name``.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot`.

        Returns
        -------
        display : RobustnessCurveDisplay
            ``self``, with ``ax_``, ``figure_`` and ``line_`` set.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        name = self.estimator_name if name is None else name
        line_kwargs = {"marker": "o"}
        if name is not None:
            line_kwargs["label"] = name
        line_kwargs.update(kwargs)
        (self.line_,) = ax.plot(self.eps, self.accuracy, **line_kwargs)
        attack = "" if self.attack is None else f" ({self.attack})"
        ax.set_xlabel(f"eps{attack}")
        ax.set_ylabel("Robust accuracy")
        if "label" in line_kwargs:
            ax.legend(loc="lower left")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        y,
        *,
        eps=(0.0, 0.05, 0.1, 0.2, 0.3),
        attack="fgsm",
        sample_weight=None,
        attack_params=None,
        ax=None,
        name=None,
        **kwargs,
    ):
        """Compute and plot the robust accuracy of a fitted classifier.

        For ``attack="fgsm"`` the gradient does not depend on ``eps``, so it is
        computed once for the whole curve.

        Parameters
        ----------
        estimator : fitted classifier
            The model to attack.
        X : array-like of shape (n_samples, n_features)
            Clean samples.
        y : array-like of shape (n_samples,)
            True labels.
        eps : array-like of float, default=(0.0, 0.05, 0.1, 0.2, 0.3)
            Attack radii, each ``>= 0``.
        attack : {"fgsm", "pgd", "exact"} or callable, default="fgsm"
            The attack; see :func:`robust_accuracy_score`.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights of the accuracy.
        attack_params : dict, default=None
            Keyword arguments of the attack (``norm``, ``clip``, ``feature_scale``,
            ...).
        ax : matplotlib Axes, default=None
            Axes to draw on; None creates a new figure.
        name : str, default=None
            Legend label; None uses the estimator's class name.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot`.

        Returns
        -------
        display : RobustnessCurveDisplay
            The display, plotted.
        """
        eps = np.atleast_1d(np.asarray(eps, dtype=np.float64))
        for value in eps:
            _check_real(float(value), "eps")
        attack_params = {} if attack_params is None else dict(attack_params)
        _resolve_attack(attack, attack_params)
        if attack == "fgsm":
            attacked = _fgsm_path(estimator, X, y, eps, **attack_params)
        else:
            attacked = (
                _attacked(estimator, X, y, attack, value, attack_params)
                for value in eps
            )
        accuracy = [
            accuracy_score(y, estimator.predict(X_adv), sample_weight=sample_weight)
            for X_adv in attacked
        ]
        name = type(estimator).__name__ if name is None else name
        attack_name = getattr(attack, "__name__", attack)
        display = cls(
            eps=eps, accuracy=accuracy, estimator_name=name, attack=attack_name
        )
        return display.plot(ax=ax, **kwargs)


def _fgsm_path(
    estimator,
    X,
    y,
    eps_values,
    *,
    norm="inf",
    clip=None,
    feature_scale=None,
    gradient="auto",
):
    """FGSM at several radii from a single gradient (a generator of X_adv)."""
    norm = _check_norm(norm)
    gradient = _check_gradient(gradient)
    wrap = _input_wrapper(X)
    X, y_idx, _, dtype = _validate_inputs(estimator, X, y)
    scale = _check_feature_scale(feature_scale, X.shape[1])
    low, high = _check_clip(clip, X.shape[1])
    G, _ = _loss_gradient(estimator, X, np.asarray(y), y_idx, wrap, gradient)
    D = _ascent_direction(G, norm, scale)
    for eps in eps_values:
        yield wrap(_clip(X + eps * D, low, high).astype(dtype, copy=False))
