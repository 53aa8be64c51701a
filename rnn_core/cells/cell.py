"""What a cell is: the unit the generic loop (:mod:`rnn_core.model`) runs over steps and layers.

A cell module gives one :class:`Cell` per variant of its formula, the book's first. The loop, the
trainer, generation, the hand-written backpropagation (:mod:`rnn_core.bptt`) and checkpoints use
only what is listed here, so none of them has a branch for a particular cell.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Tuple


@dataclass(frozen=True)
class Cell:
    """One variant of one cell.

    ``Params``: the canonical NamedTuple of a one-layer model, in the book's names and order, the
    output layer ``W_hq, b_q`` last. Shapes follow from the names: ``W_x?`` is ``(inputs,
    hidden)``, ``W_h?`` is ``(hidden, hidden)``, ``W_hq`` is ``(hidden, vocab)``, ``b_q`` is
    ``(vocab,)`` and every other ``b_?`` is ``(hidden,)``.

    ``gates``: for each gate, in the order ``step`` takes them, the names ``(W_x?, b_?)`` of its
    input part ``X·W_x? + b_?``. The loop computes the input parts of all steps at once (a row
    lookup for characters, one product for a lower layer's states), then runs the steps.

    ``init_state(ops, batch, hidden)``: the book's ``init_*_state``, a tuple of ``state_size``
    zero matrices ``(batch, hidden)``: ``(H,)``, or ``(H, C)`` for the LSTM; ``H`` comes first.

    ``step(ops, p, xw, state) -> (state, saved)``: one time step of one layer with weights ``p``
    (the layer's fields under the book's names), input parts ``xw`` (one ``(batch, hidden)``
    matrix per gate) and ``state``. ``saved`` is what ``backward`` needs; autograd ignores it.

    ``backward(ops, p) -> step_back``: the hand-written backward step (docs/bptt.md),
    ``step_back(saved, d_state) -> (d_xw, d_state_prev, products)``: the gradients of the step's
    input parts and of the state it received, and ``products[name] = (U, G)`` from which the
    layer's recurrent parameter ``name`` gets ``Σ_t U_tᵀ·G_t`` (``U`` None: a bias, ``Σ_t Σ_rows
    G_t``).

    ``book(ops, inputs, state, params) -> (outputs, state)``: the book's own function, one layer
    on a list of one-hot inputs, output layer included; ``--book-path`` runs it.
    """
    name: str                                  # 'rnn', 'gru', 'lstm'
    variant: str                               # 'book', or another formula of the same cell
    Params: type
    gates: Tuple[Tuple[str, str], ...]
    state_size: int
    init_state: Callable
    step: Callable
    backward: Callable
    book: Callable

    @property
    def layer_fields(self) -> Tuple[str, ...]:
        """The fields of one layer: ``Params`` without the output layer."""
        return self.Params._fields[:-2]
