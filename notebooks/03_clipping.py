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
# # Gradient clipping
#
# Backpropagation through time multiplies the gradient by `W_hhᵀ` once for every step it goes
# back. When that matrix stretches vectors, the gradient grows geometrically with `num_steps`,
# and one step of gradient descent can throw the weights far away. The chapter's remedy is to
# rescale the gradient of all parameters together whenever its length exceeds a threshold θ.
# This notebook follows [docs/clipping.md](../docs/clipping.md); the code is `grad_clipping` in
# `rnn_core/train.py`.
#
# Everything here runs on NumPy, which trains with the hand-written backpropagation through
# time (`rnn_core/bptt.py`): the gradients are the ones every framework's autograd computes
# (the tests check that), and NumPy is always installed.

# %%
# %matplotlib inline
import numpy as np
from matplotlib.figure import Figure

import rnn_core
from rnn_core import api, bptt, model
from rnn_core.errors import TrainingDiverged
from rnn_core.train import grad_clipping

ops = rnn_core.get_backend("numpy")
print("installed backends:", ", ".join(api.available_backends()), "| this notebook uses: numpy")

# %% [markdown]
# ## Gradients that grow with the number of steps
#
# Take a small random model and a random batch, and measure the length of the gradient of
# `W_hh` for longer and longer sequences (from two steps: with one step from a zero state,
# `W_hh` has no gradient). We scale a random `W_hh` so that it shrinks vectors
# (0.5), keeps their length on average (1.0) or stretches them (2.0).

# %%
V, H, batch = 30, 32, 4
rng = np.random.default_rng(0)
lengths = [2, 4, 8, 16, 32, 64]
norms = {}
for scale in (0.5, 1.0, 2.0):
    params = model.RNNParams(*(rng.normal(scale=0.3, size=p.shape).astype(np.float32)
                               for p in model.init_params(V, H)))
    params = params._replace(W_hh=(rng.normal(size=(H, H)) * scale / np.sqrt(H)).astype(np.float32))
    norms[f"W_hh scale {scale}"] = []
    for num_steps in lengths:
        X, Y = (ops.asarray(rng.integers(0, V, size=(batch, num_steps))) for _ in "XY")
        _, grads = bptt.loss_and_grad_bptt(ops, params, model.init_rnn_state(ops, batch, H), X, Y, V)
        norms[f"W_hh scale {scale}"].append(float(np.sqrt(np.sum(grads.W_hh ** 2))))

figure = Figure(figsize=(6.4, 4.0))
ax = figure.subplots()
for label, values in norms.items():
    ax.plot(lengths, values, "o-", label=label)
ax.set_xscale("log", base=2)
ax.set_yscale("log")
ax.set_xlabel("num_steps")
ax.set_ylabel("norm of dL/dW_hh (log scale)")
ax.set_title("gradient length against sequence length")
ax.legend()
figure

# %% [markdown]
# ## Clipping: one scale factor for all parameters
#
# With `‖g‖ = sqrt(Σ_p Σ g_p²)` over every parameter, the chapter replaces `g` by
# `g · θ / ‖g‖` when `‖g‖ > θ`. Our code writes it `g · θ / max(‖g‖, θ)`, the same thing without
# a Python `if`, so that it can run inside a compiled step. The direction is kept; only the
# length changes.

# %%
grads = [ops.asarray(np.array([3.0, 0.0])), ops.asarray(np.array([[0.0, 4.0]]))]   # ‖g‖ = 5
for theta in (10.0, 1.0, 0.01):
    clipped = grad_clipping(ops, grads, theta)
    length = np.sqrt(sum(np.sum(g ** 2) for g in clipped))
    print(f"θ = {theta:>5}: length {length:.3f}, first gradient {clipped[0]}")

# %% [markdown]
# ## Training with and without clipping
#
# The book trains with `lr = 100` and `θ = 0.01`. Since the gradient is almost always longer
# than 0.01, every step moves the weights by exactly `lr · θ = 1` in length: so `lr = 10`,
# `θ = 0.1` gives the very same run. Without clipping (θ huge), the same learning rates make
# the first steps enormous and the perplexity explodes.

# %%
settings = dict(num_epochs=5, num_hiddens=32, verbose=False)
curves = {}
for lr, theta in ((100, 0.01), (10, 0.1), (10, 1e9)):
    label = f"lr {lr}, theta {theta:g}" if theta < 1e9 else f"lr {lr}, no clipping"
    try:
        curves[label] = api.train("numpy", lr=lr, clipping_theta=theta, **settings).perplexities
    except TrainingDiverged as error:   # the loss itself became NaN or infinite
        print(label, "diverged:", error)
for label, values in curves.items():
    print(f"{label:>20}: " + ", ".join(f"{p:.3g}" for p in values))

# %%
api.perplexity_figure(curves, "clipping keeps the step length at lr * theta")

# %% [markdown]
# The two clipped runs lie on top of each other, and the unclipped run climbs to perplexities
# of many orders of magnitude above the vocabulary size: a model far worse than guessing.
# (With `lr = 100` and no clipping the perplexity passes 1e145 in the first epoch and is `inf`
# in the next, too large for a float, while the loss, its logarithm, stays finite; try it.)
