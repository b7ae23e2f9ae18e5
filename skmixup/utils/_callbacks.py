"""scikit-learn's callback API (``sklearn.callback``, scikit-learn >= 1.9) for
skmixup's estimators, in one place.

* :class:`CallbackSupportMixin` gives an estimator ``set_callbacks`` where the
  installed scikit-learn has the API, and nothing on older versions.
* :func:`begin_fit` reports one ``fit`` (or ``partial_fit``) to the callbacks: the
  root task, one subtask per iteration (an L-BFGS iteration, an epoch) with
  :meth:`FitTask.step`, then :meth:`FitTask.end`. It does nothing when the
  estimator has no callbacks (set directly or propagated by a ``Pipeline`` or a
  search) or when scikit-learn has no callback API, so estimators call it
  unconditionally.
* :func:`report_epoch` reports the epoch that a skorch net's ``on_epoch_end``
  notification ends (to the one task of the fit: the net's own, or that of the
  estimator that owns the net; this module does not import skorch).
  A stop request ends the epoch loop the way skorch's callbacks do, by raising
  :class:`CallbackStop` (a ``KeyboardInterrupt`` that skorch's ``partial_fit``
  catches).
* :class:`SkorchCallbackSupportMixin` is :class:`CallbackSupportMixin` for skorch
  nets, whose ``get_params`` would otherwise list the callback state (skorch takes
  every attribute not ending in ``_`` for a parameter), and
  :func:`callback_management` tears the callbacks down after a ``fit`` that
  scikit-learn's ``_fit_context`` does not wrap.

``ProgressBar`` then shows the iterations or epochs, and ``ScoringMonitor`` scores
the model after each of them (``step`` receives the attributes that make a copy of
the estimator predict as at that point).
"""

import contextlib

try:  # scikit-learn >= 1.9
    from sklearn.callback import CallbackSupportMixin as _SklearnCallbackSupport
    from sklearn.callback._callback_support import callback_management_context
except ImportError:  # pragma: no cover - older scikit-learn: no callbacks

    class _SklearnCallbackSupport:
        pass

    callback_management_context = None

# What scikit-learn's callback API stores on an estimator: the callbacks
# (set_callbacks), and during a fit its context and the meta-estimator's.
FIT_IN_PROGRESS = (
    "_parent_callback_ctx",
    "_callback_fit_ctx",
    "_skl_callbacks_to_teardown",
)
CALLBACK_STATE = frozenset({"_skl_callbacks", *FIT_IN_PROGRESS})


class CallbackSupportMixin(_SklearnCallbackSupport):
    """``set_callbacks`` from scikit-learn's ``CallbackSupportMixin`` (>= 1.9).

    On older scikit-learn the mixin adds nothing, and :func:`begin_fit` reports
    nothing.
    """


class SkorchCallbackSupportMixin(CallbackSupportMixin):
    """:class:`CallbackSupportMixin` for a skorch net (put it before the net's class).

    skorch's ``get_params`` lists every attribute that does not end in ``_``; the
    callback state is not a parameter, so that ``clone``, ``set_params`` and skops
    (which saves the parameters) never see it.
    """

    def _get_param_names(self):
        return [k for k in super()._get_param_names() if k not in CALLBACK_STATE]


def callback_management(estimator):
    """Context manager that tears down ``estimator``'s callbacks after a fit.

    scikit-learn's ``_fit_context`` (the decorator of ``fit``) does it for the
    estimators it wraps; a skorch net's ``fit`` uses this instead. Nothing happens
    on scikit-learn without the callback API.
    """
    if callback_management_context is None:  # pragma: no cover - sklearn < 1.9
        return contextlib.nullcontext()
    return callback_management_context(estimator)


