# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Reading a corpus in minibatches: random and consecutive sampling
#
# A language model learns from pairs `(X, Y)`: `X` holds `num_steps` characters of the corpus,
# and `Y` holds the character that follows each of them. The chapter has two ways to cut a
# corpus into such pairs, and they lead to two ways of treating the hidden state. This notebook
# follows [docs/sampling.md](../docs/sampling.md); the code is `rnn_core/sampling.py`.
#
# The samplers produce plain NumPy arrays, and every backend receives exactly these arrays, so
# this notebook trains on NumPy, the reference backend, which is always installed.

# %%
# %matplotlib inline
import random

import numpy as np
from matplotlib.figure import Figure

import rnn_core
from rnn_core import api, sampling

print("installed backends:", ", ".join(api.available_backends()), "| this notebook uses: numpy")

# %% [markdown]
# ## A toy corpus
#
# Take the "corpus" `0, 1, …, 29`, so that a character is its own position. With
# `batch_size=2` and `num_steps=4`, **random sampling** cuts it into seven examples that start
# at 0, 4, 8, …, 24 (the last character can only be a label), shuffles them, and serves them two
# at a time: three batches, and one example is left over. The two rows of a batch are not
# neighbours in the text.

# %%
toy = list(range(30))
for X, Y in sampling.data_iter_random(toy, batch_size=2, num_steps=4, rng=random.Random(0)):
    print("X =", X.tolist(), "\nY =", Y.tolist(), "\n")

# %% [markdown]
# **Consecutive sampling** lays the corpus out in `batch_size` rows and reads them from left to
# right. Row `b` of a batch continues row `b` of the batch before it: the state the model reached
# at the end of one batch is the right state to start the next.

# %%
for X, Y in sampling.data_iter_consecutive(toy, batch_size=2, num_steps=4):
    print("X =", X.tolist(), "\nY =", Y.tolist(), "\n")

# %% [markdown]
# The same thing as a picture: each square is one position of the corpus, numbered by the batch
# that reads it, with one line of squares per row of the batch (dark: not read as an input).
# Random sampling jumps around; consecutive sampling walks through each half of the corpus in
# order.

# %%
def batch_map(batches, num_rows, length):
    """Which batch (1, 2, ...) reads each corpus position, one line per batch row."""
    picture = np.zeros((num_rows, length))
    for i, (X, _) in enumerate(batches, start=1):
        for row in range(num_rows):
            picture[row, X[row]] = i
    return picture


figure = Figure(figsize=(8, 2.6))
axes = figure.subplots(2, 1)
for ax, (name, batches) in zip(axes, [
        ("random", sampling.data_iter_random(toy, 2, 4, random.Random(0))),
        ("consecutive", sampling.data_iter_consecutive(toy, 2, 4))]):
    picture = batch_map(batches, 2, 30)
    ax.imshow(picture, cmap="viridis", aspect="auto")
    for (row, position), number in np.ndenumerate(picture):
        if number:
            ax.text(position, row, int(number), ha="center", va="center", fontsize=8)
    ax.set_title(f"{name} sampling: the batch that reads each position", fontsize=10)
    ax.set_yticks([0, 1], ["row 0", "row 1"])
axes[-1].set_xlabel("position in the corpus")
figure.tight_layout()
figure

# %% [markdown]
# ## What it means for the hidden state
#
# With random sampling the next batch has nothing to do with the last one, so training starts
# every batch from a zero state. With consecutive sampling training carries the state over,
# **detached** first: the gradient stops at the batch boundary (truncated backpropagation
# through time), but the information in the state flows on. Both are one setting of
# `api.train`; here is a short run of each on the project's small lyrics corpus, with a
# small model so that it finishes in seconds.

# %%
settings = dict(num_epochs=8, num_hiddens=32, verbose=False)
runs = {name: api.train("numpy", sampling=name, **settings)
        for name in ("random", "consecutive")}
for name, result in runs.items():
    print(f"{name:>11}: perplexity {result.perplexities[0]:.1f} after one epoch, "
          f"{result.perplexities[-1]:.1f} after {len(result.history)}")

# %%
api.perplexity_figure({name: r.perplexities for name, r in runs.items()},
                      "random and consecutive sampling, numpy, 8 epochs")

# %% [markdown]
# Both runs start from the same weights (the same `seed`) and read nearly the whole corpus every
# epoch, in a different order and with a different treatment of the state: random sampling a
# new choice of examples each epoch, consecutive sampling the same rows in the same order. The chapter trains
# for 250 epochs; try `num_epochs=50` to see the curves separate further.
