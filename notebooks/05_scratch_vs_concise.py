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
# # The scratch model and the concise model
#
# The chapter builds its RNN twice: once *from scratch* (`H = tanh(X·W_xh + H·W_hh + b_h)`,
# written with matrix products) and once *concisely*, with the framework's own recurrent layer
# (`torch.nn.RNN`, Keras `SimpleRNN`, Gluon `rnn.RNN`) and a dense layer. Both compute the same
# function. rnn-core keeps one set of weights, the scratch model's, and hands them to the
# framework's layers in the layout each one wants, so the two models can be compared number for
# number. This notebook follows [docs/concise.md](../docs/concise.md) and
# [docs/training.md](../docs/training.md).

# %%
# %matplotlib inline
import rnn_core
from rnn_core import api
from rnn_core.backend import REFERENCE, has

BACKENDS = api.available_backends()
with_layers = [name for name in BACKENDS if has(name, "layers")]
print("installed:", ", ".join(BACKENDS))
print("with an RNN layer (concise model):", ", ".join(with_layers) or "none")
print("skipped (not installed):",
      ", ".join(n for n in rnn_core.BACKEND_NAMES if n not in BACKENDS) or "none")

# %% [markdown]
# ## The book's settings for each model
#
# The chapter trains the scratch model with SGD at learning rate 100 and random sampling; its
# concise runs use consecutive sampling, and the PyTorch edition uses Adam at 0.001 from
# PyTorch's default (uniform) initialisation. `make_config` fills in those defaults.

# %%
for model_name, optimizer in (("scratch", "sgd"), ("concise", "sgd"), ("concise", "adam")):
    c = api.make_config(model=model_name, optimizer=optimizer)
    print(f"{model_name:>7} + {optimizer:<4}: lr {c.lr:g}, {c.sampling} sampling, {c.init} init, "
          f"theta {c.clipping_theta}")

# %% [markdown]
# ## One set of weights, each framework's layout
#
# The canonical weights are `W_xh (vocab, hidden)`, `W_hh`, `b_h`, `W_hq (hidden, vocab)` and
# `b_q`. Each framework's layers store them under their own names, some transposed, and PyTorch
# and Gluon split `b_h` into two biases that add up. A backend's `recurrent_layer` declares that
# layout; `concise.from_canonical` lays the weights out accordingly.

# %%
from rnn_core import concise, model

params = model.init_params(vocab_size=10, num_hiddens=4)
for name in with_layers:
    layer = rnn_core.get_backend(name).recurrent_layer("rnn", "book", 1, 10, 4, 10)
    shapes = {key: value.shape for key, value in concise.from_canonical(layer, params).items()}
    print(f"{name}:", ", ".join(f"{key} {shape}" for key, shape in shapes.items()))

# %% [markdown]
# ## Training both models on the same numbers
#
# `compare(model="concise")` trains the concise model on every backend that has the layers,
# and the scratch model on NumPy (which has no RNN layer), from the same weights, with the same
# settings. We use the second edition's gentler step (`lr = 1`, `θ = 1`), where float32 rounding
# does not get amplified, so the curves should agree to several digits.

# %%
names = [REFERENCE] + with_layers
comparison = api.compare(names, model="concise", num_epochs=4, num_hiddens=32, lr=1.0,
                              clipping_theta=1.0, pred_len=10)
for name, result in comparison.results.items():
    print(f"{name:>6}: {result.config.model} model")
print()
print(comparison.table(every=1))

# %%
comparison.figure("scratch (numpy) and concise (framework layers), same weights")

# %%
print(comparison.summary())

# %% [markdown]
# The "largest loss difference" column is the largest gap between a backend's log-perplexity
# curve and NumPy's scratch model. The concise model runs the framework's own kernels, which
# add in a different order, so the gaps are rounding, not a different model.
