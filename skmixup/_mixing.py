"""Framework-free Mixup mathematics.

Everything here is plain numpy/scipy and knows nothing of scikit-learn estimators
or torch. Notation (Zhang et al., ICLR 2021, Lemma 3.1):

* ``lambda ~ Beta(alpha, beta)`` is the Mixup weight of the *anchor* sample ``i``;
  the mixed input is ``lambda * x_i + (1 - lambda) * x_j``.
* ``D~`` is the law of Lemma 3.1 (part 1)::

      D~ = a/(a+b) Beta(a+1, b) + b/(a+b) Beta(b+1, a),   (a, b) = (alpha, beta)

  Under ``D~`` the label is *not* mixed: for any loss that is affine in the label,
  the Mixup loss equals ``E_{lambda~D~} E_{r~D_X} l(lambda x_i + (1-lambda) r, y_i)``.
* ``m1 = E_{D~}[1 - lambda]`` and ``m2 = E_{D~}[(1 - lambda)^2] = m1 / 2``.
"""

import numbers

import numpy as np
from scipy import sparse, special

__all__ = [
    "resolve_beta",
    "mixing_moments",
    "beta_quadrature",
    "dtilde_quadrature",
    "sample_beta",
    "sample_dtilde",
    "draw_partners",
    "check_n_partners",
    "mix_rows",
    "label_kernel_bandwidth",
    "resolve_kernel_bandwidth",
    "draw_kernel_partners",
    "draw_mixed_samples",
]


