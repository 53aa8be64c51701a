"""Weight conversion (rnn_core/convert.py) against the frameworks' plain layers, used as their own
users use them: ``load_state_dict`` on an ``nn.GRU``, ``set_weights`` on a Keras ``GRU``,
``set_data`` on Gluon's parameters, a Flax ``params`` tree. Those plain uses are the oracles, one
per framework, looked up by the backend under test (``--backends`` chooses which run)."""
import numpy as np
import pytest

from rnn_core import convert, model
from rnn_core.errors import RNNCoreError

from conftest import BATCH, HIDDEN, STEPS, VOCAB, selected_backends
from test_cells import make_problem
from test_cells import reference_forward as reference_cells

# One layer of every formula that a framework may have, and deep stacks with two biases.
ARCHS = [("rnn", "book", 1), ("gru", "book", 1), ("gru", "reset_after", 2), ("lstm", "book", 2)]
NAMES = ("kernel", "recurrent_kernel", "bias")


class TorchPlain:
    def __init__(self, cell, variant, num_layers):
        import torch
        self.torch, self.k = torch, 2 if cell == "lstm" else 1
        kind = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell]
        self.rnn, self.dense = kind(VOCAB, HIDDEN, num_layers), torch.nn.Linear(HIDDEN, VOCAB)

    def set(self, recurrent, dense):
        tensors = lambda ws: {k: self.torch.tensor(w) for k, w in ws.items()}   # noqa: E731
        self.rnn.load_state_dict(tensors(recurrent))
        self.dense.load_state_dict(tensors(dense))

    def get(self):
        return tuple({k: v.detach().numpy() for k, v in m.state_dict().items()}
                     for m in (self.rnn, self.dense))

    def run(self, inputs, state):
        h0 = [self.torch.tensor(np.stack(state[j::self.k])) for j in range(self.k)]
        Hs, _ = self.rnn(self.torch.tensor(inputs), h0[0] if self.k == 1 else tuple(h0))
        return self.dense(Hs.reshape(-1, HIDDEN)).detach().numpy()


class KerasPlain:
    def __init__(self, cell, variant, num_layers):
        import keras
        kind = {"rnn": keras.layers.SimpleRNN, "gru": keras.layers.GRU,
                "lstm": keras.layers.LSTM}[cell]
        options = {"reset_after": variant == "reset_after"} if cell == "gru" else {}
        self.k = 2 if cell == "lstm" else 1
        self.layers = [kind(HIDDEN, return_sequences=True, return_state=True, **options)
                       for _ in range(num_layers)]
        for l, layer in enumerate(self.layers):
            layer.build((None, None, VOCAB if l == 0 else HIDDEN))
        self.dense = keras.layers.Dense(VOCAB)
        self.dense.build((None, HIDDEN))

    def set(self, recurrent, dense):
        for l, layer in enumerate(self.layers):
            layer.set_weights([recurrent[f"l{l}/{name}"] for name in NAMES])
        self.dense.set_weights([dense["dense/kernel"], dense["dense/bias"]])

    def get(self):
        return ({f"l{l}/{name}": w for l, layer in enumerate(self.layers)
                 for name, w in zip(NAMES, layer.get_weights())},
                dict(zip(("dense/kernel", "dense/bias"), self.dense.get_weights())))

    def run(self, inputs, state):
        x = inputs.transpose(1, 0, 2)                                # batch-major
        for l, layer in enumerate(self.layers):
            x = layer(x, initial_state=list(state[l * self.k:(l + 1) * self.k]))[0]
        return np.asarray(self.dense(np.asarray(x).transpose(1, 0, 2).reshape(-1, HIDDEN)))