class FitTask:
    """The callback context of one fit; see :func:`begin_fit`."""

    def __init__(self, estimator, X, y, *, max_subtasks, task_name, subtask_name):
        self._estimator = estimator
        self._X, self._y = X, y
        self._subtask_name = subtask_name
        self._last = None
        self._max_subtasks = max_subtasks
        self._n_steps = 0
        self._ctx = None
        callbacks = getattr(estimator, "_skl_callbacks", None)
        parent = getattr(estimator, "_parent_callback_ctx", None)
        if hasattr(estimator, "_init_callback_context") and (callbacks or parent):
            self._ctx = estimator._init_callback_context(
                task_name=task_name, max_subtasks=max_subtasks
            )
            self._ctx.call_on_fit_task_begin(estimator=estimator, X=X, y=self._y)

    @property
    def active(self):
        """Whether callbacks receive this fit's events."""
        return self._ctx is not None

    def step(self, attributes=None):
        """Report one finished iteration; return True if a callback asks to stop.

        ``attributes`` is a dict (or a callable returning one, evaluated only if a
        callback needs it) of fitted attributes that make a copy of the estimator
        predict as after this iteration.
        """
        if self._ctx is None or self._n_steps >= self._max_subtasks:
            return False
        self._n_steps += 1
        sub = self._ctx.subcontext(task_name=self._subtask_name)
        kwargs = {"estimator": self._estimator, "X": self._X, "y": self._y}
        sub.call_on_fit_task_begin(**kwargs)
        self._last = attributes
        stop = sub.call_on_fit_task_end(**kwargs, reconstruction_attributes=attributes)
        return bool(stop)

    def end(self, attributes=None):
        """Report the end of the fit.

        The model passed to the callbacks is made from ``attributes`` (see
        :meth:`step`), by default those of the last iteration.
        """
        if self._ctx is None:
            return
        self._ctx.call_on_fit_task_end(
            estimator=self._estimator,
            X=self._X,
            y=self._y,
            reconstruction_attributes=self._last if attributes is None else attributes,
        )
        self._ctx = None


def begin_fit(
    estimator, X, y, *, max_subtasks, task_name="fit", subtask_name="iteration"
):
    """Begin reporting a fit of ``estimator`` on ``X, y`` to its callbacks.

    Call ``task.step(...)`` once per iteration (at most ``max_subtasks`` are
    reported) and ``task.end()`` when the fit is done; the callbacks' teardown is
    done by scikit-learn's ``_fit_context`` (the decorator of ``fit``). ``y`` may
    be a callable returning the labels (evaluated only when a callback needs it).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.base import BaseEstimator
    >>> from skmixup.utils._callbacks import begin_fit
    >>> task = begin_fit(BaseEstimator(), np.ones((2, 1)), [0, 1], max_subtasks=3)
    >>> task.active, task.step({"coef_": 0.0})  # no callbacks: nothing reported
    (False, False)
    >>> task.end()
    """
    return FitTask(
        estimator,
        X,
        y,
        max_subtasks=max_subtasks,
        task_name=task_name,
        subtask_name=subtask_name,
    )


class CallbackStop(KeyboardInterrupt):
    """A scikit-learn callback asked to stop training (skorch's way to stop)."""


@contextlib.contextmanager
def report_epoch(task, attributes):
    """Report to ``task`` the epoch that the ``with`` block ends (skorch's
    ``on_epoch_end`` notification).

    ``task`` may be None (nothing reported). The epoch is reported after the
    block, so that skorch's callbacks have recorded it; if one of them stops
    training (``EarlyStopping`` raises ``KeyboardInterrupt``), the finished
    epoch is reported all the same. If a scikit-learn callback asks to stop,
    :class:`CallbackStop` is raised, which skorch's ``partial_fit`` catches as it
    catches its own callbacks' ``KeyboardInterrupt``: training ends after this
    epoch and ``fit`` returns the net.
    """
    try:
        yield
    except KeyboardInterrupt:
        if task is not None:
            task.step(attributes)  # training stops anyway
        raise
    end_epoch(task, attributes)


def end_epoch(task, attributes):
    """Report a finished epoch to ``task`` (if not None); raise
    :class:`CallbackStop` if a scikit-learn callback asks to stop."""
    if task is not None and task.step(attributes):
        raise CallbackStop("a scikit-learn callback asked to stop training")