def resolve_beta(mixup_alpha, mixup_beta=None):
    """Return ``(alpha, beta)`` as floats, with ``beta=None`` meaning ``beta=alpha``.

    Raises
    ------
    ValueError
        If either parameter is not a finite number > 0.
    """
    beta = mixup_alpha if mixup_beta is None else mixup_beta
    out = []
    for name, value in (("mixup_alpha", mixup_alpha), ("mixup_beta", beta)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {value!r}.")
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
        out.append(float(value))
    return out[0], out[1]


def mixing_moments(mixup_alpha, mixup_beta=None):
    """Closed-form moments ``m1 = E[1 - lambda]`` and ``m2 = E[(1 - lambda)^2]``.

    Both expectations are under the law ``D~`` of Lemma 3.1, not under
    ``Beta(alpha, beta)``.

    Parameters
    ----------
    mixup_alpha, mixup_beta : float
        Parameters of the Mixup law ``Beta(alpha, beta)``; ``mixup_beta=None``
        means ``beta = alpha``.

    Returns
    -------
    m1, m2 : float

    Examples
    --------
    >>> from skmixup._mixing import mixing_moments
    >>> m1, m2 = mixing_moments(1.0)
    >>> round(m1, 4), round(m2, 4)
    (0.3333, 0.1667)
    """
    a, b = resolve_beta(mixup_alpha, mixup_beta)
    m1 = 2.0 * a * b / ((a + b) * (a + b + 1.0))
    return m1, m1 / 2.0


def beta_quadrature(mixup_alpha, mixup_beta=None, n_nodes=16):
    """Gauss-Jacobi nodes and weights for ``lambda ~ Beta(alpha, beta)`` on [0, 1].

    ``sum(w * g(nodes))`` approximates ``E[g(lambda)]`` and is exact for
    polynomials ``g`` of degree ``2 * n_nodes - 1``.

    Returns
    -------
    nodes, weights : ndarray of shape (n_nodes,)
        The weights are positive and sum to one.

    Examples
    --------
    >>> from skmixup._mixing import beta_quadrature
    >>> nodes, weights = beta_quadrature(2.0, 3.0, n_nodes=4)
    >>> round(float(weights @ nodes), 12)  # mean of Beta(2, 3)
    0.4
    """
    a, b = resolve_beta(mixup_alpha, mixup_beta)
    n_nodes = _check_n_nodes(n_nodes)
    # Jacobi weight (1 - x)^p (1 + x)^q on [-1, 1]; lambda = (1 + x) / 2 turns it
    # into lambda^q (1 - lambda)^p, the Beta(q + 1, p + 1) density.
    x, w = special.roots_jacobi(n_nodes, b - 1.0, a - 1.0)
    return (1.0 + x) / 2.0, w / w.sum()


def dtilde_quadrature(mixup_alpha, mixup_beta=None, n_nodes=16):
    """Quadrature nodes and weights for ``lambda ~ D~`` of Lemma 3.1.

    For ``alpha == beta``, ``D~ = Beta(alpha + 1, alpha)`` and ``n_nodes``
    Gauss-Jacobi nodes are returned. Otherwise ``D~`` is a two-component mixture and
    each component gets its own ``n_nodes`` Gauss-Jacobi rule (``2 * n_nodes``
    nodes in all), which keeps the rule exact for polynomials of degree
    ``2 * n_nodes - 1``.

    Examples
    --------
    >>> from skmixup._mixing import dtilde_quadrature, mixing_moments
    >>> nodes, weights = dtilde_quadrature(0.5, 5.0)
    >>> m1, _ = mixing_moments(0.5, 5.0)
    >>> bool(abs(weights @ (1 - nodes) - m1) < 1e-12)
    True
    """
    a, b = resolve_beta(mixup_alpha, mixup_beta)
    if a == b:
        return beta_quadrature(a + 1.0, a, n_nodes)
    n1, w1 = beta_quadrature(a + 1.0, b, n_nodes)
    n2, w2 = beta_quadrature(b + 1.0, a, n_nodes)
    nodes = np.concatenate([n1, n2])
    weights = np.concatenate([w1 * a / (a + b), w2 * b / (a + b)])
    return nodes, weights


def sample_beta(mixup_alpha, mixup_beta, size, random_state):
    """Draw ``lambda ~ Beta(alpha, beta)`` from a ``numpy.random.RandomState``.

    For very small parameters the legacy sampler can return NaN (both gamma draws
    underflow); those draws are replaced by their limit law, ``1`` with probability
    ``alpha / (alpha + beta)`` and ``0`` otherwise.
    """
    a, b = resolve_beta(mixup_alpha, mixup_beta)
    lam = random_state.beta(a, b, size)
    bad = ~np.isfinite(lam)
    if np.any(bad):
        lam[bad] = (random_state.random_sample(bad.sum()) < a / (a + b)).astype(float)
    return lam


def sample_dtilde(mixup_alpha, mixup_beta, size, random_state):
    """Draw ``lambda ~ D~``: draw ``l0 ~ Beta(alpha, beta)``, keep it with probability
    ``l0``, else return ``1 - l0``.

    Examples
    --------
    >>> import numpy as np
    >>> from skmixup._mixing import sample_dtilde
    >>> lam = sample_dtilde(1.0, 1.0, 100_000, np.random.RandomState(0))
    >>> bool(abs(lam.mean() - 2 / 3) < 0.01)  # D~ = Beta(2, 1) when alpha = beta = 1
    True
    """
    lam0 = sample_beta(mixup_alpha, mixup_beta, size, random_state)
    keep = random_state.random_sample(np.shape(lam0)) < lam0
    return np.where(keep, lam0, 1.0 - lam0)


def draw_partners(n_samples, n_partners, random_state, sample_weight=None):
    """Seeded partner indices and pair weights.

    Parameters
    ----------
    n_samples : int
    n_partners : int or "all"
        ``"all"`` pairs every sample with every sample (itself included), as the
        double sum of the paper's Eq. (1) does.
    random_state : numpy.random.RandomState
    sample_weight : ndarray of shape (n_samples,), default=None
        Partners are drawn with probability proportional to ``sample_weight``, so
        that a weight of 2 acts like a duplicated row in expectation.

    Returns
    -------
    partners : ndarray of shape (n_samples, n_partners) or None
        ``None`` for ``"all"``.
    pair_weight : ndarray of shape (n_samples, n_partners) or (n_samples,)
        Weight of each drawn pair within its anchor (rows sum to one); for ``"all"``
        the weight of partner ``j``, shared by every anchor.
    """
    if check_n_partners(n_partners, ("all",)) == "all":
        if sample_weight is None:
            return None, np.full(n_samples, 1.0 / n_samples)
        sw = np.asarray(sample_weight, dtype=float)
        return None, sw / sw.sum()
    p = None
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=float)
        p = sw / sw.sum()
    partners = random_state.choice(n_samples, size=(n_samples, int(n_partners)), p=p)
    return partners, np.full(partners.shape, 1.0 / n_partners)