class GluonPlain:
    def __init__(self, cell, variant, num_layers):
        import mxnet as mx
        from mxnet.gluon import nn, rnn
        self.mx, self.k = mx, 2 if cell == "lstm" else 1
        options = {"activation": "tanh"} if cell == "rnn" else {}
        kind = {"rnn": rnn.RNN, "gru": rnn.GRU, "lstm": rnn.LSTM}[cell]
        self.rnn = kind(HIDDEN, num_layers, input_size=VOCAB, **options)
        self.dense = nn.Dense(VOCAB, in_units=HIDDEN)
        self.rnn.initialize(mx.init.Uniform(0.3))
        self.dense.initialize(mx.init.Uniform(0.3))

    def _params(self, block):
        return {name[len(block.prefix):]: p for name, p in block.collect_params().items()}

    def set(self, recurrent, dense):
        for block, weights in ((self.rnn, recurrent), (self.dense, dense)):
            for name, p in self._params(block).items():
                p.set_data(self.mx.nd.array(weights[name]))

    def get(self):
        return tuple({name: p.data().asnumpy() for name, p in self._params(block).items()}
                     for block in (self.rnn, self.dense))

    def run(self, inputs, state):
        nd = self.mx.nd
        Hs, _ = self.rnn(nd.array(inputs), [nd.array(np.stack(state[j::self.k]))
                                            for j in range(self.k)])
        return self.dense(Hs.reshape((-1, HIDDEN))).asnumpy()


class FlaxPlain:
    def __init__(self, cell, variant, num_layers):
        import jax
        from flax import linen as nn
        self.jax, self.k = jax, 2 if cell == "lstm" else 1
        kind = {"rnn": nn.SimpleCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}[cell]
        self.rnn, self.dense = nn.RNN(kind(HIDDEN), time_major=True), nn.Dense(VOCAB)
        self.params = [self.rnn.init(jax.random.PRNGKey(l), np.zeros(
            (STEPS, BATCH, VOCAB if l == 0 else HIDDEN), np.float32))["params"]
            for l in range(num_layers)]
        self.dense_params = self.dense.init(jax.random.PRNGKey(99),
                                            np.zeros((1, HIDDEN), np.float32))["params"]

    def set(self, recurrent, dense):
        for l, params in enumerate(self.params):
            for gate, leaves in params["cell"].items():
                for leaf in leaves:
                    leaves[leaf] = recurrent[f"l{l}/{gate}/{leaf}"]
        self.dense_params = {leaf: dense[f"dense/{leaf}"] for leaf in ("kernel", "bias")}

    def get(self):
        return ({f"l{l}/{gate}/{leaf}": np.asarray(w) for l, params in enumerate(self.params)
                 for gate, leaves in params["cell"].items() for leaf, w in leaves.items()},
                {f"dense/{leaf}": np.asarray(w) for leaf, w in self.dense_params.items()})

    def run(self, inputs, state):
        # A plain JAX program on a recent NVIDIA GPU multiplies in TF32 unless asked otherwise:
        # the oracle asks for IEEE float32, as a user who wants float32 does.
        with self.jax.default_matmul_precision("float32"):
            x = inputs
            for l, params in enumerate(self.params):
                layer_state = state[l * self.k:(l + 1) * self.k]
                carry = layer_state[0] if self.k == 1 else tuple(reversed(layer_state))  # (C, H)
                x = self.rnn.apply({"params": params}, x, initial_carry=carry)
            return np.asarray(self.dense.apply({"params": self.dense_params},
                                               x.reshape(-1, HIDDEN)))


PLAIN = {"torch": TorchPlain, "tf": KerasPlain, "mxnet": GluonPlain, "jax": FlaxPlain}


def one_hot(X):
    return np.eye(VOCAB, dtype=np.float32)[X.T]                      # (STEPS, BATCH, VOCAB)


def exported_or_refusal(backend, params):
    """The exported weights; None where the framework has no such layer (its refusal checked)."""
    cell, _ = model.architecture(params)
    try:
        return convert.export_weights(params, backend)
    except RNNCoreError as error:
        assert (cell.name, cell.variant) == ("gru", "book")
        assert "--variant reset_after" in str(error)
        return None


