"""A fast in-memory batch iterator for array data.

skorch's default :class:`torch.utils.data.DataLoader` fetches one row at a time
through ``Dataset.__getitem__`` and collates the rows back into a batch; on tabular
data that costs more than the forward and backward passes of a small MLP. The
iterator below moves the data to the device once and cuts batches by slicing (or,
when shuffling, by gathering a slice of a seeded permutation).
"""

from collections.abc import Mapping

import numpy as np
import torch
from scipy import sparse
from skorch.dataset import Dataset
from torch.utils.data import DataLoader, Subset

__all__ = ["TensorBatchIterator"]


def _as_tensor(data, device, float_dtype=None):
    """One tensor on ``device``; integers become int64 and floats ``float_dtype``.

    A mapping gives a dict of such tensors. Tensors (on any device) are moved,
    never converted through numpy.
    """
    if isinstance(data, Mapping):
        return {k: _as_tensor(v, device, float_dtype) for k, v in data.items()}
    if sparse.issparse(data):  # kept sparse (CSR, on the CPU) until the batch
        return data.tocsr()
    tensor = data if isinstance(data, torch.Tensor) else None
    if tensor is None:
        arr = np.asarray(data)
        if arr.dtype == object:  # e.g. integer labels in an object array
            arr = arr.astype(np.int64 if _all_integral(arr) else np.float64)
        if arr.dtype.kind in "iu" and arr.dtype != np.int64:
            arr = arr.astype(np.int64)
        if not arr.flags.writeable:  # torch warns on read-only buffers (memmaps)
            arr = arr.copy()
        tensor = torch.as_tensor(arr)
    if float_dtype is not None and torch.is_floating_point(tensor):
        tensor = tensor.to(float_dtype)
    return tensor.to(device)


def _all_integral(arr):
    try:
        values = arr.astype(np.float64)
    except (TypeError, ValueError):
        return False
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


def _is_dense(data):
    """Arrays, tensors, scipy sparse matrices (kept sparse until the batch, as
    skorch does) or a dict of them."""
    if isinstance(data, Mapping):
        return len(data) > 0 and all(_is_dense(v) for v in data.values())
    if sparse.issparse(data):
        return data.ndim == 2
    return isinstance(data, (np.ndarray, torch.Tensor)) and data.ndim >= 1


def _length(data):
    if isinstance(data, Mapping):
        lengths = {_length(v) for v in data.values()}
        return lengths.pop() if len(lengths) == 1 else None
    return data.shape[0] if sparse.issparse(data) else len(data)


def _densified(batch, device, float_dtype):
    """A batch with its sparse rows as dense tensors on ``device``."""
    if isinstance(batch, Mapping):
        return {k: _densified(v, device, float_dtype) for k, v in batch.items()}
    if not sparse.issparse(batch):
        return batch
    tensor = torch.as_tensor(batch.toarray())
    if float_dtype is not None and torch.is_floating_point(tensor):
        tensor = tensor.to(float_dtype)
    return tensor.to(device)


def _take(data, index):
    """Rows ``index`` (an index array, a slice or a tensor) of ``data``."""
    if data is None:
        return None
    if isinstance(data, Mapping):
        return {k: _take(v, index) for k, v in data.items()}
    if isinstance(data, torch.Tensor) and isinstance(index, np.ndarray):
        index = torch.as_tensor(index, device=data.device)
    if sparse.issparse(data) and isinstance(index, torch.Tensor):
        index = index.cpu().numpy()
    return data[index]


def _unwrap(dataset):
    """Return ``(X, y, indices)`` for a skorch Dataset of dense data.

    ``X`` is a numpy array, a tensor or a dict of them; ``y`` one of the first
    two or None. ``Subset`` layers (from skorch's ``ValidSplit``) are folded
    into one index array. Returns ``None`` for anything else (pandas, lists,
    custom datasets), which the iterator hands to a DataLoader. Sparse matrices
    stay sparse (on the CPU); each batch's rows become a dense tensor.
    """
    indices = None
    while isinstance(dataset, Subset):
        idx = np.asarray(dataset.indices)
        indices = idx if indices is None else idx[indices]
        dataset = dataset.dataset
    if type(dataset) is not Dataset or dataset.X_is_ndframe:
        return None
    X, y = dataset.X, dataset.y
    if y is not None and not isinstance(y, torch.Tensor):
        y = np.asarray(y)
        if y.dtype == object:  # e.g. sequences of varying length
            return None
    if not _is_dense(X) or not (y is None or _is_dense(y)):
        return None
    if _length(X) != len(dataset):
        return None
    return X, y, indices


