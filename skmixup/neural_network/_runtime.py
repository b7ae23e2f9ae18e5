"""Process-level runtime of the torch estimators: forks, threads and random numbers.

Three facts of PyTorch shape this module:

* Its intra-op thread pool (OpenMP) does not survive ``fork``: a child forked
  after the parent ran a parallel operation deadlocks in its first parallel
  region. :func:`skmixup.utils._threads.torch_runtime` runs our torch work on
  one thread in such a child (what :class:`torch.utils.data.DataLoader` does in
  its workers).
* Its global generator is shared by every thread. Our estimators therefore seed
  explicit :class:`torch.Generator` objects, weight initialisation included
  (:func:`init_parameters`), and touch the global generator only where a module
  gives no other choice (an unknown layer's ``reset_parameters``, dropout in the
  forward pass); :func:`global_rng_section` then forks it, seeds it and holds a
  process-wide lock, so that concurrent fits are serialised instead of racing.
* ``torch.manual_seed`` reseeds every CUDA device; we seed only the generators
  of the device a net runs on, and only inside a fork that restores them.

And one fact of skorch: its callbacks stop training by raising
``KeyboardInterrupt``, as Ctrl-C does; :func:`sigint_recorder` notes a real
SIGINT so that the two can be told apart.
"""

import contextlib
import math
import signal
import threading

import torch
from torch import nn

__all__ = [
    "forward_draws_no_random_numbers",
    "global_rng_section",
    "init_parameters",
    "sigint_recorder",
]

# ------------------------------------------------------------ global generator
_GLOBAL_RNG_LOCK = threading.RLock()


@contextlib.contextmanager
def global_rng_section(seed, device):
    """Seed PyTorch's global generators for a block, then restore them.

    Holds a process-wide (re-entrant) lock for the block, so two threads never
    interleave their draws. Seeds the CPU generator and, when ``device`` is a
    CUDA device, that device's generator only; all are restored afterwards.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    cuda_index = None
    if device.type == "cuda":
        cuda_index = device.index if device.index is not None else 0
    devices = [] if cuda_index is None else [cuda_index]
    with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=devices, device_type="cuda"):
        torch.default_generator.manual_seed(seed)
        if cuda_index is not None:
            torch.cuda.default_generators[cuda_index].manual_seed(seed)
        yield


# Layers of torch.nn whose forward pass draws random numbers (from the global
# generator, which cannot be replaced by an explicit one).
_RANDOM_LAYERS = (nn.modules.dropout._DropoutNd, nn.RReLU)


def forward_draws_no_random_numbers(module):
    """Whether ``module``'s forward pass is known not to draw random numbers.

    True when every submodule is a layer of :mod:`torch.nn` other than dropout
    and RReLU, or declares ``_skmixup_forward_is_deterministic = True`` (as
    :class:`MLPModule` does), and no parameter is still lazy. A custom module's
    own ``forward`` is unknown, so it is assumed to draw.
    """
    for sub in module.modules():
        if isinstance(sub, _RANDOM_LAYERS) or _has_lazy_parameters(sub):
            return False
        known = type(sub).__module__.startswith("torch.nn.")
        if not known and not getattr(sub, "_skmixup_forward_is_deterministic", False):
            return False
    return True


# ----------------------------------------------------------- initialisation
def _uniform_fan_in(layer, generator):
    """PyTorch's default init of Linear and ConvNd, from ``generator``.

    ``W ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (``kaiming_uniform_`` with
    ``a=sqrt(5)``) and the bias from the same interval.
    """
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    if getattr(layer, "bias", None) is not None:
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


def _embedding(layer, generator):
    nn.init.normal_(layer.weight, generator=generator)
    if layer.padding_idx is not None:
        with torch.no_grad():
            layer.weight[layer.padding_idx].fill_(0)


_EXPLICIT_INIT = {
    nn.Linear: _uniform_fan_in,
    nn.modules.conv._ConvNd: _uniform_fan_in,
    nn.Embedding: _embedding,
}


def _explicit_init(layer):
    for cls, init in _EXPLICIT_INIT.items():
        if isinstance(layer, cls):
            return init
    return None


def _has_lazy_parameters(layer):
    return any(
        isinstance(p, nn.parameter.UninitializedParameter)
        for p in layer.parameters(recurse=False)
    )


@torch.no_grad()
def init_parameters(module, generator):
    """Re-initialise the parameters of every layer of ``module``.

    ``Linear``, ``ConvNd`` and ``Embedding`` layers get PyTorch's default
    initialisation drawn from ``generator``. Any other layer with parameters and
    a ``reset_parameters`` method is reset by it, which draws from the global
    generator: call this inside :func:`global_rng_section`. Lazy parameters are
    left alone (they are drawn at the first forward pass).
    """
    for layer in module.modules():
        if _has_lazy_parameters(layer):
            continue
        init = _explicit_init(layer)
        if init is not None:
            init(layer, generator)
        elif hasattr(layer, "reset_parameters") and any(
            True for _ in layer.parameters(recurse=False)
        ):
            layer.reset_parameters()


# ------------------------------------------------------------------ Ctrl-C
@contextlib.contextmanager
def sigint_recorder():
    """Note whether SIGINT arrives during the block (main thread, default
    handler only; elsewhere nothing is installed and nothing is noted)."""
    record = {"received": False}
    install = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if not install:
        yield record
        return

    def handler(signum, frame):
        record["received"] = True
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, handler)
    try:
        yield record
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
