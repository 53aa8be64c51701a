"""The MXNet backend (the legacy ``mx.nd`` NDArray API that the book's first edition uses):
each op is one call of ``mx.nd``; autograd is ``attach_grad`` + ``autograd.record``.

:meth:`MXNetOps.graph` is what Gluon's ``hybridize(static_alloc=True, static_shape=True)`` does
for a block, done for a plain function: the function runs once with ``mx.sym`` symbols in place
of arrays (every op below calls ``self.F``, which is ``mx.nd``, or ``mx.sym`` while tracing, as a
``HybridBlock`` receives ``F``), and the resulting graph runs as one ``CachedOp``, which autograd
records as one node and differentiates with the graph's own backward pass.

MXNet's NDArray has no zero-dimensional arrays: a reduction over all axes has shape ``(1,)``."""
import contextlib
import os

import mxnet as mx
import numpy as np

from rnn_core.cells import get_cell
from rnn_core.concise import no_layer
from rnn_core.errors import DeviceUnavailable
from rnn_core.ops import python_loop, python_scan

# MXNet's numerics on a GPU are set by environment variables that its CUDA libraries read once,
# when they start: NVIDIA_TF32_OVERRIDE=0 keeps cuBLAS and cuDNN from using TF32 (the default on
# Ampere and later, as mxnet.test_utils says), MXNET_ENFORCE_DETERMINISM=1 makes MXNet choose
# deterministic cuDNN algorithms. Not verified on a GPU (docs/gpu.md).
TF32_OVERRIDE, ENFORCE_DETERMINISM = "NVIDIA_TF32_OVERRIDE", "MXNET_ENFORCE_DETERMINISM"


