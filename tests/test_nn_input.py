"""The torch estimators' input: bad input, DataFrames, sample weights, metadata
routing.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from _torch_helpers import (  # noqa: E402
    TORCH_MODULE_MARKS,
    assert_same_weights,
    module_weights,
)
from _torch_helpers import (  # noqa: E402
    runtime_net as _net,
)
from sklearn.datasets import make_classification  # noqa: E402

from conftest import FAST_MLP as FAST  # noqa: E402
from conftest import mixed_table, mixed_table_preprocessor  # noqa: E402
from skmixup.neural_network import (  # noqa: E402
    MixupMLPClassifier,
    MixupNeuralNetClassifier,
)

pytestmark = TORCH_MODULE_MARKS


# ------------------------------------------------------------------- input
@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.full((6, 5), np.nan), np.arange(6) % 2, "NaN"),
        (np.full((6, 5), np.inf), np.arange(6) % 2, "infinity"),
        (np.zeros((0, 5)), np.zeros(0), "0 sample"),
        (np.zeros(6), np.arange(6) % 2, "2D array"),
        (np.zeros((6, 5)), np.arange(3), "inconsistent numbers of samples"),
        (np.zeros((6, 5)), np.array(["a", "b"] * 3), "class indices"),
        (np.zeros((6, 5)), np.arange(6) - 0.5, "class indices"),
    ],
    ids=["nan", "inf", "empty", "1d", "lengths", "string-y", "fractional-y"],
)
def test_net_rejects_bad_input(X, y, match):
    with pytest.raises(ValueError, match=match):
        _net().fit(X, y)


def test_net_accepts_what_skorch_accepts_and_checks_predict():
    X, y = make_classification(n_samples=40, n_features=5, random_state=0)
    net = _net(max_epochs=1).fit(X, y.astype(np.float64))  # float64 X, float y
    net.fit(X.astype(np.float32), y.astype(object))  # object labels 0/1
    net.fit(torch.from_numpy(X).float(), torch.from_numpy(y))  # tensors
    assert net.predict(X).shape == (40,)
    with pytest.raises(ValueError, match="NaN"):
        net.predict(np.full((2, 5), np.nan))
    with pytest.raises(ValueError, match="expecting 5 features"):
        net.predict(X[:, :3])


def test_mlp_rejects_values_beyond_float32(data):
    X, y = data
    with pytest.raises(ValueError, match="too large for float32"):
        MixupMLPClassifier(**FAST).fit(X * 1e40, y)


# ------------------------------------------------------ DataFrames, weights
def test_canonical_pipeline_with_weights_both_estimators():
    from sklearn.pipeline import Pipeline

    X, y = mixed_table(n=80)
    w = np.linspace(0.5, 2.0, len(y))
    mlp = Pipeline(
        [
            ("pre", mixed_table_preprocessor(sparse_output=False)),
            ("clf", MixupMLPClassifier(**FAST)),
        ]
    )
    mlp.fit(X, y, clf__sample_weight=w)
    assert set(mlp.predict(X)) <= {"yes", "no"}
    # The net takes class indices; the DataFrame the preprocessor hands it (with
    # set_output pandas) is a matrix, not a dict of columns.
    net = Pipeline(
        [
            # TF-IDF has no pandas output: the text column is left out here.
            ("pre", mixed_table_preprocessor(sparse_output=False, text=False)),
            (
                "clf",
                MixupNeuralNetClassifier(
                    torch.nn.LazyLinear,
                    module__out_features=2,
                    max_epochs=2,
                    train_split=None,
                    verbose=0,
                    random_state=0,
                    device="cpu",
                ),
            ),
        ]
    ).set_output(transform="pandas")
    y_idx = (y == "yes").astype(np.int64)
    net.fit(X, y_idx, clf__sample_weight=w)
    assert net.predict_proba(X).shape == (80, 2)


def test_equal_weights_change_nothing(data):
    X, y = data
    a = MixupMLPClassifier(**FAST).fit(X, y)
    b = MixupMLPClassifier(**FAST).fit(X, y, sample_weight=np.full(len(y), 3.0))
    assert_same_weights(a.net_.module_, b.net_.module_)


@pytest.mark.parametrize("estimator", ["mlp", "net"])
def test_integer_weights_equal_repeated_rows_without_mixing(estimator):
    # Full batches, no shuffling, no mixing: the weighted mean loss equals the
    # mean over repeated rows, so the fits agree up to float rounding.
    X, y = make_classification(n_samples=30, n_features=5, random_state=0)
    w = np.arange(30) % 3  # 0, 1 and 2 repetitions
    X_rep, y_rep = np.repeat(X, w, axis=0), np.repeat(y, w)
    if estimator == "mlp":

        def fit(*args, **kwargs):
            return (
                MixupMLPClassifier(
                    **{**FAST, "batch_size": 100, "shuffle": False, "alpha": 0.0},
                    mixup_prob=0.0,
                )
                .fit(*args, **kwargs)
                .net_.module_
            )
    else:

        def fit(*args, **kwargs):
            return (
                _net(
                    batch_size=-1,
                    iterator_train__shuffle=False,
                    mixup_prob=0.0,
                    module__n_outputs=2,
                )
                .fit(*args, **kwargs)
                .module_
            )

    for a, b in zip(
        module_weights(fit(X, y, sample_weight=w)),
        module_weights(fit(X_rep, y_rep)),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_partners_drawn_in_proportion_to_weight():
    net = _net().initialize()
    net._ensure_generators()
    w = np.array([0.0, 0.0, 1.0, 3.0])
    batch = (torch.zeros(4, 5), None)  # the weights travel beside the batch
    counts = np.zeros(4)
    for _ in range(500):
        _, partner = net._draw_mixing(batch, torch.tensor(w))
        counts += np.bincount(partner.numpy(), minlength=4)
    assert counts[0] == counts[1] == 0
    assert 2.5 < counts[3] / counts[2] < 3.5


def test_metadata_routing_and_adaboost(data):
    import sklearn
    from sklearn.ensemble import AdaBoostClassifier
    from sklearn.model_selection import cross_validate

    X, y = data
    w = np.linspace(0.5, 2.0, len(y))
    with sklearn.config_context(enable_metadata_routing=True):
        for est in (
            MixupMLPClassifier(**FAST),
            _net(X.shape[1], module__n_outputs=3),
        ):
            target = (
                y
                if isinstance(est, MixupMLPClassifier)
                else np.unique(y, return_inverse=True)[1]
            )
            est.set_fit_request(sample_weight=True)
            est.set_score_request(sample_weight=True)
            res = cross_validate(
                est, X.astype(np.float32), target, params={"sample_weight": w}, cv=2
            )
            assert np.all(np.isfinite(res["test_score"]))
    boost = AdaBoostClassifier(MixupMLPClassifier(**FAST), n_estimators=2).fit(X, y)
    assert boost.score(X, y) > 0.5