@pytest.mark.parametrize("arch", ARCHS, ids=lambda m: "-".join(map(str, m)))
def test_exported_weights_give_the_plain_framework_layer_the_scratch_outputs(layer_ops, arch,
                                                                            rng):
    params, X, _, state = make_problem(rng, arch)
    weights = exported_or_refusal(layer_ops.name, params)
    if weights is None:
        return
    plain = PLAIN[layer_ops.name](*arch)
    plain.set(*weights)                                # the framework's own loading, strict
    O_ref, _ = reference_cells(params, X, state)
    np.testing.assert_allclose(plain.run(one_hot(X), state), O_ref, rtol=1e-4, atol=1e-5)
    back = convert.import_weights(*weights, layer_ops.name, cell=arch[0], variant=arch[1],
                                  num_layers=arch[2])
    for got, want, name in zip(back, params, type(params)._fields):
        np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("arch", ARCHS, ids=lambda m: "-".join(map(str, m)))
def test_a_plain_framework_layers_weights_import_with_its_outputs(layer_ops, arch, rng):
    """The framework's own initialisation (both biases drawn, where it keeps two) -> canonical
    weights whose scratch model computes the framework layer's outputs."""
    cell, variant, num_layers = arch
    params, X, _, state = make_problem(rng, arch)
    if exported_or_refusal(layer_ops.name, params) is None:
        return
    plain = PLAIN[layer_ops.name](*arch)
    recurrent, dense = plain.get()
    imported = convert.import_weights(recurrent, dense, layer_ops.name, cell=cell,
                                      variant=variant, num_layers=num_layers)
    assert type(imported) is type(params)
    O_ref, _ = reference_cells(imported, X, state)
    np.testing.assert_allclose(plain.run(one_hot(X), state), O_ref, rtol=1e-4, atol=1e-5)


def test_weights_move_from_each_framework_to_the_next(layer_ops, request, rng):
    """A two-layer reset-after GRU and LSTM, from this framework's plain layers to the next
    selected framework's (the last to the first), through the canonical weights: the same
    outputs."""
    names = [n for n in selected_backends(request.config) if n in PLAIN]
    target = names[(names.index(layer_ops.name) + 1) % len(names)]
    for arch in (("gru", "reset_after", 2), ("lstm", "book", 2)):
        _, X, _, state = make_problem(rng, arch)
        source = PLAIN[layer_ops.name](*arch)
        canonical = convert.import_weights(*source.get(), layer_ops.name, cell=arch[0],
                                           variant=arch[1], num_layers=arch[2])
        destination = PLAIN[target](*arch)
        destination.set(*convert.export_weights(canonical, target))
        np.testing.assert_allclose(destination.run(one_hot(X), state),
                                   source.run(one_hot(X), state), rtol=1e-4, atol=1e-5,
                                   err_msg=f"{layer_ops.name} -> {target}")


def test_weights_of_another_model_are_refused_in_one_line(layer_ops, rng):
    params, _, _, _ = make_problem(rng, ("lstm", "book", 2))
    recurrent, dense = convert.export_weights(params, layer_ops.name)
    with pytest.raises(RNNCoreError, match=r"not the weights of 1 lstm \(book\) layer\(s\)"):
        convert.import_weights(recurrent, dense, layer_ops.name, cell="lstm")


def test_weights_with_a_layer_missing_or_of_another_input_size_are_refused_in_one_line(layer_ops,
                                                                                      rng):
    """One layer's weights imported as two layers' (the second layer's are missing), and weights
    whose input size is not the vocabulary's (a layer built for other inputs): each is the one-line
    error that names the problem, not a KeyError from the layout nor a model of the wrong
    shapes."""
    params, _, _, _ = make_problem(rng, ("lstm", "book", 1))
    recurrent, dense = convert.export_weights(params, layer_ops.name)
    with pytest.raises(RNNCoreError, match=r"not the weights of 2 lstm \(book\) layer\(s\) of "
                                           r"\w+: missing \['"):
        convert.import_weights(recurrent, dense, layer_ops.name, cell="lstm", num_layers=2)
    wider = params._replace(**{W: rng.normal(size=(VOCAB + 3, HIDDEN)).astype(np.float32)
                               for W, _ in model.architecture(params)[0].gates})
    recurrent, dense = convert.export_weights(wider, layer_ops.name)
    with pytest.raises(RNNCoreError, match="do not fit one model"):
        convert.import_weights(recurrent, dense, layer_ops.name, cell="lstm")
