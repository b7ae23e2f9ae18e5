"""The Mixup penalty of PyTorch modules and MixupRegularizedMLPClassifier."""

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from _torch_helpers import TORCH_MODULE_MARKS  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from torch import nn  # noqa: E402

from conftest import FAST_MLP as FAST  # noqa: E402
from conftest import mixed_table, mixed_table_preprocessor  # noqa: E402
from skmixup._mixing import mixing_moments  # noqa: E402
from skmixup.neural_network import (  # noqa: E402
    MixupMLPClassifier,
    MixupNeuralNetClassifier,
    MixupRegularizedMLPClassifier,
    MLPModule,
)
from skmixup.neural_network._base import _BaseMixupMLPClassifier  # noqa: E402
from skmixup.neural_network._net import _BaseMixupNet  # noqa: E402
from skmixup.neural_network._penalty import (  # noqa: E402
    PartnerMoments,
    directional_derivatives,
    is_piecewise_linear,
    mixup_terms,
    partner_moments,
)
from skmixup.neural_network._regularized import (  # noqa: E402
    _MixupPenaltyNet,
    resolve_n_partners,
)

pytestmark = TORCH_MODULE_MARKS

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "logistic": nn.Sigmoid}


def _tiny_net(d, K, activation, seed, bias=True, scale=1.0):
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Linear(d, 5, bias=bias),
        ACTIVATIONS[activation](),
        nn.Linear(5, K, bias=bias),
    ).double()
    for p in net.parameters():  # terms as plain values: no parameter graph
        p.requires_grad_(False).mul_(scale)
    return net


def _tiny_problem(seed, d=3, n=7, K=3, link="softmax"):
    gen = torch.Generator().manual_seed(seed)
    # uncentered, unequal scales: the expansion must not need centering
    X = torch.randn(n, d, generator=gen, dtype=torch.float64) * 1.5 + 0.7
    if link == "sigmoid":
        y = torch.randint(0, 2, (n,), generator=gen).double()
    else:
        y = torch.randint(0, K, (n,), generator=gen)
    return X, y


def _loss(f, y, link):
    if link == "sigmoid":
        return nn.functional.softplus(f[..., 0]) - y * f[..., 0]
    logp = torch.log_softmax(f, -1)
    return -logp.gather(-1, y.expand(logp.shape[:-1]).unsqueeze(-1))[..., 0]


def _g(net, X, y, u, link):
    """g_i(u) = E_r l(x_i + u (r - x_i), y_i), all partners r (x_i included)."""
    n, d = X.shape
    Z = X[:, None, :] + u * (X[None, :, :] - X[:, None, :])
    f = net(Z.reshape(-1, d)).reshape(n, n, -1)
    return _loss(f, y[:, None], link).mean(1)


