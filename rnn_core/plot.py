"""Perplexity curves as a matplotlib ``Figure``, built with the object-oriented API (no pyplot, no
``matplotlib.use``), so drawing one changes no process-wide state: a notebook shows it inline, a
command-line tool saves it as a PNG, at exactly the path given, written atomically
(:func:`rnn_core.outputs.write_atomically`). Text in the picture is ASCII only (backend names,
axis labels), so it renders the same on every machine without a CJK font."""
from __future__ import annotations

import io
from pathlib import Path

from rnn_core.errors import RNNCoreError
from rnn_core.outputs import write_atomically


def perplexity_figure(curves: dict, title: str = ""):
    """``curves``: ``{label: [perplexity of epoch 1, 2, ...]}`` -> a ``matplotlib.figure.Figure``
    with one line per label, perplexity on a log scale."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as error:
        raise RNNCoreError("plots need matplotlib: pip install -e '.[plot]'"
                           ) from error
    figure = Figure(figsize=(6.4, 4.0), dpi=120)
    axes = figure.subplots()
    # Curves that agree lie on top of each other: widths and dashes keep every one visible.
    styles = [("-", 5.0), ("--", 3.0), (":", 2.5), ("-.", 1.5)]
    for k, (label, values) in enumerate(curves.items()):
        style, width = styles[k % len(styles)] if len(curves) > 1 else ("-", 2.0)
        axes.plot(range(1, len(values) + 1), values, style, label=label, linewidth=width,
                  alpha=0.85)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel("perplexity (log scale)")
    axes.set_title(title.encode("ascii", "replace").decode())   # no CJK font needed
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    return figure


def perplexity_plot(curves: dict, path, title: str = "") -> Path:
    """``curves``: ``{label: [perplexity of epoch 1, 2, ...]}`` -> a PNG at exactly ``path``."""
    image = io.BytesIO()
    perplexity_figure(curves, title).savefig(image, format="png")
    return write_atomically(path, image.getvalue(), "the plot")
