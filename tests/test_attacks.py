"""FGSM, PGD and the exact linear attack: closed forms, references and invariants."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import make_classification, make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmixup.metrics import fgsm, pgd, robust_accuracy_score
from skmixup.metrics._attacks import exact_attack

try:
    from skmixup.linear_model import MixupLogisticRegression
except ImportError:  # pragma: no cover - written in parallel
    MixupLogisticRegression = None


@pytest.fixture(scope="module")
def binary():
    X, y = make_classification(
        n_samples=150, n_features=6, n_informative=4, random_state=0
    )
    return X, y, LogisticRegression().fit(X, y)


@pytest.fixture(scope="module")
def moons_mlp():
    X, y = make_moons(n_samples=200, noise=0.15, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier((32, 32), max_iter=400, random_state=0).fit(X, y)
    return X, y, mlp


def test_fgsm_linear_closed_form(binary):
    X, y, clf = binary
    w = clf.coef_[0]
    p = clf.predict_proba(X)[:, 1]
    expected = X + 0.3 * np.sign((p - y)[:, None] * w)
    assert_allclose(fgsm(clf, X, y, eps=0.3, feature_scale=1), expected)
    # l2: a step of length eps along the normalized gradient.
    expected = X + 0.3 * np.sign(p - y)[:, None] * w / np.linalg.norm(w)
    assert_allclose(fgsm(clf, X, y, eps=0.3, norm=2, feature_scale=1), expected)


def test_fgsm_feature_scale_and_clip(binary):
    X, y, clf = binary
    scale = np.linspace(0.5, 2.0, X.shape[1])
    delta = fgsm(clf, X, y, eps=0.2, feature_scale=scale) - X
    assert_allclose(np.abs(delta), np.broadcast_to(0.2 * scale, X.shape))
    delta = fgsm(clf, X, y, eps=0.2, norm=2, feature_scale=scale) - X
    assert_allclose(np.linalg.norm(delta / scale, axis=1), 0.2)
    low, high = X.min(axis=0), X.max(axis=0)
    X_adv = fgsm(clf, X, y, eps=5.0, clip=(low, high))
    assert np.all((X_adv >= low) & (X_adv <= high))
    X_adv = fgsm(clf, X, y, eps=5.0, clip=(None, X.max()))
    assert X_adv.max() <= X.max()


def test_fgsm_preserves_float32_and_does_not_mutate(binary):
    X, y, clf = binary
    X32 = X.astype(np.float32)
    copy = X32.copy()
    X_adv = fgsm(clf, X32, y, eps=0.1)
    assert X_adv.dtype == np.float32
    assert_array_equal(X32, copy)
    assert_allclose(X_adv, fgsm(clf, X, y, eps=0.1), atol=1e-6)


@pytest.mark.parametrize("attack", [fgsm, pgd, exact_attack])
def test_attack_input_errors(binary, attack):
    X, y, clf = binary
    with pytest.raises(ValueError, match="eps must be"):
        attack(clf, X, y, eps=-0.1)
    with pytest.raises(ValueError, match="norm must be"):
        attack(clf, X, y, eps=0.1, norm="l1")
    with pytest.raises(ValueError, match=r"clip high bound .* shape \(6,\)"):
        attack(clf, X, y, eps=0.1, clip=(0.0, np.ones(4)))
    with pytest.raises(ValueError, match="clip must be a pair"):
        attack(clf, X, y, eps=0.1, clip=(0.0, 1.0, 2.0))
    with pytest.raises(ValueError, match="low bound exceeds"):
        attack(clf, X, y, eps=0.1, clip=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"feature_scale .* shape \(6,\)"):
        attack(clf, X, y, eps=0.1, feature_scale=np.ones(3))
    with pytest.raises(ValueError, match="feature_scale must be finite"):
        attack(clf, X, y, eps=0.1, feature_scale=-np.ones(6))


def test_pgd_parameter_errors(binary):
    X, y, clf = binary
    with pytest.raises(ValueError, match="n_iter"):
        pgd(clf, X, y, eps=0.1, n_iter=0)
    with pytest.raises(ValueError, match="step must be"):
        pgd(clf, X, y, eps=0.1, step=-1.0)


@pytest.mark.parametrize("attack", ["fgsm", "pgd", "exact"])
def test_eps_zero_gives_clean_accuracy(binary, attack):
    X, y, clf = binary
    params = {"random_state": 0} if attack == "pgd" else {}
    score = robust_accuracy_score(clf, X, y, attack=attack, eps=0.0, **params)
    assert score == clf.score(X, y)


def test_eps_zero_gives_clean_accuracy_mlp(moons_mlp):
    X, y, mlp = moons_mlp
    for attack in ("fgsm", "pgd"):
        assert robust_accuracy_score(mlp, X, y, attack=attack, eps=0.0) == mlp.score(
            X, y
        )


def _linear_models():
    models = [
        LogisticRegression(C=0.1),
        SGDClassifier(loss="log_loss", alpha=0.01, random_state=0),
        make_pipeline(StandardScaler(), LogisticRegression()),
    ]
    if MixupLogisticRegression is not None:
        models.append(MixupLogisticRegression(random_state=0))
    return models


@pytest.mark.parametrize("model", _linear_models(), ids=lambda m: type(m).__name__)
@pytest.mark.parametrize("norm", ["inf", 2])
def test_exact_equals_fgsm_and_bounds_pgd_for_binary_linear(model, norm):
    X, y = make_classification(
        n_samples=120, n_features=5, n_informative=3, random_state=1
    )
    X = X * np.array([1.0, 3.0, 0.5, 2.0, 1.0]) + 1.0
    clf = model.fit(X, y)
    scale = X.std(axis=0)
    for eps in (0.05, 0.2, 0.5):
        kw = {"eps": eps, "norm": norm, "feature_scale": scale}
        exact = robust_accuracy_score(clf, X, y, attack="exact", **kw)
        assert robust_accuracy_score(clf, X, y, attack="fgsm", **kw) == exact
        pgd_acc = robust_accuracy_score(
            clf, X, y, attack="pgd", n_iter=5, random_state=0, **kw
        )
        assert pgd_acc >= exact
    # The margin criterion: correct iff margin > eps * dual norm of w * scale.
    decision = clf.decision_function(X)
    margin = np.where(y == 1, decision, -decision)
    w = _exact_weights(clf)
    dual = np.linalg.norm(w * scale, ord=1 if norm == "inf" else 2)
    expected = np.mean(margin > 0.2 * dual)
    exact = robust_accuracy_score(
        clf, X, y, attack="exact", eps=0.2, norm=norm, feature_scale=scale
    )
    assert exact == pytest.approx(expected)


def _exact_weights(clf):
    if hasattr(clf, "steps"):
        return clf[-1].coef_[0] / clf[0].scale_
    return clf.coef_[0]


def test_exact_attack_with_clip_is_the_clipped_corner(binary):
    X, y, clf = binary
    clip = (X.min(axis=0), X.max(axis=0))
    exact = exact_attack(clf, X, y, eps=0.5, clip=clip)
    assert_allclose(exact, fgsm(clf, X, y, eps=0.5, clip=clip))
    with pytest.raises(ValueError, match="norm=2 does not support clip"):
        exact_attack(clf, X, y, eps=0.5, norm=2, clip=clip)


def test_exact_attack_refuses_nonlinear_models_and_steps(moons_mlp):
    X, y, mlp = moons_mlp
    # ReLU networks: the exact MILP (tests/test_certify.py); tanh ones refuse.
    tanh = clone(mlp).set_params(activation="tanh", max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        tanh.fit(X, y)
    with pytest.raises(TypeError, match="piecewise-linear"):
        robust_accuracy_score(tanh, X, y, attack="exact")
    from sklearn.svm import SVC

    svc = SVC(kernel="rbf").fit(X, y)
    with pytest.raises(TypeError, match="needs a linear classifier"):
        robust_accuracy_score(svc, X, y, attack="exact")
    from sklearn.preprocessing import Normalizer

    pipe = make_pipeline(Normalizer(), LogisticRegression()).fit(X, y)
    with pytest.raises(TypeError, match="affine pipeline steps.*normalizer"):
        robust_accuracy_score(pipe, X, y, attack="exact")


@pytest.mark.parametrize("norm", ["inf", 2])
def test_pgd_is_at_least_as_strong_as_fgsm_on_mlp(moons_mlp, norm):
    X, y, mlp = moons_mlp
    clean = mlp.score(X, y)
    for eps in (0.1, 0.2, 0.3):
        fgsm_acc = robust_accuracy_score(mlp, X, y, eps=eps, norm=norm)
        pgd_acc = robust_accuracy_score(
            mlp, X, y, attack="pgd", eps=eps, norm=norm, random_start=False
        )
        assert pgd_acc <= fgsm_acc < clean
        # With a random start PGD may end in other local maxima (see its Notes);
        # it stays close to FGSM and still far below the clean accuracy.
        pgd_random = robust_accuracy_score(
            mlp, X, y, attack="pgd", eps=eps, norm=norm, random_state=0
        )
        assert pgd_random <= fgsm_acc + 0.05


@pytest.mark.parametrize("norm", ["inf", 2])
def test_pgd_stays_in_ball_and_box_and_is_seeded(moons_mlp, norm):
    X, y, mlp = moons_mlp
    scale = np.array([0.5, 2.0])
    clip = (np.array([-1.0, -0.5]), 1.5)
    X_in = np.clip(X, *clip)
    kw = {"eps": 0.3, "norm": norm, "feature_scale": scale, "clip": clip}
    X_adv = pgd(mlp, X_in, y, random_state=3, **kw)
    U = (X_adv - X_in) / scale
    length = np.abs(U).max(axis=1) if norm == "inf" else np.linalg.norm(U, axis=1)
    assert np.all(length <= 0.3 + 1e-12)
    assert np.all((X_adv >= clip[0]) & (X_adv <= clip[1]))
    assert_array_equal(X_adv, pgd(mlp, X_in, y, random_state=3, **kw))
    rng = np.random.RandomState(3)
    assert_array_equal(X_adv, pgd(mlp, X_in, y, random_state=rng, **kw))
    X_det = pgd(mlp, X_in, y, random_start=False, **kw)
    assert_array_equal(X_det, pgd(mlp, X_in, y, random_start=False, **kw))


def test_pgd_numerical_gradient_on_tree():
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_moons(n_samples=60, noise=0.2, random_state=0)
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    with pytest.raises(TypeError, match="gradient='numerical'"):
        pgd(forest, X, y, eps=0.1)
    X_adv = pgd(
        forest,
        X,
        y,
        eps=0.1,
        feature_scale=1,
        gradient="numerical",
        n_iter=2,
        random_state=0,
    )
    assert np.abs(X_adv - X).max() <= 0.1 + 1e-12


def test_fgsm_matches_hand_written_torch_fgsm():
    torch = pytest.importorskip("torch")
    X, y = make_classification(
        n_samples=200, n_features=8, n_informative=5, n_classes=4, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier((16, 8), max_iter=50, random_state=0).fit(X, y)
    layers = [
        (torch.tensor(W), torch.tensor(b))
        for W, b in zip(mlp.coefs_, mlp.intercepts_, strict=True)
    ]
    Xt = torch.tensor(X, requires_grad=True)
    H = Xt
    for W, b in layers[:-1]:
        H = torch.relu(H @ W + b)
    logits = H @ layers[-1][0] + layers[-1][1]
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(y), reduction="sum")
    (grad,) = torch.autograd.grad(loss, Xt)
    reference = (Xt + 0.1 * grad.sign()).detach().numpy()
    assert_allclose(fgsm(mlp, X, y, eps=0.1, feature_scale=1), reference)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_fgsm_matches_art(n_classes):
    pytest.importorskip("art")
    from art.attacks.evasion import FastGradientMethod
    from art.estimators.classification import SklearnClassifier

    X, y = make_classification(
        n_samples=100,
        n_features=6,
        n_informative=4,
        n_classes=n_classes,
        random_state=0,
    )
    clf = LogisticRegression().fit(X, y)
    attack = FastGradientMethod(SklearnClassifier(model=clf), eps=0.2)
    reference = attack.generate(X, y=np.eye(n_classes)[y])
    # ART computes in float32.
    assert_allclose(fgsm(clf, X, y, eps=0.2, feature_scale=1), reference, atol=1e-5)


@pytest.mark.parametrize("attack", [fgsm, pgd])
def test_row_blocks_do_not_change_results(moons_mlp, monkeypatch, attack):
    from skmixup.metrics import _gradients

    X, y, mlp = moons_mlp
    kw = {"eps": 0.2} if attack is fgsm else {"eps": 0.2, "random_state": 0}
    whole = attack(mlp, X, y, **kw)
    monkeypatch.setattr(_gradients, "BLOCK_ELEMENTS", 64 * 32)  # 64-row blocks
    assert_array_equal(attack(mlp, X, y, **kw), whole)


def test_label_indices_fast_path_for_labels_zero_to_k_agrees_and_checks():
    from skmixup.utils._labels import label_indices

    y = np.array([2, 0, 1, 1, 2])
    assert_array_equal(label_indices(np.arange(3), y), y)
    # same answer as the general path (classes that are not 0..K-1)
    assert_array_equal(label_indices(np.array([10, 20, 30]), 10 * (y + 1)), y)
    with pytest.raises(ValueError, match=r"not in the estimator's classes_.*\[3\]"):
        label_indices(np.arange(3), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"not in the estimator's classes_.*\[-1\]"):
        label_indices(np.arange(3), np.array([-1, 0]))
