"""The regression / wrapped-boosting experiment of ``reproduce``."""

import numpy as np
import pytest

from skmixup.experiments._compose import (
    boosting_table,
    compose_experiment,
    compose_protocol,
    compose_summary,
    load_regression,
    regression_table,
)
from skmixup.experiments._report import tables, write_report

pytestmark = pytest.mark.filterwarnings(
    "ignore:Stochastic optimizer. maximum iterations:"
    "sklearn.exceptions.ConvergenceWarning"
)


@pytest.fixture(scope="module")
def rows():
    return compose_experiment(
        regression_datasets=("friedman1",),
        classification_datasets=("wine",),
        n_splits=2,
        hgb_params={"max_iter": 10},
        mlp_params={"max_iter": 3, "hidden_layer_sizes": (8,)},
    )


def test_rows_scores_and_methods(rows):
    reg = [r for r in rows if r["task"] == "regression"]
    clf = [r for r in rows if r["task"] == "classification"]
    methods = {(r["model"], r["method"]) for r in reg}
    assert ("HistGradientBoostingRegressor", "C-Mixup") in methods
    assert {m for _, m in methods} == {"ERM", "Mixup", "C-Mixup"}
    assert [r["method"] for r in clf] == ["ERM", "Mixup"]
    for r in reg:
        assert r["n_splits"] == 2
        assert r["mse_gap"] == pytest.approx(r["test_mse"] - r["train_mse"])
        assert r["test_mse"] > 0
    for r in clf:
        assert 0 <= r["test_accuracy"] <= 1
        assert r["log_loss_gap"] == pytest.approx(
            r["test_log_loss"] - r["train_log_loss"]
        )
    # the Mixup rows are fitted on mixed rows: they differ from ERM
    hgb = {r["method"]: r for r in reg if r["model"].startswith("Hist")}
    assert hgb["Mixup"]["train_mse"] != hgb["ERM"]["train_mse"]


def test_tables_summary_protocol_and_report(rows, tmp_path):
    titles = list(tables({"compose": rows}))
    assert titles == [
        "Regression: test MSE and train-test gap, ERM vs Mixup vs C-Mixup",
        "Gradient boosting in MixupClassifier: log-loss and accuracy",
    ]
    assert "| friedman1" in regression_table(rows)
    assert "| wine" in boosting_table(rows) and "friedman1" not in boosting_table(rows)
    lines = compose_summary(rows)
    reg = [r for r in rows if r["task"] == "regression"]
    best = min(
        (r for r in reg if r["model"].startswith("Hist")), key=lambda r: r["test_mse"]
    )
    assert any(
        line.startswith(
            "friedman1, HistGradientBoostingRegressor: lowest test mse "
            f"with {best['method']} "
        )
        for line in lines
    )
    assert "3 seeded train/test split(s)" in compose_protocol({"n_splits": 3})[0]
    paths, _ = write_report(
        tmp_path,
        settings={},
        results={"compose": rows},
        experiments={"compose": {"n_splits": 2}},
    )
    report = paths[0].read_text()
    assert "## Regression: test MSE and train-test gap" in report
    assert "2 seeded train/test" in report.replace("\n", " ")
    assert compose_summary([]) == [] and regression_table([]).startswith("(no")


def test_regression_data():
    X, y = load_regression("diabetes")
    assert X.shape == (442, 10)
    X, y = load_regression("friedman1", random_state=0)
    assert X.shape == (500, 10) and np.isfinite(y).all()
    with pytest.raises(ValueError, match="Unknown regression dataset"):
        load_regression("boston")
