"""The concise model: a framework's own recurrent layers and dense layer, on canonical weights.

The book's concise chapters build ``nn.RNN``/``nn.GRU``/``nn.LSTM`` + ``nn.Linear`` (PyTorch),
``SimpleRNN``/``GRU``/``LSTM`` + ``Dense`` (Keras), ``rnn.RNN``/``rnn.GRU``/``rnn.LSTM`` +
``nn.Dense`` (Gluon), and Flax's ``SimpleCell``/``GRUCell``/``LSTMCell`` + ``Dense``. Here the
trained parameters stay in the scratch model's canonical layout (:mod:`rnn_core.model`: ``W_xz,
W_hz, b_z, …, W_hq, b_q`` for the GRU); every forward pass lays them out the way the framework's
layers store them, as the backend's ``layout`` describes (:class:`rnn_core.ops.RecurrentLayer`:
gates joined in the framework's order, transposed, a second bias where the framework keeps one),
and calls the layers with them. Autograd flows back through
that layout, so the gradients, the clipping, the optimiser and the checkpoints are the scratch
model's, and every framework trains the same numbers. :func:`from_canonical` and
:func:`to_canonical` convert weights between a framework's layout and the canonical one.

The layer computes the formula of its framework: PyTorch's, Gluon's and Flax's GRU the
reset-after one, Keras's either (``reset_after``). A variant the framework has no layer for is
refused in one line.

Inputs: one-hot vectors ``(num_steps, batch, vocab)`` into a layer of input size ``vocab`` (the
book), or the input parts ``X_t·W_x?`` of all gates, looked up as rows with ``take``, into a layer
of input size ``gates * hidden`` whose input weights select each gate's part (the same numbers:
``X_t·W_x?·I``; far less work for a large vocabulary).
"""
from __future__ import annotations

import numpy as np

from rnn_core import model
from rnn_core.cells import get_cell
from rnn_core.errors import RNNCoreError
from rnn_core.ops import Ops, Tensor


def no_layer(framework: str, cell: str, variant: str, supported) -> str:
    """The one line a backend raises for a model its framework has no layer for."""
    supported = [v for c, v in supported if c == cell]
    if not supported:
        return (f"{framework} has no {cell.upper()} layer of its own: on this backend, use "
                "--model scratch")
    return (f"{framework}'s {cell.upper()} layer computes the {' or '.join(supported)} formula, "
            f"not the {variant} one: use --variant {supported[0]}, or --model scratch for the "
            f"{variant} formula")


class ConciseRNN:
    """The framework's recurrent + dense layers of one backend, for one model and vocabulary."""

    def __init__(self, ops: Ops, vocab_size: int, num_hiddens: int, *, cell: str = "rnn",
                 variant: str | None = None, num_layers: int = 1, onehot: bool = False):
        self.cell = get_cell(cell, variant)
        self.kind = model.params_type(cell, self.cell.variant, num_layers)
        gates = len(self.cell.gates)
        try:
            self.layer = ops.recurrent_layer(cell, self.cell.variant, num_layers,
                                             vocab_size if onehot else gates * num_hiddens,
                                             num_hiddens, vocab_size)
        except NotImplementedError as error:
            raise RNNCoreError(str(error)) from None
        self.ops, self.vocab_size, self.onehot = ops, vocab_size, onehot
        self.layout = layout(self.layer, self.kind)
        self.inputs = [model.layer_field_names(self.kind)[0][W] for W, _ in self.cell.gates]
        self.selectors = {}          # layer 1's input weights when the input parts are looked up
        if not onehot:
            eye = np.eye(gates * num_hiddens, dtype=np.float32)
            self.selectors = {W: ops.asarray(eye[:, j * num_hiddens:(j + 1) * num_hiddens])
                              for j, W in enumerate(self.inputs)}

    def framework_weights(self, params) -> list:
        """The canonical tensors laid out as the framework's layers take them (differentiable)."""
        values = {**params._asdict(), **self.selectors}
        return [_join(self.ops, parts, values, transposed) for _, parts, transposed in self.layout]

    def forward(self, X: Tensor, state: tuple, params):
        """Integer ``X (batch, num_steps)`` -> ``(O (num_steps*batch, vocab), state)``, like
        :func:`rnn_core.model.forward`."""
        ops = self.ops
        X_T = ops.matrix_transpose(X)                                   # (num_steps, batch)
        if self.onehot:
            num_steps, batch = X_T.shape
            inputs = ops.reshape(ops.one_hot(ops.reshape(X_T, (-1,)), self.vocab_size),
                                 (num_steps, batch, self.vocab_size))   # (num_steps, batch, vocab)
        else:                                     # (num_steps, batch, gates * hidden)
            W_x = [getattr(params, W) for W in self.inputs]
            inputs = ops.take(W_x[0] if len(W_x) == 1 else ops.concat(W_x, axis=1), X_T)
        return self.layer.apply(self.framework_weights(params), inputs, tuple(state))


