"""skmixup.theory on PyTorch classifiers (MLPs and skorch nets)."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from _torch_helpers import TORCH_MODULE_MARKS  # noqa: E402
from scipy import special  # noqa: E402
from sklearn.datasets import make_moons  # noqa: E402
from skorch import NeuralNetBinaryClassifier  # noqa: E402
from torch import nn  # noqa: E402

from skmixup._mixing import mixing_moments  # noqa: E402
from skmixup.neural_network import (  # noqa: E402
    MixupMLPClassifier,
    MixupNeuralNetClassifier,
    MixupRegularizedMLPClassifier,
)
from skmixup.theory import (  # noqa: E402
    TheoryAssumptionWarning,
    approximate_mixup_loss,
    mixup_loss,
    mixup_radius,
)

pytestmark = TORCH_MODULE_MARKS


@pytest.fixture(scope="module")
def moons():
    X, y = make_moons(60, noise=0.2, random_state=0)
    X = (X - X.mean(0)) / X.std(0)
    return X, np.array(["a", "b"])[y]


def _mlp(cls, X, y, activation, scale):
    clf = cls(
        hidden_layer_sizes=(16,), activation=activation, max_iter=3, random_state=0
    ).fit(X, y)
    with torch.no_grad():
        for p in clf.net_.module_.parameters():
            p.mul_(scale)
    return clf


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("cls", [MixupMLPClassifier, MixupRegularizedMLPClassifier])
def test_approximation_within_one_percent_for_small_weights(moons, cls, activation):
    X, y = moons
    clf = _mlp(cls, X, y, activation, scale=0.3)
    for a, b in ((1.0, None), (5.0, 0.5)):
        exact = mixup_loss(clf, X, y, mixup_alpha=a, mixup_beta=b)
        approx = approximate_mixup_loss(clf, X, y, mixup_alpha=a, mixup_beta=b)
        assert abs(approx.total - exact) < 0.01 * exact
        # the expansion must add something the standard loss misses
        assert abs(approx.total - exact) < 0.5 * abs(exact - approx.standard)
        assert (approx.R3 == 0.0) == (activation == "relu")
    code = (y == "b").astype(int)
    ll = -np.mean(np.log(clf.predict_proba(X)[np.arange(len(y)), code]))
    assert approx.standard == pytest.approx(ll, rel=1e-5)  # float32 net, float64 copy


def test_mixup_loss_of_a_network_is_exact_in_float64(moons):
    X, y = moons
    clf = _mlp(MixupMLPClassifier, X, y, "tanh", scale=1.0)
    a = mixup_loss(clf, X, y, mixup_alpha=0.5, mixup_beta=2.0)
    b = mixup_loss(clf, X, y, mixup_alpha=0.5, mixup_beta=2.0, method="pairs")
    assert abs(a - b) < 1e-10  # Lemma 3.1 to quadrature precision: float64 path
    # and it is Eq. (1): Monte Carlo over pairs and lambda with the float32 model
    rng = np.random.RandomState(0)
    m = 20000
    i, j = rng.randint(len(X), size=(2, m))
    lam = rng.beta(0.5, 2.0, m)
    logp = clf.predict_log_proba(lam[:, None] * X[i] + (1 - lam[:, None]) * X[j])
    code = (y == "b").astype(int)
    ce = -(lam * logp[np.arange(m), code[i]] + (1 - lam) * logp[np.arange(m), code[j]])
    assert abs(ce.mean() - a) < 4 * ce.std() / np.sqrt(m)


def test_sampled_partners_and_sample_weight(moons):
    X, y = moons
    clf = _mlp(MixupRegularizedMLPClassifier, X, y, "tanh", scale=1.0)
    exact = approximate_mixup_loss(clf, X, y, mixup_alpha=1.0)
    runs = [
        approximate_mixup_loss(
            clf, X, y, mixup_alpha=1.0, n_partners=160, random_state=seed
        )
        for seed in range(5)
    ]
    again = approximate_mixup_loss(
        clf, X, y, mixup_alpha=1.0, n_partners=160, random_state=0
    )
    assert again == runs[0]
    for name in ("R1", "R2", "R3"):
        values = np.array([getattr(r, name) for r in runs])
        spread = values.std(ddof=1) / np.sqrt(len(values))
        assert abs(values.mean() - getattr(exact, name)) < 5 * spread + 1e-12
        assert values.std() < 0.2 * abs(getattr(exact, name))
    # an integer weight is a duplicated row (anchor and partner), exactly
    w = np.ones(len(X))
    w[:10] = 2.0
    weighted = approximate_mixup_loss(clf, X, y, mixup_alpha=1.0, sample_weight=w)
    Xd, yd = np.vstack([X, X[:10]]), np.concatenate([y, y[:10]])
    duplicated = approximate_mixup_loss(clf, Xd, yd, mixup_alpha=1.0)
    np.testing.assert_allclose(weighted, duplicated, rtol=1e-10)


def _skorch(cls, module, **kw):
    return cls(module, max_epochs=1, lr=0.0, train_split=None, verbose=0, **kw)


def test_skorch_nets_binary_sigmoid_equals_two_logit_softmax(moons):
    # notes, claim 6: logits (0, f) under softmax give the sigmoid model's terms
    X, y = moons
    X32, yc = X.astype(np.float32), (y == "b").astype(np.int64)
    torch.manual_seed(0)
    body = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))

    class TwoLogits(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = body

        def forward(self, x):
            f = self.body(x)
            return torch.cat([torch.zeros_like(f), f], 1)

    sig = _skorch(NeuralNetBinaryClassifier, body).fit(X32, yc.astype(np.float32))
    soft = _skorch(MixupNeuralNetClassifier, TwoLogits(), random_state=0).fit(X32, yc)
    sig.module_.load_state_dict(body.state_dict())
    soft.module_.body.load_state_dict(body.state_dict())
    a = approximate_mixup_loss(sig, X, yc, mixup_alpha=0.4)
    b = approximate_mixup_loss(soft, X, yc, mixup_alpha=0.4)
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-15)
    assert a.R3 != 0.0
    la = mixup_loss(sig, X, yc, mixup_alpha=0.4)
    assert la == pytest.approx(mixup_loss(soft, X, yc, mixup_alpha=0.4), rel=1e-12)


def _bias_free_relu_net(X, y, bias=False):
    """A two-class ReLU net with f_1 - f_0 = x_0 + small extra units."""
    module = nn.Sequential(
        nn.Linear(2, 4, bias=bias), nn.ReLU(), nn.Linear(4, 2, bias=bias)
    )
    net = _skorch(MixupNeuralNetClassifier, module, random_state=0)
    net.fit(X.astype(np.float32), y)
    with torch.no_grad():
        first, last = net.module_[0], net.module_[2]
        first.weight.copy_(
            torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.3, 0.5], [-0.2, 0.4]])
        )
        last.weight.copy_(torch.tensor([[0, 1.0, 0.1, 0.0], [1.0, 0, 0.0, 0.2]]) * 3)
    return net


def test_radius_of_a_bias_free_relu_network_and_the_theorem_inequality():
    rng = np.random.RandomState(0)
    n = 60
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 2)) * 0.3
    X[:, 0] += np.where(y == 1, 1.5, -1.5)
    X -= X.mean(0)  # centered, separable by x_0 (and by the net)
    net = _bias_free_relu_net(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TheoryAssumptionWarning)
        radius = mixup_radius(net, X, mixup_alpha=1.0, y=y, per_sample=True)
    # by hand: g_i = grad (f_1 - f_0) at x_i through the active units
    W1 = net.module_[0].weight.detach().double().numpy()
    W2 = net.module_[2].weight.detach().double().numpy()
    active = (X @ W1.T > 0).astype(float)
    G = (active * (W2[1] - W2[0])) @ W1
    s = np.einsum("ij,ij->i", G, X)
    m1, m2 = mixing_moments(1.0)
    c_x = np.linalg.norm(X, axis=1).min() / np.sqrt(2)
    R = np.min(np.abs(s) / (np.linalg.norm(G, axis=1) * np.linalg.norm(X, axis=1)))
    assert radius.eps_mix == pytest.approx(R * c_x * m1, rel=1e-12)
    assert radius.eps_mix_l2 == pytest.approx(R * c_x * m1 * np.sqrt(2), rel=1e-12)
    np.testing.assert_allclose(
        radius.per_sample, m1 * np.abs(s) / np.linalg.norm(G, axis=1), rtol=1e-12
    )
    # Theorem (network version): L_std + R1 + R2 (R3 = 0) >= second-order
    # adversarial loss at the l2 radius eps_mix sqrt(d), with ||g_i|| for ||theta||
    approx = approximate_mixup_loss(net, X, y, mixup_alpha=1.0)
    assert approx.R3 == 0.0 and approx.R1 > 0
    p1 = special.expit(s)
    eps = radius.eps_mix_l2
    gn = np.linalg.norm(G, axis=1)
    adv = np.mean(
        np.logaddexp(0, s)
        - y * s
        + eps * np.abs(p1 - y) * gn
        + eps**2 / 2 * p1 * (1 - p1) * gn**2
    )
    assert approx.total >= adv
    assert approx.total - approx.standard > 0


def test_radius_warns_and_needs_labels_for_multiclass(moons):
    rng = np.random.RandomState(1)
    y = np.arange(40) % 2
    X = rng.normal(size=(40, 2))
    X[:, 0] += np.where(y == 1, 2.0, -2.0)
    net = _bias_free_relu_net(X, y, bias=True)
    with pytest.warns(TheoryAssumptionWarning, match="homogeneous"):
        mixup_radius(net, X, mixup_alpha=1.0)
    Xm, ym = moons
    clf = MixupMLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    clf.fit(np.vstack([Xm, Xm + 3]), np.concatenate([ym, np.full(len(ym), "c")]))
    with pytest.raises(ValueError, match="needs y"):
        mixup_radius(clf, Xm, mixup_alpha=1.0)
    with pytest.warns(TheoryAssumptionWarning):
        result = mixup_radius(clf, Xm, mixup_alpha=1.0, y=ym)
    assert result.eps_mix >= 0
    with pytest.raises(ValueError, match="features"):
        approximate_mixup_loss(clf, Xm[:, :1], ym, mixup_alpha=1.0)


def test_nll_loss_net_on_probabilities_equals_logits_net(moons):
    # log-probabilities are logits shifted per row; the terms do not see the shift
    X, y = moons
    X32, yc = X.astype(np.float32), (y == "b").astype(np.int64)
    torch.manual_seed(1)
    body = nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 2))
    logits = _skorch(MixupNeuralNetClassifier, body, random_state=0).fit(X32, yc)
    proba = _skorch(
        MixupNeuralNetClassifier,
        nn.Sequential(body, nn.Softmax(dim=1)),
        criterion=nn.NLLLoss,
        random_state=0,
    ).fit(X32, yc)
    logits.module_.load_state_dict(body.state_dict())
    proba.module_[0].load_state_dict(body.state_dict())
    a = approximate_mixup_loss(logits, X, yc, mixup_alpha=1.0)
    b = approximate_mixup_loss(proba, X, yc, mixup_alpha=1.0)
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert mixup_loss(proba, X, yc, mixup_alpha=1.0) == pytest.approx(
        mixup_loss(logits, X, yc, mixup_alpha=1.0), rel=1e-10
    )


def test_unfitted_networks_are_rejected(moons):
    from sklearn.exceptions import NotFittedError

    X, y = moons
    with pytest.raises(NotFittedError):
        approximate_mixup_loss(MixupRegularizedMLPClassifier(), X, y, mixup_alpha=1.0)
    with pytest.raises(NotFittedError):
        mixup_radius(MixupMLPClassifier(), X, mixup_alpha=1.0)