def check_n_partners(n_partners, options=("all", "auto")):
    """Return ``n_partners`` (an int >= 1 or one of ``options``) or raise.

    Raises
    ------
    TypeError
        If it is neither an int (bools excluded) nor a string.
    ValueError
        If it is an int < 1 or a string not in ``options``.
    """
    allowed = " or ".join(["an int >= 1", *(repr(o) for o in options)])
    if isinstance(n_partners, str):
        if n_partners not in options:
            raise ValueError(f"n_partners must be {allowed}, got {n_partners!r}.")
        return n_partners
    if isinstance(n_partners, bool) or not isinstance(n_partners, numbers.Integral):
        raise TypeError(f"n_partners must be {allowed}, got {n_partners!r}.")
    if n_partners < 1:
        raise ValueError(f"n_partners must be {allowed}, got {n_partners}.")
    return int(n_partners)


def mix_rows(X, i, j, lam):
    """Rows ``lam * X[i] + (1 - lam) * X[j]`` for dense arrays or sparse matrices.

    Sparse input (any SciPy sparse format) gives a CSR matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from skmixup._mixing import mix_rows
    >>> X = np.array([[0.0, 2.0], [4.0, 6.0]])
    >>> mix_rows(X, [0], [1], np.array([0.25]))
    array([[3., 5.]])
    """
    lam = np.asarray(lam)
    i = np.asarray(i)
    j = np.asarray(j)
    if sparse.issparse(X):
        X = sparse.csr_matrix(X)
        left = sparse.diags(lam.astype(X.dtype)) @ X[i]
        right = sparse.diags((1.0 - lam).astype(X.dtype)) @ X[j]
        return sparse.csr_matrix(left + right)
    X = np.asarray(X)
    lam = lam.astype(X.dtype, copy=False)
    return lam[:, None] * X[i] + (1 - lam)[:, None] * X[j]


def label_kernel_bandwidth(y, sample_weight=None):
    """Default bandwidth of the C-Mixup label kernel: Silverman's rule of thumb.

    ``h = 0.9 * min(sd, IQR / 1.34) * n ** (-1/5)``, computed per target column
    (with ``sample_weight`` as frequency weights for ``sd`` and the effective
    sample size ``n = (sum w)^2 / sum w^2``) and averaged over the columns; if the
    IQR of a column is zero its ``sd`` is used alone. It is the bandwidth that
    Silverman (1986, Eq. 3.31) recommends for a Gaussian kernel density estimate
    of the labels: partners are then drawn from about the labels a density
    estimate would smooth together. Returns ``0.0`` when every label is equal.

    Examples
    --------
    >>> import numpy as np
    >>> from skmixup._mixing import label_kernel_bandwidth
    >>> y = np.random.RandomState(0).normal(size=1000)
    >>> round(label_kernel_bandwidth(y), 2)  # about 0.9 * 1000 ** (-1/5) = 0.226
    0.22
    """
    Y = np.asarray(y, dtype=float)
    Y = Y.reshape(len(Y), -1)
    w = np.ones(len(Y)) if sample_weight is None else np.asarray(sample_weight, float)
    w = w / w.sum()
    n_eff = 1.0 / np.sum(w**2)
    widths = []
    for col in Y.T:
        mean = w @ col
        sd = np.sqrt(max(w @ (col - mean) ** 2, 0.0))
        q75, q25 = np.percentile(col[w > 0], [75, 25])
        spread = min(sd, (q75 - q25) / 1.34) if q75 > q25 else sd
        widths.append(0.9 * spread * n_eff ** (-0.2))
    return float(np.mean(widths))


def resolve_kernel_bandwidth(partners, kernel_bandwidth, y, sample_weight=None):
    """The bandwidth a regressor uses: ``None`` for ``partners="uniform"``, the
    given ``kernel_bandwidth``, or :func:`label_kernel_bandwidth` of ``y`` when it is
    None. Equal labels give 1.0 (every kernel value is then 1 for any bandwidth:
    uniform partners)."""
    if partners == "uniform":
        return None
    if kernel_bandwidth is not None:
        return float(kernel_bandwidth)
    h = label_kernel_bandwidth(y, sample_weight)
    return h if h > 0 else 1.0