def layout(layer, kind) -> list:
    """The framework's weights of a model of parameter type ``kind``, in the order
    ``layer.apply`` takes them: ``(framework's name, parts, transposed)`` with ``parts`` naming
    canonical fields as ``(field, kept)``; a field's later places (a second bias) are not kept:
    going to the framework they are zero, coming back they are added."""
    entries = []
    for l, names in enumerate(model.layer_field_names(kind)):
        kept = set()
        for name, parts, transposed in layer.layout:
            entries.append((name.format(l=l), _resolve(parts, names, kept), transposed))
    for name, parts, transposed in layer.dense_layout:
        entries.append((name, _resolve(parts, {"W_hq": "W_hq", "b_q": "b_q"}, set()), transposed))
    return entries


def _resolve(parts, names, kept):
    if isinstance(parts[0], tuple):                          # rows, stacked
        return tuple(_resolve(row, names, kept) for row in parts)
    resolved = []
    for part in parts:
        resolved.append((names[part], names[part] not in kept))
        kept.add(names[part])
    return tuple(resolved)


def _join(ops, parts, values, transposed):
    """One framework tensor from canonical ones: blocks joined along the gate (last) axis."""
    if isinstance(parts[0][0], tuple):                       # rows, stacked
        return ops.stack([_join(ops, row, values, False) for row in parts], axis=0)
    blocks = [values[field] if kept else ops.zeros(tuple(values[field].shape))
              for field, kept in parts]
    joined = blocks[0] if len(blocks) == 1 else ops.concat(blocks, axis=len(blocks[0].shape) - 1)
    return ops.matrix_transpose(joined) if transposed else joined


def from_canonical(layer, params) -> dict:
    """Canonical NumPy weights -> ``{framework name: NumPy array}`` in the layout of the
    framework's ``layer`` (one-hot input: the input weights are ``W_x?`` themselves)."""
    from rnn_core.backend import REFERENCE, get_backend
    numpy_ops = get_backend(REFERENCE, "cpu")
    values = {name: np.asarray(value, np.float32) for name, value in params._asdict().items()}
    return {name: np.array(_join(numpy_ops, parts, values, transposed))
            for name, parts, transposed in layout(layer, type(params))}


def to_canonical(layer, weights: dict, kind):
    """``{framework name: NumPy array}`` in the layout of ``layer`` -> canonical NumPy weights of
    parameter type ``kind``; blocks of the same field (two biases) add up."""
    fields = {}
    for name, parts, transposed in layout(layer, kind):
        w = np.asarray(weights[name], np.float32)
        w = w.T if transposed else w
        rows = (parts, w) if isinstance(parts[0][0], tuple) else ((parts,), (w,))
        for row_parts, row in zip(*rows):
            for (field, _), block in zip(row_parts, np.split(row, len(row_parts), axis=-1)):
                fields[field] = fields[field] + block if field in fields else block
    return kind(**{f: np.ascontiguousarray(fields[f], dtype=np.float32) for f in kind._fields})
