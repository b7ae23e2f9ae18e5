"""The multilayer perceptron used by :class:`MixupMLPClassifier`."""

from torch import nn

_ACTIVATIONS = {
    "identity": nn.Identity,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
}


class MLPModule(nn.Module):
    """A fully connected network that returns logits.

    ``Linear -> activation`` for every hidden layer, then a ``Linear`` output layer
    with ``n_outputs`` units and no output nonlinearity: the module returns logits,
    for :class:`torch.nn.CrossEntropyLoss`.

    Parameters
    ----------
    n_features : int
        Number of input features.
    n_outputs : int
        Number of output units (classes).
    hidden_layer_sizes : tuple of int, default=(100,)
        Width of each hidden layer; ``()`` gives a linear model.
    activation : {"identity", "logistic", "tanh", "relu"}, default="relu"
        Hidden-layer activation, named as in
        :class:`sklearn.neural_network.MLPClassifier`.

    Examples
    --------
    >>> import torch
    >>> from skmixup.neural_network import MLPModule
    >>> module = MLPModule(4, 3, hidden_layer_sizes=(8,))
    >>> module(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """

    # forward is Linear layers and activations: no random numbers drawn
    _skmixup_forward_is_deterministic = True

    def __init__(
        self, n_features, n_outputs, hidden_layer_sizes=(100,), activation="relu"
    ):
        super().__init__()
        layers = []
        width = n_features
        for size in hidden_layer_sizes:
            layers += [nn.Linear(width, size), _ACTIVATIONS[activation]()]
            width = size
        layers.append(nn.Linear(width, n_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        """Return the logits, shape ``(n_samples, n_outputs)``."""
        return self.layers(X)