class MXNetOps:
    name = "mxnet"
    gpu_device = str(mx.gpu(0))

    @staticmethod
    def gpu_count():
        return mx.context.num_gpus()

    def __init__(self, device="auto", *, precision="float32", deterministic=False):
        num_gpus = self.gpu_count()
        if device == "gpu" and num_gpus == 0:
            raise DeviceUnavailable(
                f"--device gpu: MXNet {mx.__version__} sees no GPU (mx.context.num_gpus() is 0; "
                "the 'mxnet' package on PyPI is CPU-only). Use --device cpu, or install the CUDA "
                "build that matches your driver (for example mxnet-cu112) on a machine with a GPU")
        self._ctx = mx.gpu(0) if num_gpus and device in ("gpu", "auto") else mx.cpu()
        self.device = str(self._ctx)
        self.version = mx.__version__
        self.precision, self.deterministic = precision, deterministic
        self.F = mx.nd        # the op namespace; a _SymbolNamespace while graph() traces
        self._ones_cache = {}
        if self._ctx.device_type == "gpu":
            if precision == "tf32":
                os.environ.pop(TF32_OVERRIDE, None)
            else:
                os.environ[TF32_OVERRIDE] = "0"
            if deterministic:
                os.environ[ENFORCE_DETERMINISM] = "1"

    def numerics(self):
        if self._ctx.device_type != "gpu":
            return {"tf32": None, "deterministic": None}    # no such switches on the CPU
        return {"tf32": os.environ.get(TF32_OVERRIDE) != "0",
                "deterministic": os.environ.get(ENFORCE_DETERMINISM) == "1"}

    def numerics_scope(self):
        return contextlib.nullcontext()     # CUDA's libraries read the variables once (above)

    def asarray(self, x, /):
        x = np.asarray(x)
        return mx.nd.array(x, ctx=self._ctx, dtype=np.float32 if x.dtype.kind == "f" else np.int64)

    def to_numpy(self, x, /):
        return x.asnumpy()

    def zeros(self, shape, /):
        return self.F.zeros(shape, ctx=self._ctx, dtype=np.float32)

    def matmul(self, x1, x2, /):
        return self.F.dot(x1, x2)

    def linear(self, x, weight, bias, /):
        # FullyConnected computes x · Wᵀ + b with oneDNN, its bias gradient included.
        return self.F.FullyConnected(x, self.F.transpose(weight), bias, num_hidden=weight.shape[1])

    def matrix_transpose(self, x, /):
        return self.F.transpose(x)

    def concat(self, xs, /, *, axis=0):
        return self.F.concat(*xs, dim=axis)

    def stack(self, xs, /, *, axis=0):
        return self.F.stack(*xs, axis=axis)

    def unstack(self, x, /):
        parts = self.F.split(x, num_outputs=x.shape[0], axis=0, squeeze_axis=True)
        return [parts] if x.shape[0] == 1 else list(parts)

    def reshape(self, x, shape, /):
        return self.F.reshape(x, shape)

    def take(self, x, indices, /, *, axis=0):
        return self.F.take(x, indices, axis=axis)

    def take_along_axis(self, x, indices, /, *, axis=-1):
        return self.F.pick(x, self.F.reshape(indices, (-1,)), axis=axis, keepdims=True)

    def segment_sum(self, data, segment_ids, /, *, num_segments):
        # MXNet 1.x has no public scatter-add; the one-hot product gives the same sums.
        return self.F.dot(self.F.one_hot(segment_ids, num_segments), data, transpose_a=True)

    def one_hot(self, indices, num_classes, /):
        return self.F.one_hot(indices, num_classes, dtype=np.float32)

    def tanh(self, x, /):
        return self.F.tanh(x)

    def sigmoid(self, x, /):
        return self.F.sigmoid(x)

    def exp(self, x, /):
        return self.F.exp(x)

    def expm1(self, x, /):
        return self.F.expm1(x)

    def log(self, x, /):
        return self.F.log(x)

    def sqrt(self, x, /):
        return self.F.sqrt(x)

    def log_softmax(self, x, /, *, axis=-1):
        return self.F.log_softmax(x, axis=axis)

    def clip(self, x, /, min=None, max=None):
        if min is not None:
            x = self.F.maximum(x, min)
        return x if max is None else self.F.minimum(x, max)

    def sum(self, x, /, *, axis=None, keepdims=False):
        if axis is None and not keepdims:
            # MXNet 1.9's CPU reduction adds about 0.2 G elements/s (1.3 ms for W_xh's 263k);
            # the same sum as a dot product with a vector of ones runs in BLAS.
            size = int(np.prod(x.shape))
            return self.F.dot(self.F.reshape(x, (size,)), self._ones(size))      # (1,)
        return self.F.sum(x, axis=axis, keepdims=keepdims)

    def _ones(self, size):
        """A vector of ``size`` ones, made once (a graph takes it as a captured input)."""
        if size not in self._ones_cache:
            self._ones_cache[size] = mx.nd.ones((size,), ctx=self._ctx)
        return self._ones_cache[size]

    def max(self, x, /, *, axis=None, keepdims=False):
        return self.F.max(x, axis=axis, keepdims=keepdims)

    def argmax(self, x, /, *, axis=None):
        return self.F.argmax(x, axis=axis).astype(np.int64)

    def stop_gradient(self, x, /):
        return self.F.stop_gradient(x)

    def value_and_grad(self, f, params, /):
        params = [p.copy() for p in params]
        for p in params:
            p.attach_grad()
        with mx.autograd.record():
            loss, aux = f(params)
        loss.backward()
        return (loss, aux), [p.grad for p in params]

    def recurrent_layer(self, cell, variant, num_layers, input_size, num_hiddens, vocab_size):
        if (cell, variant) not in GLUON_LAYERS:
            raise NotImplementedError(no_layer("Gluon", cell, variant, GLUON_LAYERS))
        return GluonRecurrentLayer(cell, variant, num_layers, input_size, num_hiddens, vocab_size)

    def scan(self, f, carry, xs, /):
        return python_scan(self, f, carry, xs)    # unrolled into graph()'s trace

    def compile_loop(self, f):
        return python_loop(self, f)       # autograd cannot run inside a CachedOp

    def compile(self, fn):
        return fn             # a step that calls autograd cannot be one graph; see graph()

    def graph(self, fn):
        """One graph for the loss, because MXNet's engine and autograd pay a fixed cost for every
        operator run one by one (docs/benchmarks.md), and a ``CachedOp`` runs a graph as one.

        ``fn`` is traced once per input signature into one ``CachedOp`` (static memory and
        shapes), called on NDArrays. Arrays ``fn`` captures from outside (constants such as the
        concise model's identity) become graph inputs, the same arrays on every call."""
        cache = {}

        def run(*args):
            leaves = []
            spec = _flatten(args, leaves)
            key = (spec, tuple((x.shape, np.dtype(x.dtype).str) for x in leaves))
            if key not in cache:
                cache[key] = self._trace(fn, spec, leaves)
            op, sources, out_spec = cache[key]
            outputs = op(*[leaves[i] if isinstance(i, int) else i for i in sources])
            outputs = outputs if isinstance(outputs, list) else [outputs]
            return _unflatten(out_spec, iter(outputs))

        return run

    def _trace(self, fn, spec, leaves):
        trace = _Trace()
        inputs = [_Traced(mx.sym.var(f"arg{i}", shape=x.shape, dtype=x.dtype), trace)
                  for i, x in enumerate(leaves)]
        previous, self.F = self.F, _SymbolNamespace(trace)
        try:
            out = fn(*_unflatten(spec, iter(inputs)))
        finally:
            self.F = previous
        out_leaves = []
        out_spec = _flatten(out, out_leaves)
        graph = mx.sym.Group([trace.symbol(x) for x in out_leaves])
        names = {f"arg{i}": i for i in range(len(leaves))}
        names.update(trace.captured)              # name -> the captured NDArray itself
        sources = [names[name] for name in graph.list_inputs()]
        op = mx.nd.CachedOp(graph, flags=[("static_alloc", True), ("static_shape", True)])
        return op, sources, out_spec


