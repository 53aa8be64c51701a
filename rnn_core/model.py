"""The chapter's language model around any cell, written once against :class:`rnn_core.ops.Ops`:
its parameters, the loop over time steps and layers, the logits and the loss.

A model is a cell (:mod:`rnn_core.cells`: ``rnn``, and a variant of its formula) stacked
``num_layers`` deep (the book's deep RNN: layer ``l`` reads layer ``l-1``'s states ``H_t``, layer
1 reads the characters), under one output layer that reads the top layer:

    O_t = H_t^(L) · W_hq + b_q                           # (batch, vocab): the logits

The parameters are one flat NamedTuple, the canonical layout every backend and checkpoint
shares: layer 1's fields under the book's names (``W_xh, W_hh, b_h`` for the RNN), layer ``l ≥
2``'s with the suffix ``_l<l>`` (``W_xh_l2``), then ``W_hq, b_q``. Its type says which model it
is (:func:`architecture`), so :func:`forward` and :func:`loss` take the parameters of any cell.
The state is a flat tuple too, each layer's in turn: ``(H^(1), H^(2), …)``, or ``(H^(1),
C^(1), H^(2), C^(2), …)`` for the LSTM.

:func:`forward` computes the logits two ways. ``onehot=True`` is the book's path: one-hot inputs
multiplied by ``W_xh``, one output product per step (for one layer, the cell's own book function,
such as the book's ``rnn``). ``onehot=False`` looks the rows of ``W_xh`` up with ``take`` (an
embedding lookup, the same numbers) and, unless ``per_step``, projects all steps with one matrix
product (the fast path). The tests check they agree.

Rows of the stacked outputs are time-major: row ``t * batch + b`` is step ``t`` of sequence ``b``,
which is why the labels are ``Y.T`` flattened, as in the book.
"""
from __future__ import annotations

import collections
import functools

import numpy as np

from rnn_core.cells import CELLS, get_cell
from rnn_core.cells.cell import Cell
from rnn_core.cells.rnn import RNNParams, init_rnn_state, rnn  # noqa: F401  (the chapter's names)
from rnn_core.ops import Ops, Tensor

INIT_SCHEMES = ("normal", "uniform")

# canonical parameter type -> (cell, num_layers): every cell's one-layer Params, and the deep
# types params_type() makes.
_ARCHITECTURES = {cell.Params: (cell, 1) for variants in CELLS.values()
                  for cell in variants.values()}


def params_type(cell: str = "rnn", variant: str | None = None, num_layers: int = 1) -> type:
    """The canonical NamedTuple of ``num_layers`` layers of ``cell`` (its ``variant``; None is
    the book's): the cell's own ``Params`` for one layer (``RNNParams``), a generated type for
    more, always the same type for the same model."""
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be 1 or more, got {num_layers!r}")
    return _params_type(get_cell(cell, variant), num_layers)


@functools.lru_cache(maxsize=None)
def _params_type(cell: Cell, num_layers: int) -> type:
    if num_layers == 1:
        return cell.Params
    fields = [name + ("" if layer == 1 else f"_l{layer}")
              for layer in range(1, num_layers + 1) for name in cell.layer_fields]
    kind = collections.namedtuple(f"{cell.Params.__name__}{num_layers}Layers",
                                  fields + ["W_hq", "b_q"])
    _ARCHITECTURES[kind] = (cell, num_layers)
    return kind


def architecture(params) -> tuple:
    """``(cell, num_layers)`` of canonical ``params`` (or of their type)."""
    kind = params if isinstance(params, type) else type(params)
    if kind not in _ARCHITECTURES:
        raise TypeError(f"{kind.__name__} is not a canonical parameter type: build the "
                        "parameters with get_params, or wrap them with params_type(...)(*arrays)")
    return _ARCHITECTURES[kind]


@functools.lru_cache(maxsize=None)
def _layer_type(cell: Cell) -> type:
    return collections.namedtuple(cell.Params.__name__.replace("Params", "LayerParams"),
                                  cell.layer_fields)


def layers(params) -> list:
    """One NamedTuple per layer, with the book's names: layer ``l``'s ``W_xh_l<l>`` is its
    ``W_xh``."""
    cell, num_layers = architecture(params)
    k = len(cell.layer_fields)
    return [_layer_type(cell)(*params[l * k:(l + 1) * k]) for l in range(num_layers)]


def layer_field_names(kind) -> list:
    """For each layer of parameter type ``kind``, ``{book name: canonical field}``:
    ``[{'W_xh': 'W_xh', ...}, {'W_xh': 'W_xh_l2', ...}]``."""
    cell, num_layers = architecture(kind)
    k = len(cell.layer_fields)
    return [dict(zip(cell.layer_fields, kind._fields[l * k:(l + 1) * k]))
            for l in range(num_layers)]


