"""The recurrent cells, one module each, found in one table: :data:`CELLS`.

A cell is its parameters (the book's ``get_params``), its initial state (``init_*_state``) and
its step (:class:`rnn_core.cells.cell.Cell` says exactly what each module gives). The loop over
time steps and layers is written once, in :mod:`rnn_core.model`, and knows nothing about the cell;
the trainer, generation, the hand-written backpropagation and checkpoints look a cell up here by
name. A new cell is a new module and one entry in :data:`CELLS`.
"""
from __future__ import annotations

from rnn_core.cells import gru, lstm, rnn
from rnn_core.cells.cell import Cell

# name -> {variant: Cell}, the book's variant first
CELLS = {"rnn": rnn.VARIANTS, "gru": gru.VARIANTS, "lstm": lstm.VARIANTS}
# name -> the settings of the book's runs of that cell (rnn_core.train.book_defaults)
BOOK_SETTINGS = {"rnn": rnn.BOOK, "gru": gru.BOOK, "lstm": lstm.BOOK}


def get_cell(name: str = "rnn", variant: str | None = None) -> Cell:
    """The :class:`Cell` of ``name`` and ``variant`` (None: the book's); an unknown name or
    variant raises a ValueError listing the known ones."""
    if name not in CELLS:
        raise ValueError(f"unknown cell {name!r}: choose {', '.join(CELLS)}")
    variants = CELLS[name]
    if variant is None:
        return next(iter(variants.values()))
    if variant not in variants:
        raise ValueError(f"the {name} cell has no variant {variant!r}: choose "
                         f"{' or '.join(variants)}")
    return variants[variant]