# (cell, variant) -> Gluon's layer, its options, and how it stores one layer's weights
# (rnn_core/ops.py, RecurrentLayer): gates in MXNet's order (GRU r, z, n; LSTM i, f, c, o),
# each weight (gates * hidden, inputs), two biases whose sum is the book's. rnn.GRU computes the
# reset-after GRU only.
GLUON_LAYERS = {
    ("rnn", "book"): ("RNN", {"activation": "tanh"}, (
        ("l{l}_i2h_weight", ("W_xh",), True), ("l{l}_h2h_weight", ("W_hh",), True),
        ("l{l}_i2h_bias", ("b_h",), False), ("l{l}_h2h_bias", ("b_h",), False))),
    ("gru", "reset_after"): ("GRU", {}, (
        ("l{l}_i2h_weight", ("W_xr", "W_xz", "W_xh"), True),
        ("l{l}_h2h_weight", ("W_hr", "W_hz", "W_hh"), True),
        ("l{l}_i2h_bias", ("b_r", "b_z", "b_h"), False),
        ("l{l}_h2h_bias", ("b_r", "b_z", "b_hh"), False))),
    ("lstm", "book"): ("LSTM", {}, (
        ("l{l}_i2h_weight", ("W_xi", "W_xf", "W_xc", "W_xo"), True),
        ("l{l}_h2h_weight", ("W_hi", "W_hf", "W_hc", "W_ho"), True),
        ("l{l}_i2h_bias", ("b_i", "b_f", "b_c", "b_o"), False),
        ("l{l}_h2h_bias", ("b_i", "b_f", "b_c", "b_o"), False))),
}


class GluonRecurrentLayer:
    """Gluon ``rnn.RNN``, ``rnn.GRU`` or ``rnn.LSTM`` (``num_layers`` deep) + ``nn.Dense``, called
    through their ``hybrid_forward`` with the weights as arguments (Gluon 1.x's functional form).
    Gluon keeps the state of all layers in one array ``(layers, batch, hidden)`` (and a second for
    the LSTM's ``C``)."""
    dense_layout = (("weight", ("W_hq",), True), ("bias", ("b_q",), False))

    def __init__(self, cell, variant, num_layers, input_size, num_hiddens, vocab_size):
        from mxnet.gluon import nn, rnn
        kind, options, self.layout = GLUON_LAYERS[cell, variant]
        self.rnn = getattr(rnn, kind)(num_hiddens, num_layers, layout="TNC",
                                      input_size=input_size, **options)
        self.dense = nn.Dense(vocab_size, in_units=num_hiddens)
        self.num_hiddens, self.num_layers = num_hiddens, num_layers
        self.names = [name.format(l=l) for l in range(num_layers) for name, _, _ in self.layout]
        self.state_size = get_cell(cell, variant).state_size          # (H,) or (H, C)

    def apply(self, weights, inputs, state):
        if isinstance(inputs, _Traced):         # inside MXNetOps.graph: the symbolic form
            trace = inputs.trace
            O, state = self._apply(mx.sym, [trace.symbol(w) for w in weights], inputs.sym,
                                   [trace.symbol(s) for s in state])
            return _Traced(O, trace), tuple(_Traced(s, trace) for s in state)
        return self._apply(mx.nd, weights, inputs, state)

    def _apply(self, F, weights, inputs, state):
        k, n = self.state_size, len(self.names)
        stacked = [F.stack(*state[j::k], axis=0) for j in range(k)]   # (layers, batch, hidden)
        Hs, last = self.rnn.hybrid_forward(F, inputs, stacked, **dict(zip(self.names, weights)))
        O = self.dense.hybrid_forward(F, F.reshape(Hs, (-1, self.num_hiddens)),
                                      weight=weights[n], bias=weights[n + 1])
        return O, tuple(F.squeeze(F.slice_axis(last[j], axis=0, begin=l, end=l + 1), axis=0)
                        for l in range(self.num_layers) for j in range(k))


# ---- tracing a function into a graph (MXNetOps.graph) ------------------------------------------