# ------------------------------------------------------------ the penalty terms
@pytest.mark.parametrize("activation", ["tanh", "relu", "logistic"])
@pytest.mark.parametrize("link", ["softmax", "sigmoid"])
@pytest.mark.parametrize("seed, wrap", [(0, False), (1, True)])
def test_terms_are_taylor_coefficients_of_the_mixup_loss(activation, link, seed, wrap):
    # paper: g_i'(0) = R1_i / m1 and g_i''(0) = 2 (R2_i + R3_i) / m2, per sample
    X, y = _tiny_problem(seed, link=link)
    net = _tiny_net(3, 1 if link == "sigmoid" else 3, activation, seed)
    net = _Wrapped(net) if wrap else net  # torch.func.jvp, or written out
    m1, m2 = mixing_moments(0.7, 2.0)
    terms = mixup_terms(net, X, y, m1=m1, m2=m2, partners=partner_moments(X), link=link)
    # five-point stencils; a small step, so that no ReLU kink lies within 2h
    h = 1e-4
    with torch.no_grad():
        g2, g1, g0, gm1, gm2 = (
            _g(net, X, y, u, link) for u in (2 * h, h, 0, -h, -2 * h)
        )
    first = (-g2 + 8 * g1 - 8 * gm1 + gm2) / (12 * h)
    second = (-g2 + 16 * g1 - 30 * g0 + 16 * gm1 - gm2) / (12 * h**2)
    np.testing.assert_allclose(terms.standard, g0, rtol=1e-12)
    np.testing.assert_allclose(terms.R1 / m1, first, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(
        2 * (terms.R2 + terms.R3) / m2, second, rtol=1e-5, atol=1e-7
    )
    # R2 is a data-weighted squared gradient: never negative
    assert torch.all(terms.R2 >= 0)


class _Wrapped(nn.Module):
    """Not a plain Sequential: the terms go through torch.func.jvp."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize(
    "activation", [nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.LeakyReLU]
)
@pytest.mark.parametrize("bias", [True, False])
def test_written_out_derivatives_equal_torch_func_jvp(activation, bias):
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(4, 6, bias=bias),
        activation(),
        nn.Linear(6, 5, bias=bias),
        activation(),
        nn.Linear(5, 3, bias=bias),
    ).double()
    X = torch.randn(8, 4, dtype=torch.float64)
    T = torch.randn(3 * 8, 4, dtype=torch.float64)  # three directions per row
    for order in (1, 2):
        fast = directional_derivatives(net, X, T, order=order)
        generic = directional_derivatives(_Wrapped(net), X, T, order=order)
        for a, b in zip(fast, generic, strict=True):
            if b is None:
                assert a is None
            else:
                np.testing.assert_allclose(
                    a.detach(), b.detach(), rtol=1e-12, atol=1e-14
                )
    # and so are the parameter gradients of a function of them
    grads = []
    for module in (net, _Wrapped(net)):
        f, df, d2f = directional_derivatives(module, X, T)
        net.zero_grad()
        (f.sum() + (df**2).sum() + d2f.sum()).backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    for a, b in zip(*grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_sampled_partners_match_all_partners_within_monte_carlo_error():
    X, y = _tiny_problem(3, d=4, n=9)
    net = _tiny_net(4, 3, "tanh", 3)
    m1, m2 = mixing_moments(1.0)
    exact = mixup_terms(net, X, y, m1=m1, m2=m2, partners=partner_moments(X))
    # one partner per row, many independent rows per anchor: per-pair values
    draws = 4000
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(0, len(X), (len(X) * draws,), generator=gen)
    anchors = torch.arange(len(X)).repeat(draws)
    with torch.no_grad():
        pairs = mixup_terms(
            net, X[anchors], y[anchors], m1=m1, m2=m2, partners=X[idx][:, None, :]
        )
    for name in ("R1", "R2", "R3"):
        values = getattr(pairs, name).reshape(draws, len(X))  # anchor per column
        se = values.std(0) / np.sqrt(draws)
        target = getattr(exact, name)
        assert torch.all((values.mean(0) - target).abs() < 4.5 * se), name
        assert float(se.max()) < 0.1 * float(target.abs().max())  # informative
    # several partners per anchor in one call average the same per-pair values
    block = X[idx[: len(X) * 3]].reshape(3, len(X), -1).transpose(0, 1)
    many = mixup_terms(net, X, y, m1=m1, m2=m2, partners=block)
    single = [
        mixup_terms(net, X, y, m1=m1, m2=m2, partners=block[:, s : s + 1])
        for s in range(3)
    ]
    for name in ("R1", "R2", "R3"):
        mean = sum(getattr(t, name) for t in single) / 3
        np.testing.assert_allclose(getattr(many, name), mean, rtol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
def test_r3_vanishes_for_relu_and_not_for_tanh(bias):
    X, y = _tiny_problem(4)
    moments = partner_moments(X)
    relu = mixup_terms(
        _tiny_net(3, 3, "relu", 4, bias=bias), X, y, m1=0.3, m2=0.15, partners=moments
    )
    assert torch.all(relu.R3 == 0) and torch.all(relu.R2 > 0)
    tanh = mixup_terms(
        _tiny_net(3, 3, "tanh", 4, bias=bias), X, y, m1=0.3, m2=0.15, partners=moments
    )
    assert float(tanh.R3.abs().mean()) > 1e-4
    assert is_piecewise_linear(MLPModule(3, 2, (4,), "relu"))
    assert not is_piecewise_linear(MLPModule(3, 2, (4,), "tanh"))


def test_partner_moments_are_the_one_over_n_covariance():
    X, _ = _tiny_problem(5, d=4, n=30)
    w = torch.rand(30, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for weights in (None, w):
        mean, factor = partner_moments(X, weights)
        ww = torch.full((30,), 1 / 30.0, dtype=torch.float64) if weights is None else w
        ww = ww / ww.sum()
        Xc = X - ww @ X
        np.testing.assert_allclose(mean, ww @ X, rtol=1e-12)
        np.testing.assert_allclose(
            factor @ factor.T, Xc.T @ (Xc * ww[:, None]), atol=1e-12
        )
    # a rank-deficient covariance keeps only its non-zero directions
    Xr = torch.cat([X[:, :2], X[:, :2].sum(1, keepdim=True)], 1)
    assert partner_moments(Xr).factor.shape == (3, 2)


# -------------------------------------------------- the training objective
def _penalty_net(activation, terms, n_partners="all"):
    net = _MixupPenaltyNet(
        MLPModule,
        module__n_features=3,
        module__n_outputs=3,
        module__hidden_layer_sizes=(5,),
        module__activation=activation,
        mixup_alpha=0.5,
        terms=terms,
        n_partners=n_partners,
        train_split=None,
        verbose=0,
        random_state=0,
    ).initialize()
    net.module_.double()
    return net


@pytest.mark.parametrize(
    "activation, terms", [("tanh", "R1+R2+R3"), ("relu", "R1+R2"), ("tanh", "R2")]
)
def test_training_gradient_matches_finite_differences(activation, terms):
    X, y = _tiny_problem(6, n=11)
    net = _penalty_net(activation, terms)
    net._partners_ = partner_moments(X)
    params = list(net.module_.parameters())
    gen = torch.Generator().manual_seed(2)
    direction = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in params]

    def loss_and_grad():
        for p in params:
            p.grad = None
        loss = net.train_step_single((X, y))["loss"]
        slope = sum(
            float((p.grad * v).sum()) for p, v in zip(params, direction, strict=True)
        )
        return float(loss.detach()), slope

    _, analytic = loss_and_grad()
    values = []
    for h in (1e-5, -1e-5):
        with torch.no_grad():
            for p, v in zip(params, direction, strict=True):
                p.add_(h * v)
        values.append(loss_and_grad()[0])
        with torch.no_grad():
            for p, v in zip(params, direction, strict=True):
                p.sub_(h * v)
    numeric = (values[0] - values[1]) / 2e-5
    assert abs(analytic - numeric) < 1e-7 * max(1.0, abs(numeric))
    # and the value is the mean CE plus exactly the chosen terms
    m1, m2 = mixing_moments(0.5)
    full = mixup_terms(net.module_, X, y, m1=m1, m2=m2, partners=net._partners_)
    expected = full.standard + full.R2
    expected = expected + (full.R1 if "R1" in terms else 0)
    expected = expected + (full.R3 if "R3" in terms else 0)
    value = float(expected.mean().detach())
    np.testing.assert_allclose(loss_and_grad()[0], value, rtol=1e-12)


def test_sampled_training_partners_come_from_the_training_set():
    X, y = _tiny_problem(7, n=20)
    net = _penalty_net("tanh", "R1+R2+R3", n_partners=3)
    net._partners_ = X
    block = net._batch_partners(X[:5])
    assert block.shape == (5, 3, 3)
    rows = {tuple(r.tolist()) for r in X}
    assert all(tuple(r.tolist()) in rows for r in block.reshape(-1, 3))
    assert isinstance(partner_moments(X), PartnerMoments)
    assert resolve_n_partners("auto", 4) == "all"
    assert resolve_n_partners("auto", 5) == 1
    assert resolve_n_partners(7, 100) == 7


# --------------------------------------------------------------- estimator
def test_fit_attributes_and_predictions(data):
    X, y = data
    clf = MixupRegularizedMLPClassifier(**FAST).fit(X, y)
    # siblings of one base: no inherited (and deleted) mixup_prob, no mixing net
    assert isinstance(clf, _BaseMixupMLPClassifier)
    assert not isinstance(clf, MixupMLPClassifier)
    assert "mixup_prob" not in clf.get_params()
    assert isinstance(clf.net_, _MixupPenaltyNet)
    assert not isinstance(clf.net_, MixupNeuralNetClassifier)
    assert isinstance(clf.net_, _BaseMixupNet)
    assert "mixup_prob" not in clf.net_.get_params()
    np.testing.assert_array_equal(clf.classes_, ["ant", "bee", "cat"])
    assert clf.n_iter_ == len(clf.loss_curve_) <= 15
    assert clf.device_ == "cpu" and clf.n_features_in_ == 6
    assert set(clf.predict(X)) <= set(y) and clf.score(X, y) > 0.7
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert not hasattr(clf.net_, "_partners_")  # the training data is not kept
    assert "mixup_prob" not in clf.get_params()


def test_same_seed_same_weights_and_terms_change_training(data):
    X, y = data

    def weights(clf):
        return [p.detach().numpy().copy() for p in clf.net_.module_.parameters()]

    a = weights(MixupRegularizedMLPClassifier(activation="tanh", **FAST).fit(X, y))
    b = weights(MixupRegularizedMLPClassifier(activation="tanh", **FAST).fit(X, y))
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_array_equal(wa, wb)
    for other in ({"terms": "R2"}, {"n_partners": "all"}, {"mixup_alpha": 0.2}):
        c = weights(
            MixupRegularizedMLPClassifier(activation="tanh", **FAST, **other).fit(X, y)
        )
        assert not np.allclose(a[0], c[0]), other


def test_tiny_mixup_alpha_is_plain_training(data):
    # m1, m2 -> 0 as mixup_alpha -> 0: the penalty vanishes, and with all partners
    # (no draws) the fit is ERM on the same batches as MixupMLPClassifier's.
    X, y = data
    params = {**FAST, "activation": "tanh", "mixup_alpha": 1e-9}
    pen = MixupRegularizedMLPClassifier(n_partners="all", **params).fit(X, y)
    erm = MixupMLPClassifier(mixup_prob=0.0, **params).fit(X, y)
    np.testing.assert_allclose(pen.loss_curve_, erm.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(pen.predict_proba(X), erm.predict_proba(X), atol=1e-5)


def test_clone_pickle_partial_fit_early_stopping(data):
    X, y = data
    clf = MixupRegularizedMLPClassifier(terms="R1+R2", **FAST)
    assert clone(clf).get_params() == clf.get_params()
    clf.fit(X, y)
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    loaded.partial_fit(X[:50], y[:50])
    assert loaded.n_iter_ == clf.n_iter_ + 1
    inc = MixupRegularizedMLPClassifier(**FAST)
    inc.partial_fit(X[:100], y[:100], classes=np.unique(y))
    inc.partial_fit(X[100:], y[100:])
    assert inc.n_iter_ == 2
    es = MixupRegularizedMLPClassifier(
        early_stopping=True, **{**FAST, "max_iter": 60, "n_iter_no_change": 3}
    ).fit(X, y)
    assert es.n_iter_ < 60 and len(es.validation_scores_) == es.n_iter_


@pytest.mark.parametrize(
    "params, match",
    [
        ({"terms": "R1"}, "terms"),
        ({"n_partners": 0}, "n_partners"),
        ({"mixup_prob": 0.5}, "mixup_prob"),
    ],
)
def test_invalid_parameters(data, params, match):
    X, y = data
    with pytest.raises((ValueError, TypeError), match=match):
        MixupRegularizedMLPClassifier(**params).fit(X, y)


def test_canonical_mixed_dataframe_pipeline():
    from sklearn.pipeline import Pipeline

    frame, target = mixed_table(n=160)
    pipe = Pipeline(
        [
            ("pre", mixed_table_preprocessor()),
            ("clf", MixupRegularizedMLPClassifier(**{**FAST, "max_iter": 30})),
        ]
    )
    pipe.fit(frame, target)
    assert set(pipe.predict(frame)) <= {"yes", "no"}
    assert pipe.score(frame, target) > 0.7
    # the theory of the fitted network, on the data it was trained on
    from skmixup.theory import approximate_mixup_loss, mixup_loss

    Xt = pipe[:-1].transform(frame)
    approx = approximate_mixup_loss(pipe[-1], Xt, target, mixup_alpha=1.0)
    exact = mixup_loss(pipe[-1], Xt, target, mixup_alpha=1.0)
    assert approx.R3 == 0.0 and approx.R2 > 0  # ReLU network
    assert abs(approx.total - exact) < abs(approx.standard - exact)
    grid = GridSearchCV(pipe, {"clf__terms": ["R2", "R1+R2+R3"]}, cv=2).fit(
        frame, target
    )
    assert grid.best_params_["clf__terms"] in ("R2", "R1+R2+R3")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fit_and_pickle_to_cpu(data):
    X, y = data
    clf = MixupRegularizedMLPClassifier(
        **{**FAST, "device": "cuda", "activation": "tanh"}
    )
    clf.fit(X, y)
    assert clf.device_ == "cuda" and next(clf.net_.module_.parameters()).is_cuda
    proba = clf.predict_proba(X)
    loaded = pickle.loads(pickle.dumps(clf))
    assert loaded.device_ == "cpu"
    np.testing.assert_allclose(loaded.predict_proba(X), proba, atol=1e-5)


def test_reproduce_experiments_include_the_penalty_mlp():
    from skmixup.experiments import generalization_experiment, robustness_experiment
    from skmixup.experiments._report import summary

    mlp = {"hidden_layer_sizes": (8,), "max_iter": 3}
    robust = robustness_experiment(
        ["moons"], eps=(0.0, 0.2), mlp_params=mlp, n_splits=1
    )
    name = "MixupRegularizedMLPClassifier(alpha=5.0, beta=0.5)"
    assert name in {r["model"] for r in robust}
    gaps = generalization_experiment(
        ["moons"],
        mixups=(None, 1.0),
        models=("mlp", "mlp_penalty"),
        mlp_params=mlp,
        n_splits=1,
    )
    assert [(r["model"], r["mixup"]) for r in gaps] == [
        ("MLP ERM (mixup_prob=0)", "ERM"),
        ("MixupMLPClassifier(alpha=1.0)", "1.0"),
        ("MixupRegularizedMLPClassifier(alpha=1.0)", "1.0"),
    ]
    text = " ".join(summary({"robust": robust, "gaps": gaps}))
    assert f"{name} " in text and "vs MLP ERM (mixup_prob=0)" in text
    assert "penalty MLP" in text
