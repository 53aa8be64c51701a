"""Weights in and out of the frameworks' own layers.

A model trained here, on any backend, loads into a plain PyTorch ``nn.GRU`` + ``nn.Linear``, Keras
``GRU`` + ``Dense``, Gluon ``rnn.GRU`` + ``nn.Dense`` or Flax ``GRUCell`` + ``Dense`` (and the
same for the RNN and the LSTM), with the same outputs; and weights of such layers load here.
The backends' layouts (``recurrent_layer``'s tables) say where each canonical weight goes: gate
order, transposes, and the second bias where a framework keeps one (going out it is zero, coming
in the two are added). docs/convert.md shows the round trips::

    recurrent, dense = convert.export_weights(params, "torch")
    gru = torch.nn.GRU(vocab_size, num_hiddens)
    gru.load_state_dict({name: torch.tensor(w) for name, w in recurrent.items()})

    params = convert.import_weights(recurrent, dense, "torch", cell="gru", variant="reset_after")

Weights are NumPy arrays under the framework's names (PyTorch's ``state_dict`` keys, Gluon's
parameter names without the block's prefix; Keras's and Flax's prefixed ``l<layer>/``).
"""
from __future__ import annotations

import numpy as np

from rnn_core import concise, model
from rnn_core.backend import get_backend
from rnn_core.errors import RNNCoreError


def _layer(backend: str, cell: str, variant: str, num_layers: int, vocab_size: int = 1,
           num_hiddens: int = 1):
    """The framework's layer object, for its layout (sizes do not change the layout)."""
    try:
        return get_backend(backend, "cpu").recurrent_layer(cell, variant, num_layers, vocab_size,
                                                          num_hiddens, vocab_size)
    except NotImplementedError as error:
        raise RNNCoreError(str(error)) from None


def export_weights(params, backend: str) -> tuple:
    """Canonical ``params`` (NumPy or any backend's, any cell) -> ``(recurrent, dense)``: the
    weights of the framework's recurrent layers and of its dense layer, ``{name: NumPy array}``
    each, for one-hot inputs of the vocabulary size."""
    cell, num_layers = model.architecture(params)
    params = type(params)(*(np.asarray(p, np.float32) for p in params))
    vocab_size, num_hiddens = params.b_q.shape[0], model.num_hiddens(params)
    layer = _layer(backend, cell.name, cell.variant, num_layers, vocab_size, num_hiddens)
    weights = concise.from_canonical(layer, params)
    dense = {name for name, _, _ in layer.dense_layout}
    return ({name: w for name, w in weights.items() if name not in dense},
            {name: w for name, w in weights.items() if name in dense})


def import_weights(recurrent: dict, dense: dict, backend: str, *, cell: str = "rnn",
                   variant: str | None = None, num_layers: int = 1):
    """``(recurrent, dense)`` weights of the framework's layers -> canonical NumPy parameters of
    ``num_layers`` layers of ``cell`` (its ``variant``); a framework's two biases are added."""
    kind = model.params_type(cell, variant, num_layers)
    cell_variant = model.architecture(kind)[0].variant
    layer = _layer(backend, cell, cell_variant, num_layers)
    weights = {**{k: np.asarray(v) for k, v in recurrent.items()},
               **{k: np.asarray(v) for k, v in dense.items()}}
    names = [name for name, _, _ in concise.layout(layer, kind)]
    missing, extra = [n for n in names if n not in weights], sorted(set(weights) - set(names))
    if missing or extra:
        raise RNNCoreError(
            f"these are not the weights of {num_layers} {cell} ({cell_variant}) layer(s) of "
            f"{backend}: missing {missing}, not expected {extra}; give cell, variant and "
            "num_layers of the model they come from")
    params = concise.to_canonical(layer, weights, kind)
    shapes = model.param_shapes(kind, params.b_q.shape[0], model.num_hiddens(params))
    if [p.shape for p in params] != shapes:
        raise RNNCoreError(f"the weights' shapes {[p.shape for p in params]} do not fit one "
                           f"model (expected {shapes}): were they exported for one-hot inputs?")
    return params