def param_shapes(kind: type, vocab_size: int, num_hiddens: int) -> list:
    """The shape of every field of parameter type ``kind``, in order (rnn_core/cells/cell.py)."""
    cell, num_layers = architecture(kind)

    def shape(name, inputs):
        if name.startswith("W_x"):
            return (inputs, num_hiddens)
        return (num_hiddens, num_hiddens) if name.startswith("W_h") else (num_hiddens,)
    return ([shape(name, vocab_size if layer == 0 else num_hiddens)
             for layer in range(num_layers) for name in cell.layer_fields]
            + [(num_hiddens, vocab_size), (vocab_size,)])


def init_params(vocab_size: int, num_hiddens: int, seed: int = 0, scheme: str = "normal", *,
                cell: str = "rnn", variant: str | None = None, num_layers: int = 1):
    """Float32 NumPy weights drawn by one generator seeded once, the weight matrices first in the
    order of the fields (``W_xh, W_hh, W_hq`` for the RNN), then the biases, so every backend that
    receives them starts from the same point.

    ``normal``: the scratch chapters', weights from N(0, 0.01²) and zero biases.
    ``uniform``: PyTorch's default for its recurrent layers and ``nn.Linear`` (the book's concise
    PyTorch run), every weight and bias from U(-1/√hidden, 1/√hidden).
    """
    kind = params_type(cell, variant, num_layers)
    rng = np.random.default_rng(seed)
    if scheme == "normal":
        def draw(shape):
            return rng.normal(scale=0.01, size=shape).astype(np.float32)
        zero_bias = True
    elif scheme == "uniform":
        bound = 1.0 / np.sqrt(num_hiddens)

        def draw(shape):
            return rng.uniform(-bound, bound, size=shape).astype(np.float32)
        zero_bias = False
    else:
        raise ValueError(f"unknown init {scheme!r}: choose {' or '.join(INIT_SCHEMES)}")
    shapes = dict(zip(kind._fields, param_shapes(kind, vocab_size, num_hiddens)))
    values = {name: draw(shape) for name, shape in shapes.items() if name.startswith("W_")}
    values.update({name: np.zeros(shape, np.float32) if zero_bias else draw(shape)
                   for name, shape in shapes.items() if not name.startswith("W_")})
    return kind(**values)


def get_params(ops: Ops, vocab_size: int, num_hiddens: int, seed: int = 0,
               scheme: str = "normal", **model):
    """The book's ``get_params``: :func:`init_params` (``model``: ``cell``, ``variant``,
    ``num_layers``) moved onto the backend's device."""
    return params_to_backend(ops, init_params(vocab_size, num_hiddens, seed, scheme, **model))


def params_to_backend(ops: Ops, params):
    return type(params)(*(ops.asarray(np.asarray(p)) for p in params))


def params_to_numpy(ops: Ops, params):
    return type(params)(*(ops.to_numpy(p) for p in params))


def num_hiddens(params) -> int:
    return params.W_hq.shape[0]


def init_state(ops: Ops, params, batch_size: int) -> tuple:
    """The zero state of the model ``params`` belong to, for ``batch_size`` sequences: every
    layer's ``init_*_state``, in turn."""
    cell, num_layers = architecture(params)
    return cell.init_state(ops, batch_size, num_hiddens(params)) * num_layers


def to_onehot(ops: Ops, X: Tensor, vocab_size: int) -> list:
    """The book's ``to_onehot``: integer ``X (batch, num_steps)`` -> a list of ``num_steps``
    float32 matrices ``(batch, vocab)``, one per time step."""
    X_T = ops.matrix_transpose(X)                   # (num_steps, batch)
    return [ops.one_hot(X_T[t], vocab_size) for t in range(X_T.shape[0])]


def input_parts(ops: Ops, cell: Cell, p, inputs, *, onehot: bool = False) -> list:
    """``X_t · W_x? + b_?`` of every gate, each stacked over the steps: ``(num_steps, batch,
    hidden)``.

    ``inputs`` are integer characters ``X (batch, num_steps)`` (layer 1) or a lower layer's
    states ``H (num_steps, batch, hidden)``. Characters pick rows of ``W_x?`` with ``take`` (or,
    with ``onehot``, the book's one-hot products); states are multiplied all steps at once (or,
    with ``onehot``, the book's path, step by step). Off the book's path a bias is added to all
    steps at once, ``(X_t·W + b) + H·W_h``: the same sum as the book's, with one bias addition
    (and gradient) per layer."""
    if len(inputs.shape) == 3:              # a lower layer's states H (num_steps, batch, hidden)
        if onehot:                          # the book's path: one product per step
            return [ops.stack([ops.matmul(H_t, getattr(p, W)) + getattr(p, b)
                               for H_t in ops.unstack(inputs)]) for W, b in cell.gates]
        num_steps, batch, hidden = inputs.shape
        H = ops.reshape(inputs, (num_steps * batch, hidden))         # time-major rows
        return [ops.reshape(ops.linear(H, getattr(p, W), getattr(p, b)), (num_steps, batch, -1))
                for W, b in cell.gates]
    if onehot:
        X_onehot = to_onehot(ops, inputs, getattr(p, cell.gates[0][0]).shape[0])
        return [ops.stack([ops.matmul(X_t, getattr(p, W)) + getattr(p, b) for X_t in X_onehot])
                for W, b in cell.gates]
    X_T = ops.matrix_transpose(inputs)                           # (num_steps, batch)
    return [ops.take(getattr(p, W), X_T) + getattr(p, b) for W, b in cell.gates]


