"""scikit-learn's callback API (``sklearn.callback``, >= 1.9) on skmixup estimators."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_wine
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmixup.linear_model import (
    MixupLogisticRegression,
    MixupRegularizedLogisticRegression,
)
from skmixup.utils._callbacks import begin_fit
from skmixup.utils._console import plain_print

callback = pytest.importorskip("sklearn.callback")

X, y = load_wine(return_X_y=True)
X = StandardScaler().fit_transform(X)
y = np.array(["a", "b", "c"])[y]  # string labels reach the callbacks as given


class Recorder:
    """Records ``(event, estimator, task_name)``; optionally asks to stop."""

    def __init__(self, stop_after=None, max_propagation_depth=None):
        self.events = []
        self.stop_after = stop_after
        self._depth = max_propagation_depth

    def setup(self, estimator, context):
        self.events.append(("setup", type(estimator).__name__, context.task_name))

    def teardown(self, estimator, context):
        self.events.append(("teardown", type(estimator).__name__, context.task_name))

    def on_fit_task_begin(self, estimator, context, *, X=None, y=None):
        self.events.append(("begin", type(estimator).__name__, context.task_name))

    def on_fit_task_end(self, estimator, context, *, X=None, y=None):
        self.events.append(("end", type(estimator).__name__, context.task_name))
        ends = sum(
            e[0] == "end" and e[2] in ("iteration", "epoch") for e in self.events
        )
        return self.stop_after is not None and ends >= self.stop_after


class AutoRecorder(Recorder):
    @property
    def max_propagation_depth(self):
        return self._depth


def _iterations(recorder, name="iteration"):
    return sum(e[0] == "end" and e[2] == name for e in recorder.events)


def _mlp(**params):
    nn = pytest.importorskip("skmixup.neural_network")
    params = {"hidden_layer_sizes": (8,), "max_iter": 4, **params}
    return nn.MixupMLPClassifier(random_state=0, **params)


@pytest.mark.parametrize(
    "make",
    [
        lambda: MixupLogisticRegression(random_state=0),
        MixupRegularizedLogisticRegression,
    ],
    ids=["MixupLogisticRegression", "MixupRegularizedLogisticRegression"],
)
def test_one_event_per_lbfgs_iteration(make):
    rec = Recorder()
    est = make().set_callbacks(rec)
    est.fit(X, y)
    assert rec.events[0] == ("setup", type(est).__name__, "fit")
    assert rec.events[1][:1] == ("begin",) and rec.events[-1][0] == "teardown"
    assert _iterations(rec) == est.n_iter_ > 3
    # fitting without callbacks gives the same model
    plain = make().fit(X, y)
    np.testing.assert_array_equal(plain.coef_, est.coef_)


def test_scoring_monitor_scores_every_iterate():
    monitor = callback.ScoringMonitor(scoring="accuracy")
    est = MixupLogisticRegression(random_state=0).set_callbacks(monitor).fit(X, y)
    rows = monitor.get_logs().data
    iters = [r["accuracy"] for r in rows if r["task_name"] == "iteration"]
    (final,) = [r["accuracy"] for r in rows if r["task_name"] == "fit"]
    assert len(iters) == est.n_iter_
    assert final == iters[-1] == est.score(X, y)
    assert iters[0] < final  # the first iterate is not the fitted model


def test_a_callback_can_stop_lbfgs():
    est = MixupLogisticRegression(random_state=0)
    est.set_callbacks(Recorder(stop_after=2)).fit(X, y)
    assert est.n_iter_ == 2
    assert est.predict(X).shape == y.shape


def test_partial_fit_is_one_task():
    rec = Recorder()
    est = MixupLogisticRegression(random_state=0).set_callbacks(rec)
    est.partial_fit(X, y, classes=np.unique(y))
    assert ("end", "MixupLogisticRegression", "partial_fit") in rec.events


def test_propagated_callbacks_reach_the_final_estimator():
    rec = AutoRecorder()
    pipe = make_pipeline(StandardScaler(), MixupLogisticRegression(random_state=0))
    search = GridSearchCV(pipe, {"mixuplogisticregression__mixup_alpha": [0.5, 2]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "does not support callbacks"
        search.set_callbacks(rec).fit(X, y)
    fits = [e for e in rec.events if e == ("end", "MixupLogisticRegression", "fit")]
    assert len(fits) == 2 * 5 + 1  # 2 candidates x 5 folds, then the refit
    assert _iterations(rec) > len(fits)
    assert not hasattr(search.best_estimator_[-1], "_skl_callbacks")


def test_mlp_reports_epochs_and_pickles():
    rec = Recorder()
    est = _mlp(tol=0.0, n_iter_no_change=4).set_callbacks(rec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # max_iter reached
        est.fit(X, y)
    assert _iterations(rec, "epoch") == 4 == est.n_iter_
    est.partial_fit(X, y)
    assert rec.events[-2] == ("end", "MixupMLPClassifier", "partial_fit")
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(again.predict_proba(X), est.predict_proba(X))


@pytest.mark.parametrize("regularized", [False, True])
def test_mlp_scoring_monitor_scores_every_epoch(regularized):
    # (scoring=None fails inside scikit-learn 1.9's ScoringMonitor for every
    # estimator, the linear ones included: it updates a dict with a float.)
    nn = pytest.importorskip("skmixup.neural_network")
    cls = nn.MixupRegularizedMLPClassifier if regularized else nn.MixupMLPClassifier

    def make(max_iter):
        return cls(hidden_layer_sizes=(8,), max_iter=max_iter, tol=0.0, random_state=0)

    monitor = callback.ScoringMonitor(scoring="accuracy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # max_iter reached
        est = make(3).set_callbacks(monitor).fit(X, y)
        first = make(1).fit(X, y)
    rows = monitor.get_logs().data
    epochs = [r["accuracy"] for r in rows if r["task_name"] == "epoch"]
    (final,) = [r["accuracy"] for r in rows if r["task_name"] == "fit"]
    assert len(epochs) == 3
    assert final == epochs[-1] == est.score(X, y)
    assert epochs[0] == first.score(X, y)  # each epoch as the network was then


def test_mlp_reports_the_epoch_on_which_its_stopping_rule_fires():
    rec = Recorder()
    est = _mlp(max_iter=200, tol=10.0, n_iter_no_change=2).set_callbacks(rec)
    est.fit(X, y)  # no loss improves by 10: the rule stops after 3 epochs
    assert est.n_iter_ < est.max_iter
    assert _iterations(rec, "epoch") == est.n_iter_


def _net(**params):
    nn = pytest.importorskip("skmixup.neural_network")
    from skorch.toy import MLPModule

    params = {"max_epochs": 4, "lr": 0.1, "batch_size": 64, **params}
    return nn.MixupNeuralNetClassifier(
        MLPModule,
        module__input_units=X.shape[1],
        module__output_units=3,
        module__hidden_units=8,
        module__num_hidden=1,
        module__output_nonlin=None,
        train_split=None,
        verbose=0,
        random_state=0,
        **params,
    )


X32, y_idx = X.astype(np.float32), np.unique(y, return_inverse=True)[1]


def test_net_reports_epochs_and_fits_as_without_callbacks():
    rec = Recorder()
    net = _net().set_callbacks(rec).fit(X32, y_idx)
    assert rec.events[0] == ("setup", "MixupNeuralNetClassifier", "fit")
    assert rec.events[-1] == ("teardown", "MixupNeuralNetClassifier", "fit")
    assert _iterations(rec, "epoch") == 4 == len(net.history)
    assert not hasattr(net, "_callback_fit_ctx")  # torn down after fit
    plain = _net().fit(X32, y_idx)
    np.testing.assert_array_equal(plain.predict_proba(X32), net.predict_proba(X32))
    # skorch's parameters never list the callback state, so clone and skops
    # (which saves the parameters) never see it; clone keeps the callbacks.
    assert not any(k.startswith("_skl") for k in net.get_params())
    assert clone(net)._skl_callbacks == [rec]
    net.partial_fit(X32, y_idx, epochs=2)
    assert rec.events[-2] == ("end", "MixupNeuralNetClassifier", "partial_fit")
    assert _iterations(rec, "epoch") == 6 == len(net.history)
    again = pickle.loads(pickle.dumps(net))
    np.testing.assert_allclose(again.predict_proba(X32), net.predict_proba(X32))


def test_net_pickled_during_fit_holds_no_fit_in_progress(tmp_path):
    from skorch.callbacks import Checkpoint

    checkpoint = Checkpoint(monitor=None, f_pickle="net.pkl", dirname=str(tmp_path))
    net = _net(max_epochs=2, callbacks=[checkpoint]).set_callbacks(Recorder())
    net.fit(X32, y_idx)
    saved = pickle.loads((tmp_path / "net.pkl").read_bytes())
    assert saved._fit_task_ is None and not hasattr(saved, "_callback_fit_ctx")
    assert len(saved._skl_callbacks) == 1  # the callbacks stay, as on any estimator
    np.testing.assert_allclose(saved.predict_proba(X32), net.predict_proba(X32))


def test_net_scoring_monitor_scores_every_epoch():
    monitor = callback.ScoringMonitor(scoring="accuracy")
    net = _net().set_callbacks(monitor).fit(X32, y_idx)
    rows = monitor.get_logs().data
    epochs = [r["accuracy"] for r in rows if r["task_name"] == "epoch"]
    (final,) = [r["accuracy"] for r in rows if r["task_name"] == "fit"]
    assert len(epochs) == 4
    assert final == epochs[-1] == net.score(X32, y_idx)
    # each epoch is scored as the net was then, not as it ended
    first = _net(max_epochs=1).fit(X32, y_idx)
    assert epochs[0] == first.score(X32, y_idx)


def test_a_callback_stop_ends_net_training_and_is_no_ctrl_c():
    net = _net(max_epochs=50).set_callbacks(Recorder(stop_after=2))
    net.fit(X32, y_idx)
    assert len(net.history) == 2
    assert net._interrupt is None  # not recorded as Ctrl-C
    assert net.predict(X32).shape == y_idx.shape
    # when skorch's EarlyStopping stops training, its last epoch is reported too
    from skorch.callbacks import EarlyStopping

    rec = Recorder()
    stopper = EarlyStopping(monitor="train_loss", patience=2, threshold=10.0)
    net = _net(max_epochs=50, callbacks=[stopper]).set_callbacks(rec)
    net.fit(X32, y_idx)
    assert _iterations(rec, "epoch") == len(net.history) == 3
    # MixupMLPClassifier (which re-raises Ctrl-C) stops and returns as well
    mlp = _mlp(max_iter=50, tol=0.0, n_iter_no_change=50)
    mlp.set_callbacks(Recorder(stop_after=3)).fit(X, y)
    assert mlp.n_iter_ == 3 and mlp.predict(X).shape == y.shape


def test_propagated_callbacks_reach_the_net():
    rec = AutoRecorder()
    pipe = make_pipeline(StandardScaler(), _net(max_epochs=2))
    search = GridSearchCV(pipe, {"mixupneuralnetclassifier__lr": [0.05, 0.1]}, cv=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "does not support callbacks"
        search.set_callbacks(rec).fit(X32, y_idx)
    fits = [e for e in rec.events if e == ("end", "MixupNeuralNetClassifier", "fit")]
    assert len(fits) == 2 * 2 + 1  # 2 candidates x 2 folds, then the refit
    assert _iterations(rec, "epoch") == 2 * len(fits)
    assert not hasattr(search.best_estimator_[-1], "_skl_callbacks")


def test_net_progress_bar_shows_the_epochs(capsys, monkeypatch):
    pytest.importorskip("rich")
    ended = []
    original = callback.ProgressBar.on_fit_task_end

    def on_fit_task_end(self, estimator, context, **kwargs):
        ended.append(context.task_name)
        return original(self, estimator, context, **kwargs)

    monkeypatch.setattr(callback.ProgressBar, "on_fit_task_end", on_fit_task_end)
    _net().set_callbacks(callback.ProgressBar()).fit(X32, y_idx)
    assert ended == ["epoch"] * 4 + ["fit"]  # the bar advances once per epoch
    assert "MixupNeuralNetClassifier - fit" in capsys.readouterr().out


def test_progress_bar_runs():
    pytest.importorskip("rich")
    est = MixupLogisticRegression(random_state=0)
    est.set_callbacks(callback.ProgressBar()).fit(X, y)
    assert est.n_iter_ > 1


def test_no_callbacks_no_context():
    est = MixupLogisticRegression(random_state=0)
    task = begin_fit(est, X, y, max_subtasks=3)
    assert not task.active and not task.step({}) and task.end() is None
    est.fit(X, y)
    assert not hasattr(est, "_callback_fit_ctx")


def test_plain_print_strips_colour_codes_off_a_terminal(capsys):
    plain_print("\x1b[32m0.1234\x1b[0m", "x")
    assert capsys.readouterr().out == "0.1234 x\n"


def test_mlp_verbose_output_has_no_colour_codes(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        _mlp(verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "train_loss" in out and "\x1b[" not in out


def test_scikit_learn_without_the_callback_api(tmp_path):
    # scikit-learn < 1.9 has no sklearn.callback: no set_callbacks, fits unchanged.
    code = (
        "import sys\n"
        "import sklearn.callback._callback_support  # used by sklearn's _fit_context\n"
        "import sklearn.linear_model, sklearn.pipeline  # import sklearn.callback\n"
        "from sklearn.datasets import load_wine\n"
        "sys.modules['sklearn.callback'] = None  # import fails, as on sklearn 1.8\n"
        "from skmixup.linear_model import MixupLogisticRegression\n"
        "X, y = load_wine(return_X_y=True)\n"
        "est = MixupLogisticRegression(random_state=0, max_iter=5)\n"
        "assert not hasattr(est, 'set_callbacks')\n"
        "est.partial_fit(X, y, classes=[0, 1, 2])\n"
        "import warnings; warnings.simplefilter('ignore')\n"
        "print(int(est.fit(X, y).n_iter_[0]))\n"
        "try:\n"
        "    import skorch\n"
        "except ImportError:\n"
        "    print('net 3'); raise SystemExit\n"
        "from sklearn.base import clone\n"
        "from skorch.toy import MLPModule\n"
        "from skmixup.neural_network import MixupNeuralNetClassifier\n"
        "net = MixupNeuralNetClassifier(MLPModule, module__input_units=13,\n"
        "    module__output_units=3, module__output_nonlin=None, max_epochs=3,\n"
        "    train_split=None, verbose=0, random_state=0)\n"
        "assert not hasattr(net, 'set_callbacks')\n"
        "net = clone(net).fit(X.astype('float32'), y)\n"
        "net.partial_fit(X.astype('float32'), y, epochs=0)\n"
        "print('net', len(net.history))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["5", "net", "3"]
