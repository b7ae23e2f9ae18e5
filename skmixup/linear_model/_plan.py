"""The Mixup plan of a linear classifier and its backends, in logit space.

For a linear model the logits of a mixed input are the mix of the logits,
``W (l x_i + (1 - l) x_j) + b = l z_i + (1 - l) z_j``, so the expected Mixup loss
of the paper's Eq. (1) (Zhang et al., ICLR 2021) is a function of the ``n x K``
logits ``Z`` alone::

    L = sum_q w_q sum_{i,j} W_ij [ LSE(u_ijq) - (a_q y_i + (1 - a_q) y_j) . u_ijq ],
    u_ijq = l_q z_i + (1 - l_q) z_j

with ``LSE`` the log-sum-exp (softmax cross-entropy; the binary sigmoid model uses
the logits ``(0, z)``), ``(l_q, w_q)`` a quadrature rule for ``lambda``, ``a_q``
the label share of the anchor and ``W`` symmetric pair weights that sum to one.

* Eq. (1) as written: ``lambda ~ Beta(alpha, beta)`` and mixed labels,
  ``a_q = l_q`` (``form="pairs"``, used by the estimators). With ``alpha == beta``
  the nodes ``l`` and ``1 - l`` give the same term (rename ``i <-> j``, ``W`` is
  symmetric), so they are folded into one node of twice the weight: ``Q`` nodes
  cost ``ceil(Q / 2)`` evaluations.
* Lemma 3.1 (part 1): ``lambda ~ D~`` and the anchor's label, ``a_q = 1``
  (``form="dtilde"``). For a loss affine in the label both forms are equal.

**Pairs.** All pairs: ``W_ij = pi_i pi_j`` with ``pi`` the normalised sample
weights, exactly Eq. (1). Sampled partners (``n_partners = P``): one random order
of the samples is cut into blocks of at least ``P + 1`` consecutive samples and
every sample is paired with the members of its block. Scaling the in-block pairs
by ``c_b = (n - 1) / (m_b - 1)`` (``m_b`` the block size: each other sample is in
a given sample's block with probability ``(m_b - 1) / (n - 1)``) makes the sampled
sum an unbiased estimate of the all-pairs one (the weights are normalised to sum
to one, a no-op for equal sample weights). Only what is not cheap over all pairs
is sampled (a control variate): the label term is linear in ``Z`` and the secant
``l LSE(z_i) + (1 - l) LSE(z_j)`` sums over all pairs to ``sum_i pi_i
LSE(z_i)``, so both are taken over all pairs, and the blocks estimate the
residual ``LSE(u_ij) - l LSE(z_i) - (1 - l) LSE(z_j)`` (zero on self-pairs).

**Backends.** The label term is linear in ``Z`` and costs ``O(n K)``. The
log-sum-exp term is evaluated per node by a backend, over tiles of pairs:

* ``"gemm"``: with ``z~ = z - max(z)`` (so ``z~ <= 0``),
  ``sum_k exp(l z~_ik + (1 - l) z~_jk) = (A B^T)_ij`` with ``A = exp(l Z~)`` and
  ``B = exp((1 - l) Z~)``: the sums of exponentials of a tile are one matrix
  product, the loss needs one logarithm per pair, and the gradient two more
  products with ``1 / S`` (``d/dz_i = l sum_j W_ij softmax(u_ij)`` and
  ``d/dz_j = (1 - l) sum_i W_ij softmax(u_ij)``). A tile whose sums underflow
  (logit gaps beyond ~1400 in float64, ~170 in float32) is handed to ``"direct"``.
* ``"direct"``: the mixed logits written out, one log-sum-exp per pair and class
  with its own maximum (slow, safe; the reference).
"""

import functools
import math
import threading
from typing import NamedTuple

import numpy as np
from scipy import special
from scipy.linalg import get_blas_funcs
from sklearn.utils import check_random_state

from skmixup._mixing import (
    beta_quadrature,
    check_n_partners,
    dtilde_quadrature,
    resolve_beta,
)
from skmixup.utils._threads import one_blas_thread, run_on_threads, worker_count

__all__ = ["MixupPlan", "BACKENDS", "block_sizes_of", "resolve_settings"]

