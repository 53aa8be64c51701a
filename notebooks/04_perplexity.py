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
# # Perplexity
#
# The chapter reports its training progress as a perplexity: the exponential of the mean
# cross-entropy per character,
#
#     PPL = exp( (1/N) Σ_i −log p(c_i | c_<i) )
#
# One way to read it: the model is as unsure as if it had to pick, uniformly, among PPL
# characters. This notebook follows [docs/perplexity.md](../docs/perplexity.md) and runs on
# NumPy (always installed; the other backends give the same numbers, see the cross-backend
# notebook).

# %%
# %matplotlib inline
import math

import numpy as np

import rnn_core
from rnn_core import api
from rnn_core import model
from rnn_core.data import load_corpus
from rnn_core.train import perplexity

ops = rnn_core.get_backend("numpy")
print("installed backends:", ", ".join(api.available_backends()), "| this notebook uses: numpy")
corpus = load_corpus()            # the project's small lyrics corpus
V = corpus.vocab.vocab_size
print(f"corpus {corpus.name}: {len(corpus.chars)} characters, {V} distinct")

# %% [markdown]
# ## Three reference points
#
# * A model that puts probability 1 on the right character: cross-entropy 0, perplexity **1**.
# * A model that knows nothing and spreads its bet evenly: cross-entropy `log V`, perplexity
#   **V**, the vocabulary size.
# * A model that is confidently wrong: its perplexity is **above V**, worse than guessing.
#
# We compute them with the model's own cross-entropy on made-up logits.

# %%
labels = ops.asarray(np.array([3, 1, 4, 1, 5]))
cases = {
    "certain and right": np.where(np.arange(V) == np.array([3, 1, 4, 1, 5])[:, None], 50.0, 0.0),
    "uniform": np.zeros((5, V)),
    "certain and wrong": np.where(np.arange(V) == 0, 50.0, 0.0) * np.ones((5, 1)),
}
for name, logits in cases.items():
    loss = float(ops.to_numpy(model.cross_entropy(ops, ops.asarray(logits), labels)).reshape(()))
    print(f"{name:>18}: cross-entropy {loss:10.3g}, perplexity {perplexity(loss):.4g}")

# %% [markdown]
# `perplexity` returns `inf` where `exp` would overflow, instead of raising: a diverging run
# prints `inf` and goes on to report the diverged loss.

# %%
print(perplexity(1000.0), math.isinf(perplexity(1000.0)))

# %% [markdown]
# ## A training run
#
# The first epoch already starts below `V`, and the perplexity falls as the model learns which
# characters follow which. The dashed line is the uniform guess.

# %%
result = api.train("numpy", num_epochs=10, num_hiddens=32, pred_period=5, pred_len=20)

# %%
figure = result.figure("perplexity of a small model, numpy")
figure.axes[0].axhline(V, color="grey", linestyle="--", label=f"uniform guess (V = {V})")
figure.axes[0].legend()
figure

# %% [markdown]
# Every batch holds `batch_size × num_steps` labels, so the mean over the epoch is the mean of
# the batch losses: the training loop keeps them on the device and reads them once per epoch.