class _Trace:
    """One tracing run: symbols for the arrays the function captured from outside."""

    def __init__(self):
        self.captured = {}                       # symbol name -> NDArray
        self.variables = {}                      # id of a captured NDArray -> its symbol

    def symbol(self, x):
        if isinstance(x, _Traced):
            return x.sym
        if isinstance(x, mx.nd.NDArray):
            if id(x) not in self.variables:
                name = f"captured{len(self.captured)}"
                self.captured[name] = x
                self.variables[id(x)] = mx.sym.var(name, shape=x.shape, dtype=x.dtype)
            return self.variables[id(x)]
        if isinstance(x, (list, tuple)):
            return type(x)(self.symbol(v) for v in x)
        return x                                  # Python numbers, None, strings: attributes


class _Traced:
    """Stands for an NDArray while a function is traced: a symbol, plus the ``shape`` the core
    reads (symbols carry none; it is inferred from the inputs' shapes). Arithmetic broadcasts, as
    NDArray arithmetic does (a symbol's own ``+`` does not)."""

    def __init__(self, sym, trace):
        self.sym, self.trace = sym, trace

    @property
    def shape(self):
        return tuple(self.sym.infer_shape_partial()[1][0])

    def __iter__(self):                           # the outputs of split()
        return (_Traced(self.sym[i], self.trace) for i in range(len(self.sym.list_outputs())))

    def _binary(self, other, with_array, with_number, reverse=False):
        if isinstance(other, (int, float)):
            return _Traced(with_number(self.sym, other), self.trace)
        a, b = self.sym, self.trace.symbol(other)
        return _Traced(with_array(b, a) if reverse else with_array(a, b), self.trace)

    def __add__(self, o):
        return self._binary(o, _add, lambda s, c: s + c)

    def __radd__(self, o):
        return self._binary(o, _add, lambda s, c: c + s, reverse=True)

    def __sub__(self, o):
        return self._binary(o, mx.sym.broadcast_sub, lambda s, c: s - c)

    def __rsub__(self, o):
        return self._binary(o, mx.sym.broadcast_sub, lambda s, c: c - s, reverse=True)

    def __mul__(self, o):
        return self._binary(o, mx.sym.broadcast_mul, lambda s, c: s * c)

    def __rmul__(self, o):
        return self._binary(o, mx.sym.broadcast_mul, lambda s, c: c * s, reverse=True)

    def __truediv__(self, o):
        return self._binary(o, mx.sym.broadcast_div, lambda s, c: s / c)

    def __rtruediv__(self, o):
        return self._binary(o, mx.sym.broadcast_div, lambda s, c: c / s, reverse=True)

    def __neg__(self):
        return _Traced(-self.sym, self.trace)


def _add(a, b):
    """``a + b``, broadcasting. A bias ``b (n,)`` added to every row of ``a (..., n)`` is added as
    ``ones · b``: the gradient of ``b`` is then a BLAS product with ones (a GEMV), where MXNet
    1.9's gradient of ``broadcast_add`` reduces at about 0.2 G elements/s (2.8 ms a step for
    ``b_h`` at the Jay Chou settings)."""
    (shape_a,), (shape_b,) = a.infer_shape_partial()[1], b.infer_shape_partial()[1]
    if len(shape_b) == 1 and len(shape_a) > 1 and shape_a[-1] == shape_b[0]:
        rows = int(np.prod(shape_a[:-1]))
        spread = mx.sym.dot(mx.sym.ones((rows, 1)), mx.sym.reshape(b, (1, -1)))  # (rows, n)
        return a + mx.sym.reshape(spread, shape_a)
    return mx.sym.broadcast_add(a, b)


class _SymbolNamespace:
    """``mx.sym`` for the ops while tracing: arguments are unwrapped to symbols, results wrapped
    as :class:`_Traced`; ``ctx`` is dropped (a graph runs where its inputs are)."""

    def __init__(self, trace):
        self.trace = trace

    def __getattr__(self, name):
        function = getattr(mx.sym, name)

        def call(*args, **kwargs):
            kwargs.pop("ctx", None)
            args = [self.trace.symbol(a) for a in args]
            kwargs = {k: self.trace.symbol(v) for k, v in kwargs.items()}
            return _Traced(function(*args, **kwargs), self.trace)

        return call


def _flatten(tree, leaves: list):
    """Nested tuples, lists and named tuples of arrays -> a hashable spec; arrays go to
    ``leaves``, anything else (numbers, None) stays in the spec."""
    if isinstance(tree, (tuple, list)):
        return (type(tree), tuple(_flatten(item, leaves) for item in tree))
    if isinstance(tree, (mx.nd.NDArray, _Traced)):
        leaves.append(tree)
        return "array"
    return ("constant", tree)


def _unflatten(spec, leaves):
    if spec == "array":
        return next(leaves)
    kind, content = spec
    if kind == "constant":
        return content
    items = [_unflatten(item, leaves) for item in content]
    return kind(*items) if hasattr(kind, "_fields") else kind(items)