# Default ("auto") quadrature nodes of Beta(alpha, beta): with alpha == beta they
# fold into 2 evaluations. How far that moves the fit is measured and stated once,
# in MixupLogisticRegression's ``n_quadrature`` parameter.
AUTO_NODES = 4
# "auto" partners: all pairs while n^2 * (node evaluations) stays within this
# many pair evaluations per objective evaluation (all pairs of 2,896 samples with
# 2 folded nodes, of 2,048 samples with 4 nodes) ...
EXACT_WORK = 1 << 24
# ... above it, blocks sized to this many pair evaluations, at least MIN_PARTNERS
# partners per sample (19 at 50,000 samples: within 2% of a 64-partner fit on
# make_classification 50k x 100 x 10, benchmarks/bench_linear.py).
SAMPLED_WORK = 2 << 20
MIN_PARTNERS = 15
# Pair entries per tile (of each temporary): 256 kB in float64, so that a
# tile stays in the CPU caches (measured fastest, and bounds the memory).
_TILE_ELEMENTS = 1 << 15
# Below this many pair evaluations per objective evaluation, one thread.
_PARALLEL_MIN = 1 << 18
# At most this many worker threads for the tiles (and partner-sum shares),
# within the machine's policy
# (skmixup.utils._threads.worker_count: from the main thread only, no more than
# the usable cores and the BLAS threads allowed before).
_MAX_THREADS = 8