def draw_kernel_partners(
    y, anchors, n_draws, bandwidth, random_state, sample_weight=None, max_block=2**22
):
    """Partners drawn by the C-Mixup label kernel (Yao et al., NeurIPS 2022, Eq. 6).

    For anchor ``i`` the partner ``j`` is drawn with probability proportional to
    ``s_j exp(-||y_i - y_j||^2 / (2 h^2))`` (``s`` the sample weights, ``h`` the
    bandwidth), over all samples, ``i`` itself included. Work and memory are
    ``O(n)`` per anchor, in blocks of at most ``max_block`` kernel entries.

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
    anchors : ndarray of int, shape (n_anchors,)
        Anchor indices; each gets ``n_draws`` partners.
    n_draws : int
    bandwidth : float > 0
    random_state : numpy.random.RandomState
    sample_weight : ndarray of shape (n_samples,), default=None

    Returns
    -------
    partners : ndarray of shape (n_anchors, n_draws)
    """
    Y = np.asarray(y, dtype=float)
    Y = Y.reshape(len(Y), -1)
    n = len(Y)
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    anchors = np.asarray(anchors)
    out = np.empty((len(anchors), n_draws), dtype=np.intp)
    block = max(1, int(max_block // max(n, 1)))
    for start in range(0, len(anchors), block):
        idx = anchors[start : start + block]
        d2 = ((Y[idx, None, :] - Y[None, :, :]) ** 2).sum(-1)
        # Shift by the smallest distance of each row so that the largest kernel
        # value is 1 and a row never underflows to all zeros.
        d2 -= d2.min(axis=1, keepdims=True)
        cum = np.cumsum(np.exp(-d2 / (2.0 * bandwidth**2)) * sw, axis=1)
        cum /= cum[:, -1:]
        # One sorted search over all rows at once: row k lives in [k, k + 1].
        rows = np.arange(len(idx))[:, None]
        flat = (cum + rows).ravel()
        u = random_state.random_sample((len(idx), n_draws)) + rows
        pos = np.searchsorted(flat, u.ravel(), side="right").reshape(u.shape)
        out[start : start + block] = np.minimum(pos - rows * n, n - 1)
    return out


def draw_mixed_samples(
    n_samples,
    n_mixed,
    mixup_alpha,
    mixup_beta,
    random_state,
    sample_weight=None,
    partner_labels=None,
    bandwidth=None,
):
    """Seeded anchors, partners, Mixup weights and sample weights of mixed rows.

    Every training row with a positive weight is the anchor of ``n_mixed`` mixed
    rows ``lam x_i + (1 - lam) x_j`` with ``lam ~ Beta(alpha, beta)``. The partner
    ``j`` is drawn with probability proportional to its weight ``s_j``
    (``partner_labels=None``), or in addition to the label kernel of
    :func:`draw_kernel_partners`. A mixed row weighs ``s_i / n_mixed``, so the
    weights of the mixed rows sum to the training weight ``sum(s)``, and the
    weighted mean loss over the mixed rows is an unbiased estimate of the paper's
    Eq. (1), ``(1/n^2) sum_ij E_lam l(mix_ij(lam))`` (weighted by ``s_i s_j``).

    Returns
    -------
    anchor, partner, lam, weight : ndarray of shape (n_rows,)
    """
    sw = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight)
    sw = sw.astype(float)
    rows = np.flatnonzero(sw > 0)
    if partner_labels is None or bandwidth is None or bandwidth <= 0:
        # bandwidth 0 (all labels equal): every kernel value is 1, uniform partners
        p = sw / sw.sum()
        partner = random_state.choice(n_samples, size=(len(rows), n_mixed), p=p)
    else:
        partner = draw_kernel_partners(
            partner_labels, rows, n_mixed, bandwidth, random_state, sw
        )
    anchor = np.repeat(rows, n_mixed)
    lam = sample_beta(mixup_alpha, mixup_beta, anchor.size, random_state)
    return anchor, partner.ravel(), lam, sw[anchor] / n_mixed


def _check_n_nodes(n_nodes):
    if isinstance(n_nodes, bool) or not isinstance(n_nodes, numbers.Integral):
        raise TypeError(f"n_quadrature must be an int, got {n_nodes!r}.")
    if n_nodes < 1:
        raise ValueError(f"n_quadrature must be >= 1, got {n_nodes}.")
    return int(n_nodes)