def run_layers(ops: Ops, X: Tensor, state: tuple, params, *, onehot: bool = False,
               keep: bool = False):
    """Every layer over every step: returns ``(Hs, saved, state)``, with ``Hs[l]`` layer ``l``'s
    states ``H_1, …, H_T`` stacked, ``(num_steps, batch, hidden)``, ``saved[l]`` (with
    ``keep``, else ``None``) what its steps saved for the backward pass, each tensor stacked over
    the steps, and the new state. A layer's steps are the loop ``ops.scan`` runs: a Python loop,
    or, inside JAX's compiled step, one ``lax.scan``."""
    cell, _ = architecture(params)
    k = cell.state_size
    all_Hs, all_saved, new_state = [], [], []
    inputs = X
    for l, p in enumerate(layers(params)):
        def step(layer_state, xw, p=p):                          # xw: one step's input parts
            layer_state, kept = cell.step(ops, p, xw, layer_state)
            return layer_state, (layer_state[0], kept if keep else None)

        parts = tuple(input_parts(ops, cell, p, inputs, onehot=onehot))
        layer_state, (H, saved) = ops.scan(step, tuple(state[l * k:(l + 1) * k]), parts)
        all_Hs.append(H)                                         # (num_steps, batch, hidden)
        all_saved.append(saved)
        new_state.extend(layer_state)
        inputs = H
    return all_Hs, all_saved, tuple(new_state)


def hidden_states(ops: Ops, X: Tensor, state: tuple, params, *, onehot: bool = False):
    """``(H, state)``: the top layer's states ``H (num_steps, batch, hidden)`` and the new state,
    for integer ``X (batch, num_steps)``."""
    Hs, _, state = run_layers(ops, X, state, params, onehot=onehot)
    return Hs[-1], state


def forward(ops: Ops, X: Tensor, state: tuple, params, vocab_size: int, *,
            onehot: bool = False, per_step: bool = False):
    """Logits of every step for integer ``X (batch, num_steps)``: returns
    ``(O, state)`` with ``O (num_steps * batch, vocab)``, rows time-major."""
    cell, num_layers = architecture(params)
    if onehot and num_layers == 1:                 # the book's own function
        outputs, state = cell.book(ops, to_onehot(ops, X, vocab_size), state, params)
        return ops.concat(outputs, axis=0), state
    H, state = hidden_states(ops, X, state, params, onehot=onehot)   # (num_steps, batch, hidden)
    if per_step:
        outputs = [ops.matmul(H_t, params.W_hq) + params.b_q for H_t in ops.unstack(H)]
        return ops.concat(outputs, axis=0), state
    H = ops.reshape(H, (-1, H.shape[-1]))                       # (num_steps * batch, hidden)
    return ops.linear(H, params.W_hq, params.b_q), state         # (num_steps * batch, vocab)


def labels(ops: Ops, Y: Tensor) -> Tensor:
    """The book's ``Y.T.reshape((-1,))``: ``(batch, num_steps)`` -> time-major ``(num_steps*batch,)``."""
    return ops.reshape(ops.matrix_transpose(Y), (-1,))


def cross_entropy(ops: Ops, O: Tensor, y: Tensor) -> Tensor:
    """Mean softmax cross-entropy of logits ``O (n, vocab)`` against integer labels ``y (n,)``:
    ``mean_i(log Σ_j exp(O_ij) - O_{i,y_i}) = -mean_i log softmax(O_i)_{y_i}``, a scalar."""
    n = O.shape[0]
    log_p = ops.log_softmax(O, axis=1)                                   # (n, vocab)
    return -ops.sum(ops.take_along_axis(log_p, ops.reshape(y, (-1, 1)), axis=1)) / n


def loss(ops: Ops, params, state: tuple, X: Tensor, Y: Tensor, vocab_size: int, *,
         onehot: bool = False, per_step: bool = False):
    """``(mean cross-entropy, new state)`` of one minibatch: the function autograd differentiates."""
    O, state = forward(ops, X, state, params, vocab_size, onehot=onehot, per_step=per_step)
    return cross_entropy(ops, O, labels(ops, Y)), state