def quadrature_rule(mixup_alpha, mixup_beta, n_quadrature, form="pairs"):
    """Nodes ``l_q``, weights ``w_q`` and anchor label shares ``a_q``.

    ``form="pairs"`` (Eq. (1) as written): the Gauss-Lobatto rule of
    ``Beta(alpha, beta)`` with ``n_quadrature`` interior nodes
    (:func:`lobatto_beta_quadrature`), ``a_q = l_q``, and the nodes ``l`` and
    ``1 - l`` folded into one when ``alpha == beta``. ``form="dtilde"``
    (Lemma 3.1): the Gauss-Jacobi rule of ``D~``, ``a_q = 1``.
    """
    if n_quadrature == "auto":
        n_quadrature = AUTO_NODES
    a, b = resolve_beta(mixup_alpha, mixup_beta)
    if form == "dtilde":
        nodes, weights = dtilde_quadrature(a, b, n_quadrature)
        return nodes, weights, np.ones_like(nodes)
    if form != "pairs":
        raise ValueError(f"form must be 'pairs' or 'dtilde', got {form!r}.")
    nodes, weights = lobatto_beta_quadrature(a, b, n_quadrature)
    if a == b:  # symmetric rule (ascending nodes): keep l >= 1/2, double the weight
        Q = nodes.size
        nodes, weights = nodes[Q // 2 :], weights[Q // 2 :] * 2.0
        if Q % 2:
            weights[0] /= 2.0  # the middle node l = 1/2 is its own mirror
    return nodes, weights, nodes.copy()


def lobatto_beta_quadrature(mixup_alpha, mixup_beta, n_interior):
    """Gauss-Lobatto rule for ``lambda ~ Beta(alpha, beta)``: the endpoints 0 and
    1 and ``n_interior`` nodes inside, exact for polynomials of degree
    ``2 n_interior + 1``.

    The interior nodes are those of the Gauss-Jacobi rule of ``Beta(alpha + 1,
    beta + 1)`` (whose density is ``lambda (1 - lambda)`` times that of
    ``Beta(alpha, beta)``, up to ``c = E[lambda (1 - lambda)]``), with weights
    ``c w_q / (l_q (1 - l_q))``; the endpoint weights make the rule exact for
    ``1`` and ``lambda``. At an endpoint the mixed point is a training point,
    so those nodes cost ``O(n K)`` instead of ``O(n^2 K)``.

    Returns
    -------
    nodes, weights : ndarray of shape (n_interior + 2,)
        Ascending nodes (``0`` first, ``1`` last); the weights sum to one.
    """
    a, b = resolve_beta(mixup_alpha, mixup_beta)
    inner, w = beta_quadrature(a + 1.0, b + 1.0, n_interior)
    c = a * b / ((a + b) * (a + b + 1.0))
    w = c * w / (inner * (1.0 - inner))
    w1 = a / (a + b) - float(w @ inner)
    w0 = 1.0 - w1 - float(w.sum())
    return np.concatenate([[0.0], inner, [1.0]]), np.concatenate([[w0], w, [w1]])


def resolve_settings(
    n_samples, mixup_alpha, mixup_beta, n_partners, n_quadrature, form="pairs"
):
    """``(P, rule)``: partners per sample (``None`` for all pairs) and the rule.

    ``n_partners="auto"`` is all pairs while ``n_samples^2 * n_nodes <=
    EXACT_WORK`` (``n_nodes`` after folding), else the block size that spends
    ``SAMPLED_WORK`` pair evaluations, with at least ``MIN_PARTNERS`` partners.
    """
    n_partners = check_n_partners(n_partners)
    rule = quadrature_rule(mixup_alpha, mixup_beta, n_quadrature, form)
    n_nodes = max(1, int(np.sum((rule[0] > 0.0) & (rule[0] < 1.0))))  # n^2 work each
    if n_partners == "auto":
        if n_samples * n_samples * n_nodes <= EXACT_WORK:
            n_partners = "all"
        else:
            n_partners = max(MIN_PARTNERS, SAMPLED_WORK // (n_samples * n_nodes) - 1)
    if n_partners == "all" or n_partners + 1 >= n_samples:
        return None, rule
    return n_partners, rule


def block_sizes_of(n_samples, n_partners):
    """Sizes of the blocks that cut ``n_samples`` ordered samples for
    ``n_partners`` partners: ``n // (P + 1)`` blocks (at least one) of sizes
    differing by at most one, the larger first; one block for all pairs
    (``n_partners=None``)."""
    if n_partners is None or n_samples <= n_partners + 1:
        return np.array([n_samples], dtype=np.intp)
    n_blocks = n_samples // (n_partners + 1)
    sizes = np.full(n_blocks, n_samples // n_blocks, dtype=np.intp)
    sizes[: n_samples % n_blocks] += 1  # larger blocks first
    return sizes


class MixupPlan:
    """Pairs, pair weights and quadrature rule of one Mixup objective.

    Built once per fit (or per loss evaluation in :mod:`skmixup.theory`) by
    :meth:`build`; :meth:`loss_gradient` evaluates the objective and its gradient
    with respect to the logits with any backend of ``BACKENDS``.

    Parameters
    ----------
    sample_weight : ndarray of shape (n_samples,)
        Non-negative sample weights (anchors and partners), positive sum.
    nodes, weights, label_share : ndarray of shape (n_nodes,)
        Quadrature rule (:func:`quadrature_rule`).
    n_partners : int or None
        Partners per sample (blocks of at least ``n_partners + 1`` samples), or
        ``None`` for all pairs.
    order : ndarray of shape (n_samples,), default=None
        Random order of the samples cut into blocks (required with partners).
    block_sizes : ndarray of int, default=None
        Sizes of the consecutive blocks of ``order`` (summing to ``n_samples``);
        default: :func:`block_sizes` of ``n_partners`` (one block for all pairs).
    population : (int, float), default=None
        ``(n, sum of the weights)`` of the data set these samples are part of
        (e.g. one chunk of a Dask array, :mod:`skmixup.linear_model._dask`):
        ``pi`` and the block scaling ``c_b`` are then those of the population.
        Its two population sums (the pair weights' total and ``pi^T Y``) are set
        by :meth:`set_population_sums`; default: these samples are the data set.
    """

    def __init__(
        self,
        sample_weight,
        nodes,
        weights,
        label_share,
        n_partners,
        order,
        *,
        block_sizes=None,
        population=None,
    ):
        pi = np.asarray(sample_weight, dtype=np.float64)
        n = pi.size
        n_all, weight_sum = (n, pi.sum()) if population is None else population
        pi = pi / weight_sum
        self.n_samples = n
        self.nodes = np.asarray(nodes, dtype=np.float64)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.label_share = np.asarray(label_share, dtype=np.float64)
        self.n_partners = n_partners
        if block_sizes is None:
            block_sizes = block_sizes_of(n, n_partners)
        sizes = np.asarray(block_sizes, dtype=np.intp)
        if int(sizes.sum()) != n:
            raise ValueError(f"block_sizes sum to {sizes.sum()}, not {n} samples.")
        self._exact = n_partners is None and sizes.size == 1 and n_all == n
        if order is None:
            self.order = np.arange(n)
        else:
            self.order = np.asarray(order, dtype=np.intp)
        self.pi = pi[self.order]  # by position in the order
        self._position = np.argsort(self.order)  # of each sample in the order
        # Groups of consecutive equal-size blocks: (start, n_blocks, size, c);
        # c = (n - 1) / (m_b - 1) scales the in-block pairs of sampled partners
        # (a block of one sample has only its self-pair, whose term is zero).
        self.groups = []
        start = 0
        edges = np.flatnonzero(np.diff(sizes)) + 1
        for run in np.split(sizes, edges):
            size, count = int(run[0]), run.size
            sampled = not self._exact and size > 1
            c = (n_all - 1.0) / (size - 1.0) if sampled else 1.0
            self.groups.append((start, count, size, c))
            start += count * size
        # Normalise the pair weights to sum to one (no-op for equal weights).
        total = 0.0
        for start, count, size, c in self.groups:
            p = self.pi[start : start + count * size].reshape(count, size)
            total += c * np.sum(p.sum(1) ** 2) + (1.0 - c) * np.sum(p * p)
        self.pair_weight_sum = float(total)  # of these samples' pairs
        self._mean_label = None  # pi^T Y of the population (None: these samples)
        self._label = None
        self._set_scale(1.0 / total if total > 0 else 0.0)

    def set_population_sums(self, pair_weight_sum, mean_label):
        """For a part of a population: the population's total pair weight (the
        sum of the parts' ``pair_weight_sum``) and ``pi^T Y`` (targets as the
        softmax columns: ``(1 - y, y)`` for the binary model)."""
        self._mean_label = np.asarray(mean_label, dtype=np.float64)
        self._label = None
        self._set_scale(1.0 / pair_weight_sum)

    def label_sum(self, Y):
        """``pi^T Y`` of these samples (softmax columns; see
        :meth:`set_population_sums`)."""
        Yf = np.hstack([1.0 - Y, Y]) if Y.shape[1] == 1 else Y
        return self.pi @ np.asarray(Yf[self.order], dtype=np.float64)

    def _set_scale(self, scale):
        self.scale = scale
        # Coefficient of L_i = LSE(z_i) of each position. The parts of the
        # objective that are O(n K) for all pairs are computed over all pairs,
        # and only the rest is sampled (a control variate, exact in expectation):
        # * endpoints (l = 0 or 1): the mixed logits are training logits, and
        #   sum_ij pi_i pi_j LSE(z_i) = sum_i pi_i L_i;
        # * interior nodes: the backends sum c pi_i pi_j LSE(u_ij) over the
        #   in-block pairs; the secant l L_i + (1 - l) L_j (which carries each
        #   partner's own level, and equals LSE(u_ii) on self-pairs) is
        #   subtracted over those pairs, c pi_i Pi_b L_i, and added over all
        #   pairs, pi_i L_i. For all pairs (c = 1, Pi_b = 1) this is a no-op.
        self._inner = (self.nodes > 0.0) & (self.nodes < 1.0)
        self._lse_coef = self.pi.copy()
        w_inner = float(self.weights[self._inner].sum())
        for group in self.groups:
            p = self._blocks(self.pi, group)
            self._blocks(self._lse_coef, group)[:] -= (
                w_inner * self.scale * group[3] * p * p.sum(1, keepdims=True)
            )

    @classmethod
    def build(
        cls,
        sample_weight,
        *,
        mixup_alpha,
        mixup_beta=None,
        n_partners="auto",
        n_quadrature="auto",
        random_state=None,
        form="pairs",
    ):
        """The plan for these settings; ``random_state`` (anything
        ``check_random_state`` takes) draws the order of the blocks (nothing is
        drawn for all pairs)."""
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
        n = sample_weight.size
        P, (nodes, weights, share) = resolve_settings(
            n, mixup_alpha, mixup_beta, n_partners, n_quadrature, form
        )
        order = None if P is None else check_random_state(random_state).permutation(n)
        return cls(sample_weight, nodes, weights, share, P, order)

    @property
    def exact(self):
        """Whether the plan sums over all pairs (Eq. (1) exactly)."""
        return self._exact

    # ------------------------------------------------------------- weights
    def _blocks(self, M, group):
        start, count, size, _ = group
        return M[start : start + count * size].reshape(count, size, *M.shape[1:])

    # ------------------------------------------------------------ objective
    def loss_gradient(self, Z, Y, backend="gemm"):
        """Mixup loss and its gradient with respect to the logits ``Z``.

        Parameters
        ----------
        Z : ndarray of shape (n_samples, K)
            Logits; ``K = 1`` is the sigmoid model (targets in [0, 1]).
        Y : ndarray of shape (n_samples, K)
            Targets (one-hot, or any rows of probabilities).
        backend : {"gemm", "direct"}, default="gemm"

        Returns
        -------
        value : float
        dZ : ndarray of shape (n_samples, K), of the dtype of ``Z``.
        """
        lse = BACKENDS[backend]
        dtype = Z.dtype
        binary = Z.shape[1] == 1
        label_grad = self._label_gradient(Y)  # Y-dependent, cached
        if binary:  # sigmoid model = softmax over the logits (0, z)
            Z = np.hstack([np.zeros_like(Z), Z])
        Zo = Z if self.exact else Z.take(self.order, axis=0)  # all pairs: identity
        # Label term: linear in Z, sum_ij W_ij y~_ijq . u_ijq = <label_grad, Z>.
        value = -float(np.vdot(label_grad, Zo.astype(np.float64, copy=False)))
        grad = np.negative(label_grad)
        zmax = _row_max(Zo)  # shifts of the log-sum-exps
        # Log-sum-exp term at the interior nodes, block group by block group.
        inner = self._inner
        for group in self.groups:
            start, count, size, c = group
            Zb = self._blocks(Zo, group)
            pb = self._blocks(self.pi, group).astype(dtype)
            weights = self.scale * c * self.weights[inner]
            nodes = self.nodes[inner].astype(dtype)
            value += lse(
                Zb,
                pb,
                nodes,
                weights,
                self._blocks(zmax, group),
                self._blocks(grad, group),
            )
        # Terms in LSE(z_i) alone: endpoints and self-pair corrections.
        lse_z, softmax_z = _lse_softmax(Zo, zmax)
        value += float(self._lse_coef @ lse_z)
        softmax_z *= self._lse_coef[:, None]
        grad += softmax_z
        del softmax_z
        if self.exact:
            dZ = grad.astype(dtype, copy=False)
        else:
            dZ = grad.take(self._position, axis=0).astype(dtype, copy=False)
        if binary:
            dZ = dZ[:, 1:]  # the logit z is the second column of (0, z)
        return float(value), dZ

    def _label_gradient(self, Y):
        """``G`` with label term ``<G, Z>`` (rows in the order), for targets ``Y``;
        computed once per ``Y`` object (a fit evaluates with one ``Y``).

        The label term is linear in ``Z``, so it is taken over all pairs
        (``W = pi pi^T``, also for sampled plans)::

            sum_q w_q sum_ij pi_i pi_j (a_q y_i + (1 - a_q) y_j) . u_ijq
            = c_same sum_i pi_i y_i . z_i + c_cross <pi (pi^T Y), Z>
        """
        if self._label is not None and self._label[0] is Y:
            return self._label[1]
        Yf = np.hstack([1.0 - Y, Y]) if Y.shape[1] == 1 else Y
        Yo = np.asarray(Yf[self.order], dtype=np.float64)
        lam, w, a = self.nodes, self.weights, self.label_share
        c_same = float(w @ (a * lam + (1 - a) * (1 - lam)))
        c_cross = float(w @ (a * (1 - lam) + (1 - a) * lam))
        # The label term is linear in Z: taken over all pairs (W = pi pi^T).
        mean = self.pi @ Yo if self._mean_label is None else self._mean_label
        r, WY = self.pi, self.pi[:, None] * mean[None, :]
        G = c_same * r[:, None] * Yo + c_cross * WY  # float64
        self._label = (Y, G)
        return G

    def loss(self, Z, Y, backend="gemm"):
        """Value of the Mixup loss (see :meth:`loss_gradient`)."""
        return self.loss_gradient(Z, Y, backend)[0]


def _row_max(Z):
    """Row maxima of ``Z`` (n, K): a loop over the few columns (numpy's reduction
    over a short last axis is several times slower)."""
    zmax = Z[:, 0].copy()
    for k in range(1, Z.shape[1]):
        np.maximum(zmax, Z[:, k], out=zmax)
    return zmax


def _lse_softmax(Z, zmax):
    """Row-wise log-sum-exp (float64) and softmax (dtype of ``Z``), given the row
    maxima ``zmax`` of ``Z``."""
    zmax = zmax[:, None]
    E = np.subtract(Z, zmax)
    np.exp(E, out=E)
    s = E @ np.ones((Z.shape[1], 1), dtype=E.dtype)  # row sums by BLAS (faster)
    E /= s
    return (np.log(s) + zmax)[:, 0].astype(np.float64), E


def _tiles(count, size):
    """Tiles of a group of ``count`` blocks of ``size``: ``(blocks, rows)`` slices.

    Small blocks are batched whole; one large block (all pairs) is cut in rows.
    """
    if size * size <= _TILE_ELEMENTS:
        per = max(1, _TILE_ELEMENTS // (size * size))
        return [
            (slice(g, min(g + per, count)), slice(None)) for g in range(0, count, per)
        ]
    rows = max(16, _TILE_ELEMENTS // size)
    return [
        (slice(g, g + 1), slice(i, min(i + rows, size)))
        for g in range(count)
        for i in range(0, size, rows)
    ]


def _scratch(scratch, key, shape, dtype):
    """A per-thread scratch array of ``shape``, reused from tile to tile (one
    allocation of the largest tile's size, instead of one per tile)."""
    size = math.prod(shape)
    buf = scratch.get(key)
    if buf is None or buf.size < size or buf.dtype != dtype:
        buf = scratch[key] = np.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)


def _run_tiles(tile_fn, grad, tiles, work):
    """Sum ``tile_fn(blocks, rows, scratch) -> (value, g_anchor, g_partner)`` over
    the tiles of a block group, on worker threads (numpy and BLAS release the
    GIL); ``scratch`` is a per-thread dict (:func:`_scratch`).

    The gradients are added into ``grad`` (float64, shape (count, size, K)): the
    anchor gradient into ``grad[blocks, rows]`` and, for a tile of whole blocks,
    the partner gradient into ``grad[blocks]``. No other tile touches those
    entries, so the threads share ``grad``. A partner gradient that spans other
    tiles' rows is summed per thread, allocated only then. ``g_partner=None``:
    the tile summed its partner term into ``scratch["partner"]`` itself.

    Tiles of whole blocks go to whichever thread is free; otherwise the tiles
    are dealt into ``min(8, n_tiles)`` fixed shares, whatever the number of
    threads, so that the sums depend neither on timing nor on the core count.
    Returns the value (summed in tile order) and the sum of the threads'
    ``scratch["partner"]`` (or ``None``).
    """
    values = [0.0] * len(tiles)  # summed in tile order: deterministic
    numbered = list(enumerate(tiles))
    if all(rows == slice(None) for _, rows in tiles):
        # Tiles of whole blocks write only their own entries: the threads take
        # the next tile as they come free (a descheduled thread holds no one up).
        shared, lock = iter(numbered), threading.Lock()

        def chunk(i):
            while True:
                with lock:
                    item = next(shared, None)
                if item is None:
                    return
                yield item

        n_shares = None  # one per thread
    else:
        # Partner sums per share: the tiles are dealt into a fixed number of
        # shares whatever the thread count, each share summed in its own array
        # and the shares added in order, so that the sum (and the fit) is
        # bit-identical on any number of cores.
        n_shares = min(_MAX_THREADS, len(tiles))

        def chunk(i):
            return iter(numbered[i::n_shares])

    results = [None] * len(tiles)

    def run(i):
        scratch, partner = {}, None
        for t, (blocks, rows) in chunk(i):
            values[t], ga, gp = tile_fn(blocks, rows, scratch)
            grad[blocks, rows] += ga
            if gp is None:
                continue
            if rows == slice(None):  # whole blocks: this tile's own entries
                grad[blocks] += gp
            else:
                if partner is None:
                    partner = np.zeros(grad.shape)
                partner[blocks] += gp
        results[i] = scratch.get("partner"), partner

    # BLAS on one thread meanwhile (a no-op inside a linear model's fit, which
    # holds the limit already); the tiles use the cores instead.
    with one_blas_thread() as blas_threads:
        n_threads = min(
            worker_count(len(tiles), blas_threads),
            len(tiles),
            max(1, work // _PARALLEL_MIN),
            _MAX_THREADS,
        )
        shares = n_threads if n_shares is None else n_shares
        if n_threads == 1:
            for i in range(shares):
                run(i)
        else:
            run_on_threads([(i,) for i in range(shares)], run, n_threads)
    total = None
    for summed, partner in results[:shares]:
        if partner is not None:
            grad += partner
        if summed is not None:
            if total is None:
                total = summed
            else:
                total += summed
    return sum(values), total


def _gemm_lse(Zb, pb, nodes, weights, zmax, out):
    """``sum_q w_q sum_{blocks} sum_{i,j} pi_i pi_j LSE(l_q z_i + (1 - l_q) z_j)``
    by matrix products of exponential tables (``"gemm"``), given the row maxima
    ``zmax`` (count, size) of ``Zb``; its gradient is added into ``out`` (float64,
    of the shape of ``Zb``).

    With one block (all pairs) the tables ``A = exp(l Z~)`` and ``B = exp((1 - l)
    Z~)`` of a node are built once and sliced by the row tiles; with many small
    blocks (sampled partners) each tile builds the tables of its own blocks,
    while they are in cache."""
    count, size, K = Zb.shape
    ZsT = np.subtract(Zb, zmax[..., None]).transpose(0, 2, 1)
    ZsT = np.ascontiguousarray(ZsT)  # (G, K, m): BLAS-friendly
    Zs = ZsT.transpose(0, 2, 1)  # Z~ = Z - max(Z), (G, m, K)
    # Shifts: sum_q w_q sum_ij pi_i pi_j (l_q m_i + (1 - l_q) m_j)
    # = sum_q w_q sum_b Pi_b sum_{i in b} pi_i m_i (the pair weights are symmetric).
    p64, m64 = pb.astype(np.float64), zmax.astype(np.float64)
    value = float(np.sum(weights)) * float(np.sum(p64.sum(1) * (p64 * m64).sum(1)))
    tiny = np.finfo(Zb.dtype).tiny * 1e6
    tiles = _tiles(count, size)
    shared = count == 1
    # float64: the shared partner term R^T (p A) is accumulated by BLAS itself
    # (gemm with beta = 1), with no per-tile n x K product.
    gemm = get_blas_funcs("gemm", dtype=np.float64) if Zb.dtype == np.float64 else None
    ctx = _GemmTiles(Zs, ZsT, pb, p64, size, K, shared, gemm, tiny)
    tables = None
    for lam, w in zip(nodes.tolist(), weights.tolist(), strict=True):
        # Python floats: float32 tables stay float32 (NEP 50 promotion).
        if shared:
            tables = None  # the last node's tables go before these are built
            tables = _exp_tables(Zs, ZsT, pb, lam)
        tile = functools.partial(_gemm_tile, ctx, lam, w, tables)
        v, g_partner = _run_tiles(tile, out, tiles, count * size**2)
        value += v
        if g_partner is not None:  # shared tables: (1 - l) w pB_j (R^T pA)_j
            g_partner *= tables[2][0]
            g_partner *= w * (1 - lam)
            out[0] += g_partner
            del g_partner
    return value


class _GemmTiles(NamedTuple):
    """What every tile of one ``_gemm_lse`` call shares: the shifted logits
    ``Z~`` (G, m, K) and their transpose (G, K, m), the weights ``pb`` (G, m) and
    their float64 copy, the block size and classes, whether the tables are
    shared (one block: all pairs), BLAS's float64 gemm (or None) and the
    underflow threshold of the sums."""

    Zs: np.ndarray
    ZsT: np.ndarray
    pb: np.ndarray
    p64: np.ndarray
    size: int
    K: int
    shared: bool
    gemm: object
    tiny: float


def _gemm_tile(ctx, lam, w, tables, blocks, rows, scratch):
    """One tile of ``_gemm_lse`` at node ``(lam, w)``: ``(value, g_anchor,
    g_partner)`` for :func:`_run_tiles` (``g_partner=None``: summed into
    ``scratch["partner"]``). ``tables`` are the node's shared exponential tables
    (one block), else None (each tile builds those of its blocks)."""
    if tables is None:
        A, Bt, pB = _exp_tables(ctx.Zs[blocks], ctx.ZsT[blocks], ctx.pb[blocks], lam)
    else:
        A, Bt, pB = tables
    A, pa = A[:, rows], ctx.pb[blocks, rows]
    S = _scratch(scratch, "S", (*A.shape[:2], ctx.size), A.dtype)
    np.matmul(A, Bt, out=S)  # (G', r, m)
    if S.min() <= ctx.tiny:  # sums underflow: this tile and node, direct
        v, ga, gp = _direct_tile(ctx.Zs[blocks], ctx.pb[blocks], rows, [lam], [w])
        return v, ga, gp
    R = np.reciprocal(S, out=S)
    # d/dz_i: l sum_j pi_i pi_j softmax(u_ij) = l pi_i A_i (R pB)_i;
    # d/dz_j: (1 - l) pB_j (R^T pA)_j (shared tables: scaled once per node).
    g_anchor = np.matmul(R, pB)
    g_anchor *= A
    g_anchor *= ((w * lam) * pa)[..., None]
    pA = pa[..., None] * A
    if ctx.shared and ctx.gemm is not None:
        acc = scratch.get("partner")
        if acc is None:  # Fortran order: BLAS accumulates in place
            acc = scratch["partner"] = np.zeros((ctx.K, ctx.size)).T
        scratch["partner"] = ctx.gemm(
            1.0, R[0].T, pA[0], beta=1.0, c=acc, overwrite_c=True
        )
        RtA = None
    else:
        RtA = _scratch(scratch, "RtA", (A.shape[0], ctx.size, ctx.K), A.dtype)
        np.matmul(R.transpose(0, 2, 1), pA, out=RtA)
    # The loss from R in place: log S = -log R. Sums in float64 past the
    # first stage: float32 rounding noise in the value would double
    # L-BFGS-B's line-search evaluations.
    L = np.log(R, out=R)
    row = np.matmul(pa[:, None, :], L)[:, 0, :]
    v = -w * float(np.einsum("gj,gj->", row.astype(np.float64), ctx.p64[blocks]))
    if RtA is None:
        return v, g_anchor, None
    if ctx.shared:
        acc = scratch.get("partner")
        if acc is None:
            acc = scratch["partner"] = np.zeros((ctx.size, ctx.K))
        acc += RtA[0]
        return v, g_anchor, None
    RtA *= pB
    RtA *= w * (1 - lam)
    return v, g_anchor, RtA


def _exp_tables(Zs, ZsT, p, lam):
    """``A = exp(l Z~)`` (G, m, K), ``B^T = exp((1 - l) Z~^T)`` (G, K, m) and
    ``p B`` (G, m, K) for a node ``l``, with no temporaries beyond them."""
    A = np.multiply(Zs, lam, out=np.empty(Zs.shape, dtype=Zs.dtype))
    np.exp(A, out=A)
    Bt = np.multiply(ZsT, 1 - lam)
    np.exp(Bt, out=Bt)
    pB = np.multiply(p[..., None], Bt.transpose(0, 2, 1), out=np.empty_like(A))
    return A, Bt, pB


def _direct_tile(Z, p, rows, nodes, weights):
    """One tile with the mixed logits written out (per-pair maximum)."""
    Z = Z.astype(np.float64)
    p = p.astype(np.float64)
    Za, pa = Z[:, rows], p[:, rows]
    W = pa[:, :, None] * p[:, None, :]  # (G, r, m)
    value = 0.0
    g_anchor = np.zeros(Za.shape)
    g_partner = np.zeros(Z.shape)
    for lam, w in zip(nodes, weights, strict=True):
        U = lam * Za[:, :, None, :] + (1 - lam) * Z[:, None, :, :]  # (G, r, m, K)
        lse = special.logsumexp(U, axis=-1)
        value += w * float(np.sum(W * lse))
        P = np.exp(U - lse[..., None]) * W[..., None]
        g_anchor += (w * lam) * P.sum(axis=2)
        g_partner += (w * (1 - lam)) * P.sum(axis=1)
    return value, g_anchor, g_partner


def _direct_lse(Zb, pb, nodes, weights, zmax, out):
    """``"direct"`` backend: the log-sum-exp term with explicit mixed logits (each
    pair with its own maximum; ``zmax`` is not used); its gradient is added into
    ``out``."""
    count, size, _ = Zb.shape

    def tile(blocks, rows, scratch):
        return _direct_tile(Zb[blocks], pb[blocks], rows, nodes, weights)

    work = count * size * size * nodes.size
    return _run_tiles(tile, out, _tiles(count, size), work)[0]


BACKENDS = {"gemm": _gemm_lse, "direct": _direct_lse}