class TensorBatchIterator:
    """Iterate over an in-memory dataset in batches of tensors on one device.

    This is the default ``iterator_train`` and ``iterator_valid`` of
    :class:`MixupNeuralNetClassifier`. For a skorch ``Dataset`` (or a ``Subset``
    of one, as produced by ``ValidSplit``) holding a dense numpy array, a tensor
    or a dict of them (on any device), ``X`` and ``y`` are copied to ``device``
    once, when the iterator is created (once per call to ``fit``), and every
    batch is a slice of them; a scipy sparse ``X`` stays a CSR matrix on the CPU
    and each batch's rows are made dense on ``device`` (as skorch's ``Dataset``
    does row by row). Any other dataset (pandas, object targets, custom
    datasets) is passed on to
    :class:`torch.utils.data.DataLoader` with the same arguments.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        The dataset to iterate over.
    batch_size : int, default=128
        Rows per batch; the last batch may be smaller unless ``drop_last``.
    shuffle : bool, default=False
        Draw a new random order at the start of every pass.
    drop_last : bool, default=False
        Leave out the last, incomplete batch.
    device : str or torch.device, default="cpu"
        Where the batches live.
    generator : torch.Generator, default=None
        The CPU generator for the shuffling order. ``None`` uses PyTorch's global
        generator.
    dtype : torch.dtype, default=None
        Cast floating-point ``X`` to this dtype once (the net passes its module's
        parameter dtype, so float64 arrays feed a float32 module).
    preload : bool, default=True
        Copy all of ``X`` and ``y`` to ``device`` once (worth it when the data
        is passed over many times, as in training). With ``False`` the data
        stay where they are and each batch is copied when it is used, so that
        a single pass (prediction) never holds all the rows on the device.
    **kwargs : dict
        Passed on to :class:`~torch.utils.data.DataLoader` when the dataset is not
        array-backed; ignored otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from skorch.dataset import Dataset
    >>> from skmixup.neural_network import TensorBatchIterator
    >>> ds = Dataset(np.arange(10, dtype=np.float32).reshape(5, 2), np.arange(5))
    >>> [tuple(yb.tolist()) for _, yb in TensorBatchIterator(ds, batch_size=2)]
    [(0, 1), (2, 3), (4,)]
    """

    def __init__(
        self,
        dataset,
        batch_size=128,
        shuffle=False,
        drop_last=False,
        device="cpu",
        generator=None,
        dtype=None,
        preload=True,
        **kwargs,
    ):
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator
        self.device = torch.device(device)
        unwrapped = _unwrap(dataset)
        self.loader_ = None
        if unwrapped is None:
            self.loader_ = DataLoader(
                dataset,
                batch_size=self.batch_size,
                shuffle=shuffle,
                drop_last=drop_last,
                generator=generator,
                **kwargs,
            )
            return
        X, y, indices = unwrapped
        if indices is not None:
            X, y = _take(X, indices), _take(y, indices)
        self.preload = preload
        home = self.device if preload else torch.device("cpu")
        if not preload and isinstance(X, torch.Tensor):
            home = X.device
        self.X_ = _as_tensor(X, home, dtype)
        self.y_ = None if y is None else _as_tensor(y, home)
        self.dtype_ = dtype
        self.n_samples_ = _length(self.X_)

    def __len__(self):
        if self.loader_ is not None:
            return len(self.loader_)
        n, bs = self.n_samples_, self.batch_size
        return n // bs if self.drop_last else -(-n // bs)

    def __iter__(self):
        if self.loader_ is not None:
            yield from self.loader_
            return
        X, y = self.X_, self.y_
        n, bs = self.n_samples_, self.batch_size
        stop = n - n % bs if self.drop_last else n
        order = None
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator)
            order = order.to(_device_of(X))
        for start in range(0, stop, bs):
            if order is None:
                index = slice(start, start + bs)
            else:
                index = order[start : start + bs]
            yield self._to_device(_take(X, index)), self._to_device(_take(y, index))

    def _to_device(self, batch):
        batch = _densified(batch, self.device, self.dtype_)
        if batch is None or self.preload:
            return batch
        if isinstance(batch, Mapping):
            return {k: self._to_device(v) for k, v in batch.items()}
        return batch.to(self.device, non_blocking=True)


def _device_of(data):
    if isinstance(data, Mapping):
        return _device_of(next(iter(data.values())))
    return torch.device("cpu") if sparse.issparse(data) else data.device
