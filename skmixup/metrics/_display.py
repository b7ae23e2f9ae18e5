"""Robust accuracy against the attack radius, in scikit-learn's Display style."""

import numpy as np
from sklearn.base import is_regressor
from sklearn.metrics import accuracy_score, mean_squared_error

from skmixup.metrics._attacks import fgsm_path
from skmixup.metrics._scorer import attacked, resolve_attack
from skmixup.metrics._validation import attack_input, check_norm, check_real, unit_name
from skmixup.utils._plot import pyplot


class RobustnessCurveDisplay:
    """Robustness curve: robust accuracy (or a regressor's error) against the radius.

    Build it with :meth:`from_estimator`; the attributes hold the numbers, and
    :meth:`plot` draws them (matplotlib is imported only then; install it with the
    ``skmixup[plot]`` extra). The accuracy is over all samples, as in
    :func:`robust_accuracy_score`, so the curve starts at the clean accuracy at
    ``eps=0``.

    Parameters
    ----------
    eps : array-like of shape (n_points,)
        Attack radii.
    accuracy : array-like of shape (n_points,), default=None
        Robust accuracy at each radius (classifiers).
    estimator_name : str, default=None
        Name used in the legend; None for no legend.
    attack : str, default=None
        Name of the attack, shown in the x label.
    unit : str, default=None
        Unit of ``eps`` shown on the x axis, e.g. ``"standard deviations"``, or
        ``"custom units (feature_scale)"`` for a ``feature_scale`` array or
        mapping.
    certified : array-like of shape (n_points,), default=None
        Certified accuracy at each radius (:func:`certified_accuracy_score`), a
        lower bound of the robust accuracy; plotted below the attack's curve,
        which is an upper bound, with the band between them shaded: the true
        robust accuracy lies inside the band.
    error : array-like of shape (n_points,), default=None
        Mean squared error on the attacked samples at each radius (regressors);
        give ``accuracy`` or ``error``.

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes with the curve.
    figure_ : matplotlib Figure
        Figure containing the curve.
    line_ : matplotlib Line2D
        The curve.
    certified_line_ : matplotlib Line2D or None
        The certified curve (None without ``certified``).
    band_ : matplotlib PolyCollection or None
        The shaded band between the two curves.

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
    >>> display.ax_.get_xlabel()
    'eps (fgsm), in standard deviations'
    >>> plt.close(display.figure_)
    """

    def __init__(
        self,
        *,
        eps,
        accuracy=None,
        estimator_name=None,
        attack=None,
        unit=None,
        certified=None,
        error=None,
    ):
        if (accuracy is None) == (error is None):
            raise ValueError(
                "Pass accuracy (classifiers) or error (regressors), exactly one."
            )
        self.eps = np.asarray(eps, dtype=np.float64)
        self.accuracy = None if accuracy is None else np.asarray(accuracy, float)
        self.error = None if error is None else np.asarray(error, dtype=np.float64)
        self.estimator_name = estimator_name
        self.attack = attack
        self.unit = unit
        self.certified = (
            None if certified is None else np.asarray(certified, dtype=np.float64)
        )

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
        plt = pyplot()
        if ax is None:
            _, ax = plt.subplots()
        name = self.estimator_name if name is None else name
        line_kwargs = {"marker": "o"}
        if name is not None:
            line_kwargs["label"] = name
        line_kwargs.update(kwargs)
        values = self.accuracy if self.error is None else self.error
        (self.line_,) = ax.plot(self.eps, values, **line_kwargs)
        self.certified_line_ = self.band_ = None
        if self.certified is not None:
            color = self.line_.get_color()
            certified_label = None if name is None else f"{name} (certified)"
            (self.certified_line_,) = ax.plot(
                self.eps,
                self.certified,
                linestyle="--",
                marker="v",
                color=color,
                label=certified_label,
            )
            self.band_ = ax.fill_between(
                self.eps, self.certified, self.accuracy, color=color, alpha=0.2
            )
        label = "eps" if self.attack is None else f"eps ({self.attack})"
        if self.unit is not None:
            label = f"{label}, in {self.unit}"
        ax.set_xlabel(label)
        ax.set_ylabel("Robust accuracy" if self.error is None else "Mean squared error")
        if "label" in line_kwargs:
            ax.legend(loc="lower left" if self.error is None else "upper left")
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
        certified=None,
        certify_params=None,
        ax=None,
        name=None,
        **kwargs,
    ):
        """Compute and plot the robust accuracy of a classifier (error of a regressor).

        For a regressor the curve is the mean squared error on the attacked
        samples (``error``), which the attacks increase.

        For ``attack="fgsm"`` the gradient does not depend on ``eps``, so it is
        computed once for the whole curve.

        Parameters
        ----------
        estimator : fitted classifier or regressor
            The model to attack.
        X : array-like or DataFrame of shape (n_samples, n_features)
            Clean samples.
        y : array-like of shape (n_samples,)
            True labels.
        eps : array-like of float, default=(0.0, 0.05, 0.1, 0.2, 0.3)
            Attack radii, each ``>= 0``, in units of ``feature_scale`` (standard
            deviations by default).
        attack : {"fgsm", "pgd", "square", "auto", "exact"} or callable, \
                default="fgsm"
            The attack; see :func:`robust_accuracy_score`.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights of the accuracy.
        attack_params : dict, default=None
            Keyword arguments of the attack (``norm``, ``clip``, ``feature_scale``,
            ``mutable``, ...).
        certified : {"ibp", "crown", "milp"}, default=None
            Also compute the certified accuracy with this method of
            :func:`certify` (same ``norm``, ``clip``, ``feature_scale`` and
            ``mutable`` as the attack) and draw it below the attack's curve.
        certify_params : dict, default=None
            Other keyword arguments of :func:`certify` (``time_limit``,
            ``random_state``).
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
        pyplot()  # fail before any attack when matplotlib is missing
        eps = np.atleast_1d(np.asarray(eps, dtype=np.float64))
        for value in eps:
            check_real(float(value), "eps")
        attack_params = {} if attack_params is None else dict(attack_params)
        resolve_attack(attack, attack_params)
        if attack == "fgsm":
            params = dict(attack_params)
            norm = check_norm(params.pop("norm", "inf"))
            gradient = params.pop("gradient", "auto")
            data = attack_input(estimator, X, y, **params)
            attacked_inputs = fgsm_path(estimator, data, eps, norm, gradient)
        else:
            attacked_inputs = (
                attacked(estimator, X, y, attack, value, attack_params) for value in eps
            )
        metric = mean_squared_error if is_regressor(estimator) else accuracy_score
        values = [
            metric(y, estimator.predict(X_adv), sample_weight=sample_weight)
            for X_adv in attacked_inputs
        ]
        key = "error" if is_regressor(estimator) else "accuracy"
        certified_accuracy = None
        if certified is not None:
            from skmixup.metrics._certify import certify

            shared = ("norm", "clip", "feature_scale", "mutable")
            params = {k: v for k, v in attack_params.items() if k in shared}
            params.update(certify_params or {})
            certified_accuracy = [
                certify(
                    estimator, X, y, eps=value, method=certified, **params
                ).certified_accuracy(sample_weight)
                for value in eps
            ]
        name = type(estimator).__name__ if name is None else name
        attack_name = getattr(attack, "__name__", attack)
        unit = None
        if not callable(attack) or "feature_scale" in attack_params:
            unit = unit_name(attack_params.get("feature_scale", "std"))
        display = cls(
            eps=eps,
            **{key: values},
            estimator_name=name,
            attack=attack_name,
            unit=unit,
            certified=certified_accuracy,
        )
        return display.plot(ax=ax, **kwargs)
