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
# # One-hot inputs, and one product instead of two
#
# This notebook follows [docs/onehot-and-identity.md](../docs/onehot-and-identity.md). It shows
# what a one-hot input is, why the product of a one-hot row with `W_xh` is a row lookup, and the
# identity the chapter checks numerically:
#
#     X·W_xh + H·W_hh  =  [X, H] · [W_xh; W_hh]
#
# on every framework installed here.

# %%
# %matplotlib inline
import numpy as np
from matplotlib.figure import Figure

import rnn_core
from rnn_core import api
from rnn_core import model
from rnn_core.data import Vocab
from rnn_core.identity import concatenated_matmul_identity

BACKENDS = api.available_backends()
print("running on:", ", ".join(BACKENDS))
print("skipped (not installed):",
      ", ".join(n for n in rnn_core.BACKEND_NAMES if n not in BACKENDS) or "none")

# %% [markdown]
# ## One-hot rows
#
# A vocabulary gives every character an index. Character `i` of a vocabulary of `V` characters
# becomes the row `e_i`: `V` zeros with a single 1 at place `i`. We build a small vocabulary
# from an English phrase so that the picture stays readable (the Chinese lyrics have about a
# thousand characters).

# %%
text = "the time traveller"
vocab = Vocab(text)
print(vocab.vocab_size, "characters, most frequent first:", vocab.idx_to_char)
indices = np.array([vocab.encode("the time")])            # (batch=1, num_steps=8)
ops = rnn_core.get_backend("numpy")
steps = model.to_onehot(ops, ops.asarray(indices), vocab.vocab_size)
print(len(steps), "time steps, each of shape", steps[0].shape)

# %%
onehot = np.concatenate([ops.to_numpy(step) for step in steps])   # (num_steps, V)
figure = Figure(figsize=(6, 3))
ax = figure.subplots()
ax.imshow(onehot, cmap="Greys")
ax.set_xticks(range(vocab.vocab_size), [c if c != " " else "sp" for c in vocab.idx_to_char])
ax.set_yticks(range(len("the time")), [c if c != " " else "sp" for c in "the time"])
ax.set_xlabel("vocabulary index")
ax.set_ylabel("character of the input")
ax.set_title("one-hot rows of 'the time'")
figure.tight_layout()
figure

# %% [markdown]
# ## A product that only picks rows
#
# `e_i · W_xh` multiplies a row of zeros and one 1 with `W_xh`: the result is row `i` of
# `W_xh`. So the chapter's one-hot product and a lookup of rows (`ops.take`, what frameworks
# call an embedding) give the same numbers, and the lookup skips `2·V·hidden` multiply-adds per
# character. The fast path of `rnn_core/model.py` looks rows up; `book_path=True` multiplies.

# %%
W_xh = np.random.default_rng(0).normal(size=(vocab.vocab_size, 4)).astype(np.float32)
by_product = onehot @ W_xh                                  # (num_steps, hidden)
by_lookup = ops.to_numpy(ops.take(ops.asarray(W_xh), ops.asarray(indices[0])))
print("largest difference, product vs lookup:", np.abs(by_product - by_lookup).max())

# %% [markdown]
# ## Two products are one product of concatenations
#
# The hidden layer adds two products, `X·W_xh + H·W_hh`. Joining `X` and `H` side by side
# (columns) and stacking `W_xh` on top of `W_hh` (rows) gives one product with the same value.
# `concatenated_matmul_identity` draws the chapter's shapes, `X (3, 1)`, `W_xh (1, 4)`,
# `H (3, 4)`, `W_hh (4, 4)`, from one seeded generator and computes both sides with a backend's
# own ops. The differences are float32 rounding.

# %%
for name in BACKENDS:
    separate, joined, difference = concatenated_matmul_identity(rnn_core.get_backend(name))
    print(f"{name:>6}: largest difference {difference:.1e}")
print("\nX·W_xh + H·W_hh on the last backend:\n", separate.round(4))

# %% [markdown]
# The same identity is why some implementations keep a single weight matrix for the input and
# the state: one larger product instead of two smaller ones.
