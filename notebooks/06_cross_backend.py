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
# # One algorithm, every framework
#
# rnn-core writes the chapter's model once, against a small set of tensor operations, and runs
# it on each framework. So every backend starts from the same weights, reads the same batches
# and should compute the same numbers, up to float32 rounding. This notebook trains the same
# model on every backend installed here, compares the curves, the timings and the generated
# text, and moves a trained model from one framework to another. It follows
# [docs/cross-backend.md](../docs/cross-backend.md).

# %%
# %matplotlib inline
import json
import tempfile
from pathlib import Path

import rnn_core
from rnn_core import api

BACKENDS = api.available_backends()
print("running on:", ", ".join(BACKENDS))
print("skipped (not installed):",
      ", ".join(n for n in rnn_core.BACKEND_NAMES if n not in BACKENDS) or "none")

# %% [markdown]
# ## The same training, side by side
#
# `compare` trains one backend after the other, with the book's settings except a smaller
# model and fewer epochs, so that this notebook runs in seconds. (`python -m rnn_core.compare`
# does the same from the command line, each backend in a process of its own.)

# %%
comparison = api.compare(BACKENDS, num_epochs=5, num_hiddens=32, pred_len=20)

# %%
print(comparison.table(every=1))

# %%
comparison.figure()

# %% [markdown]
# The curves lie on top of each other: this small model stays within about 1e-6 of NumPy's
# losses over five epochs. At the book's size (256 hidden units, 250 epochs) it is different: at
# the book's step (`lr = 100`, `θ = 0.01`) every SGD step has length 1, the training dynamics
# amplify the rounding differences of the first steps, and the backends' perplexities at epoch 50
# range from 69.7 to 73.0; they meet again as training converges (docs/cross-backend.md). The
# summary gives the largest difference of each loss curve from NumPy's, and the timings (the
# median epoch after the first, which also compiles):

# %%
print(comparison.summary())

# %% [markdown]
# What each backend generates from the prefixes. After five epochs of a small model the most
# likely next character is nearly always the space, the most common one, so the greedy text is
# mostly blank; the book trains 250 epochs with 256 hidden units to get lyrics.

# %%
print(comparison.samples_text())

# %% [markdown]
# ## A model trained on one framework, run on every other
#
# A checkpoint holds the weights in the canonical layout, as NumPy arrays, so any backend can
# load it. We train on the first backend, save, and continue the same prefix greedily on each.

# %%
with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "model.npz"
    trained = api.train(BACKENDS[0], num_epochs=3, num_hiddens=32, save=path,
                             verbose=False)
    for name in BACKENDS:
        print(f"{name:>6}:", api.generate(path, "分开", 20, backend=name))

# %% [markdown]
# Every backend continues the prefix with the same characters. Greedy decoding picks the most
# likely character each time, so it repeats itself. Sampling with a temperature gives more
# varied text, reproducibly for a given seed:

# %%
for temperature in (0.5, 1.0):
    print(f"T = {temperature}:", api.generate(trained, "分开", 20, temperature=temperature, seed=0))

# %% [markdown]
# A result without its weights converts to plain JSON (this is what `python -m rnn_core.compare`
# sends from each backend's process):

# %%
print(json.dumps(trained.to_dict(), ensure_ascii=False)[:300], "...")
