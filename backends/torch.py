"""The PyTorch backend: each op is one call of ``torch``; autograd is ``torch.autograd.grad``.

PyTorch's TF32 and determinism switches are process-wide: :meth:`TorchOps.numerics_scope` sets
them to the backend's ``precision`` and ``deterministic`` for a step or a call of the core, and
puts back the process's own afterwards."""
import contextlib
import os

import numpy as np
import torch

from rnn_core.cells import get_cell
from rnn_core.concise import no_layer
from rnn_core.errors import DeviceUnavailable, RNNCoreError
from rnn_core.ops import python_loop, python_scan, within_numerics


class TorchOps:
    name = "torch"
    gpu_device = "cuda:0"
    malloc_arrays = True        # CPU tensors come from glibc's malloc: see backends/_allocator.py

    @staticmethod
    def gpu_count():
        return torch.cuda.device_count() if torch.cuda.is_available() else 0

    def __init__(self, device="auto", *, precision="float32", deterministic=False):
        has_cuda = self.gpu_count() > 0
        if device == "gpu" and not has_cuda:
            raise DeviceUnavailable(
                "--device gpu: PyTorch sees no CUDA GPU (torch.cuda.is_available() is False; "
                f"this torch {torch.__version__} build is "
                f"{'CPU-only' if torch.version.cuda is None else 'for CUDA ' + torch.version.cuda}). "
                "Use --device cpu, or install a CUDA build of torch on a machine with a GPU")
        use_gpu = has_cuda and device in ("gpu", "auto")
        self._device = torch.device(self.gpu_device if use_gpu else "cpu")
        self.device = str(self._device)
        self.version = torch.__version__
        self.precision, self.deterministic = precision, deterministic
        if deterministic and use_gpu:
            _fix_cublas_workspace()

    def numerics(self):
        return {"tf32": any(_tf32_allowed()),
                "deterministic": torch.are_deterministic_algorithms_enabled()
                if self._device.type == "cuda" else None}

    @contextlib.contextmanager
    def numerics_scope(self):
        """TF32 in CUDA products and cuDNN as ``precision`` says, and deterministic algorithms
        if asked for on a GPU, until the block ends; then the process's own settings again. On
        the CPU PyTorch's kernels repeat bit for bit already, and the deterministic switch is left
        alone."""
        determinism = self.deterministic and self._device.type == "cuda"
        saved = _tf32_settings(), (_deterministic_settings() if determinism else None)
        try:
            _allow_tf32(self.precision == "tf32")
            if determinism:
                # use_deterministic_algorithms(True)'s switch for eager ops, without its setting
                # for torch.compile, which would import the compiler stack: its Triton crashes a
                # CUDA build's process where JAX or TensorFlow was loaded first
                torch.set_deterministic_debug_mode("error")
                torch.backends.cudnn.benchmark = False      # the same cuDNN algorithm every run
            yield
        finally:
            _restore_tf32_settings(saved[0])
            if determinism:
                _restore_deterministic_settings(saved[1])

    def asarray(self, x, /):
        x = np.asarray(x)
        dtype = torch.float32 if x.dtype.kind == "f" else torch.int64
        return torch.tensor(x, dtype=dtype, device=self._device)

    def to_numpy(self, x, /):
        return x.detach().cpu().numpy()

    def zeros(self, shape, /):
        return torch.zeros(shape, dtype=torch.float32, device=self._device)

    def matmul(self, x1, x2, /):
        return torch.matmul(x1, x2)

    def linear(self, x, weight, bias, /):
        return torch.addmm(bias, x, weight)

    def matrix_transpose(self, x, /):
        return torch.t(x)

    def concat(self, xs, /, *, axis=0):
        return torch.cat(list(xs), dim=axis)

    def stack(self, xs, /, *, axis=0):
        return torch.stack(list(xs), dim=axis)

    def unstack(self, x, /):
        return list(torch.unbind(x, dim=0))

    def reshape(self, x, shape, /):
        return torch.reshape(x, shape)

    def take(self, x, indices, /, *, axis=0):
        return torch.index_select(x, axis, indices.reshape(-1)).reshape(
            *x.shape[:axis], *indices.shape, *x.shape[axis + 1:])

    def take_along_axis(self, x, indices, /, *, axis=-1):
        return torch.take_along_dim(x, indices, dim=axis)

    def segment_sum(self, data, segment_ids, /, *, num_segments):
        out = torch.zeros((num_segments,) + tuple(data.shape[1:]), dtype=data.dtype,
                          device=data.device)
        return out.index_add(0, segment_ids, data)

    def one_hot(self, indices, num_classes, /):
        return torch.nn.functional.one_hot(indices, num_classes).to(torch.float32)

    def tanh(self, x, /):
        return torch.tanh(x)

    def sigmoid(self, x, /):
        return torch.sigmoid(x)

    def exp(self, x, /):
        return torch.exp(x)

    def expm1(self, x, /):
        return torch.expm1(x)

    def log(self, x, /):
        return torch.log(x)

    def sqrt(self, x, /):
        return torch.sqrt(x)

    def log_softmax(self, x, /, *, axis=-1):
        return torch.log_softmax(x, dim=axis)

    def clip(self, x, /, min=None, max=None):
        return torch.clamp(x, min=min, max=max)

    def sum(self, x, /, *, axis=None, keepdims=False):
        return torch.sum(x) if axis is None else torch.sum(x, dim=axis, keepdim=keepdims)

    def max(self, x, /, *, axis=None, keepdims=False):
        return torch.amax(x, dim=() if axis is None else axis, keepdim=keepdims)

    def argmax(self, x, /, *, axis=None):
        return torch.argmax(x, dim=axis)

    def stop_gradient(self, x, /):
        return x.detach()

    def value_and_grad(self, f, params, /):
        params = [p.detach().requires_grad_(True) for p in params]
        with self.numerics_scope(), torch.enable_grad():
            loss, aux = f(params)
            grads = torch.autograd.grad(loss, params)
        return (loss.detach(), aux), list(grads)

    def recurrent_layer(self, cell, variant, num_layers, input_size, num_hiddens, vocab_size):
        if (cell, variant) not in TORCH_LAYERS:
            raise NotImplementedError(no_layer("PyTorch", cell, variant, TORCH_LAYERS))
        return TorchRecurrentLayer(cell, variant, num_layers, input_size, num_hiddens,
                                   vocab_size, self._device, self.numerics_scope)

    def scan(self, f, carry, xs, /):
        return python_scan(self, f, carry, xs)

    def compile_loop(self, f):
        """On a GPU, the minibatch step captured once as a CUDA graph and replayed for each
        minibatch, because eager PyTorch launches each of a step's hundreds of small kernels from
        Python, and on a GPU those launches, not the arithmetic, take most of a step's time. On
        the CPU, the Python loop."""
        if self._device.type != "cuda":
            return python_loop(self, f)
        # within the numerics scope: the capture records the kernels that its settings pick
        return within_numerics(self, replay_loop(self, f, _capture_cuda_graph))

    def graph(self, fn):
        return fn

    def compile(self, fn):
        return within_numerics(self, fn)   # nothing to compile; the step sets its numerics


def replay_loop(ops, f, capture):
    """:meth:`Ops.compile_loop` as one recorded step replayed per minibatch.

    ``capture(warm, body) -> (y, replay)`` records ``body`` once (``warm`` first runs the step
    without recording, as capture asks); ``replay()`` runs the recording again on the same
    buffers. The recording reads the carry and the minibatch from fixed input buffers and writes
    the step's carry back into them, so a replay needs no Python between minibatches; only the
    minibatch ``x`` is copied in, and the loss ``y`` copied out, around each replay. One
    recording is kept per shape of the inputs. The carry returned is a copy: the buffers belong
    to the recording and change at its next replay."""
    recordings = {}

    def record(carry, x):
        static_carry = _tree_map(torch.clone, carry)
        static_x = tuple(torch.empty_like(a) for a in x)
        carry_leaves = _leaves(static_carry)

        def body():
            new_carry, y = f(static_carry, static_x)
            new_leaves = _leaves(new_carry)
            if [t.shape for t in new_leaves] != [t.shape for t in carry_leaves]:
                raise ValueError("compile_loop: the step must return a carry shaped like its "
                                 "input carry")
            for old, new in zip(carry_leaves, new_leaves):
                old.copy_(new)                          # the carry of the next replay
            return y

        for s, a in zip(static_x, x):
            s.copy_(a)
        y, replay = capture(lambda: f(static_carry, static_x), body)
        return static_carry, carry_leaves, static_x, y, replay

    def run(carry, xs):
        n = xs[0].shape[0]
        key = (_structure(carry), tuple((t.shape, t.dtype) for t in _leaves(carry)),
               tuple((a.shape[1:], a.dtype) for a in xs))
        if key not in recordings:                       # the first minibatch, to warm up on
            recordings[key] = record(carry, tuple(a[0] for a in xs))
        static_carry, carry_leaves, static_x, y, replay = recordings[key]
        for old, new in zip(carry_leaves, _leaves(carry)):
            old.copy_(new)
        ys = y.new_empty((n,) + tuple(y.shape))
        for i in range(n):
            for s, a in zip(static_x, xs):
                s.copy_(a[i])
            replay()
            ys[i].copy_(y)
        return _tree_map(torch.clone, static_carry), ys

    return run


WARMUP_STEPS = 3        # eager runs on a side stream before capture (PyTorch's CUDA graph notes)


def _capture_cuda_graph(warm, body):
    """``body`` recorded as a CUDA graph, after ``warm`` has run on a side stream (cuBLAS and
    cuDNN create their handles and workspaces there, outside the recording)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(WARMUP_STEPS):
            warm()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = body()
    return y, graph.replay


def _leaves(tree):
    """The tensors of nested tuples, lists and named tuples, in order."""
    if isinstance(tree, (tuple, list)):
        return [leaf for item in tree for leaf in _leaves(item)]
    return [tree]


def _structure(tree):
    if isinstance(tree, (tuple, list)):
        return type(tree), tuple(_structure(item) for item in tree)
    return None


def _tree_map(fn, tree):
    if isinstance(tree, (tuple, list)):
        items = [_tree_map(fn, item) for item in tree]
        return type(tree)(*items) if hasattr(tree, "_fields") else type(tree)(items)
    return fn(tree)


def _allow_tf32(allowed):
    """Allow TF32 in CUDA matrix products and cuDNN (convolutions, RNNs), or make them IEEE
    float32; oneDNN's CPU products stay IEEE either way. Recent PyTorch has a setting per
    operation (``fp32_precision``) beside the two older flags, and its getters raise where the
    two disagree, so both are set, the older first."""
    torch.backends.cuda.matmul.allow_tf32 = allowed
    torch.backends.cudnn.allow_tf32 = allowed
    if hasattr(torch.backends, "fp32_precision"):
        mode = "tf32" if allowed else "ieee"
        torch.backends.cuda.matmul.fp32_precision = mode
        torch.backends.cudnn.conv.fp32_precision = mode
        torch.backends.cudnn.rnn.fp32_precision = mode
        torch.backends.mkldnn.matmul.fp32_precision = "ieee"


# The settings that _allow_tf32 writes: the two older flags, then (recent PyTorch) the setting of
# each operation, with the older flags' global matmul precision ('highest', 'high', 'medium').
_LEGACY_TF32 = (("cuda.matmul", "allow_tf32"), ("cudnn", "allow_tf32"))
_FP32_PRECISION = (("cuda.matmul", "fp32_precision"), ("cudnn.conv", "fp32_precision"),
                   ("cudnn.rnn", "fp32_precision"), ("mkldnn.matmul", "fp32_precision"))


def _setting(path):
    obj = torch.backends
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _tf32_settings():
    """The process's settings that :func:`_allow_tf32` changes, to put back with
    :func:`_restore_tf32_settings`. Where a user mixed the older flags and the newer settings,
    PyTorch's older getters raise: those are not read, and the newer settings, which decide the
    products, are put back alone."""
    legacy = [(path, name, _read_or_none(lambda: getattr(_setting(path), name)))
              for path, name in _LEGACY_TF32]
    matmul = _read_or_none(torch.get_float32_matmul_precision)
    newer = ([(path, name, getattr(_setting(path), name)) for path, name in _FP32_PRECISION]
             if hasattr(torch.backends, "fp32_precision") else [])
    return legacy, matmul, newer


def _read_or_none(getter):
    try:
        return getter()
    except RuntimeError:            # "you have used mix of the legacy and new APIs"
        return None


def _restore_tf32_settings(saved):
    legacy, matmul, newer = saved
    for path, name, value in legacy:
        if value is not None:
            setattr(_setting(path), name, value)
    if matmul is not None:
        torch.set_float32_matmul_precision(matmul)
    for path, name, value in newer:
        setattr(_setting(path), name, value)


def _deterministic_settings():
    return torch.get_deterministic_debug_mode(), torch.backends.cudnn.benchmark


def _restore_deterministic_settings(saved):
    mode, benchmark = saved                 # 0: off, 1: on with warnings, 2: on
    torch.set_deterministic_debug_mode(mode)
    torch.backends.cudnn.benchmark = benchmark


def _tf32_allowed():
    """Whether CUDA products and cuDNN's RNN may use TF32 now: ``[matmul, rnn]``."""
    if hasattr(torch.backends, "fp32_precision"):
        return [torch.backends.cuda.matmul.fp32_precision == "tf32",
                torch.backends.cudnn.rnn.fp32_precision == "tf32"]
    return [torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32]


DETERMINISTIC_CUBLAS = (":4096:8", ":16:8")


def _fix_cublas_workspace():
    """cuBLAS gives the same bits every run only with a fixed workspace, which it reads from
    ``CUBLAS_WORKSPACE_CONFIG`` when PyTorch first uses it; PyTorch's deterministic mode refuses
    cuBLAS without it. Set it here if the user has not and CUDA has not started yet in this
    process; otherwise it may be too late, and the user is told how to set it."""
    value = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    if value in DETERMINISTIC_CUBLAS:
        return
    if value is None and not torch.cuda.is_initialized():
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = DETERMINISTIC_CUBLAS[0]
        return
    why = (f"it is {value!r}" if value is not None else
           "CUDA has already started in this process, too late to set it here")
    raise RNNCoreError(
        f"--deterministic on a GPU needs CUBLAS_WORKSPACE_CONFIG={DETERMINISTIC_CUBLAS[0]} "
        f"(or {DETERMINISTIC_CUBLAS[1]}) before CUDA starts, and {why}: start Python with "
        f"CUBLAS_WORKSPACE_CONFIG={DETERMINISTIC_CUBLAS[0]} in the environment")


# (cell, variant) -> PyTorch's layer, and how it stores one layer's weights (rnn_core/ops.py,
# RecurrentLayer): gates in PyTorch's order (GRU r, z, n; LSTM i, f, g, o), each weight
# (gates * hidden, inputs), two biases whose sum is the book's. nn.GRU computes the reset-after
# GRU only.
TORCH_LAYERS = {
    ("rnn", "book"): ("RNN", (("weight_ih_l{l}", ("W_xh",), True),
                              ("weight_hh_l{l}", ("W_hh",), True),
                              ("bias_ih_l{l}", ("b_h",), False),
                              ("bias_hh_l{l}", ("b_h",), False))),
    ("gru", "reset_after"): ("GRU", (("weight_ih_l{l}", ("W_xr", "W_xz", "W_xh"), True),
                                     ("weight_hh_l{l}", ("W_hr", "W_hz", "W_hh"), True),
                                     ("bias_ih_l{l}", ("b_r", "b_z", "b_h"), False),
                                     ("bias_hh_l{l}", ("b_r", "b_z", "b_hh"), False))),
    ("lstm", "book"): ("LSTM", (("weight_ih_l{l}", ("W_xi", "W_xf", "W_xc", "W_xo"), True),
                                ("weight_hh_l{l}", ("W_hi", "W_hf", "W_hc", "W_ho"), True),
                                ("bias_ih_l{l}", ("b_i", "b_f", "b_c", "b_o"), False),
                                ("bias_hh_l{l}", ("b_i", "b_f", "b_c", "b_o"), False))),
}


class TorchRecurrentLayer:
    """``nn.RNN``, ``nn.GRU`` or ``nn.LSTM`` (``num_layers`` deep) + ``nn.Linear``, called with
    ``torch.func.functional_call``. PyTorch keeps the state of all layers in one tensor ``(layers,
    batch, hidden)`` (and a second for the LSTM's ``C``)."""
    dense_layout = (("weight", ("W_hq",), True), ("bias", ("b_q",), False))

    def __init__(self, cell, variant, num_layers, input_size, num_hiddens, vocab_size, device,
                 numerics_scope):
        kind, self.layout = TORCH_LAYERS[cell, variant]
        self.numerics_scope = numerics_scope        # cuDNN's TF32 as the backend's precision says
        self.rnn = getattr(torch.nn, kind)(input_size, num_hiddens, num_layers).to(device)
        self.dense = torch.nn.Linear(num_hiddens, vocab_size).to(device)
        self.names = [name.format(l=l) for l in range(num_layers) for name, _, _ in self.layout]
        self.state_size = get_cell(cell, variant).state_size           # (H,) or (H, C)

    def apply(self, weights, inputs, state):
        # On CUDA, nn.RNN copies its weights into cuDNN's one flat buffer through a flat view of
        # each; a transposed view (the layout's W_xhᵀ, W_hhᵀ, W_hqᵀ) has none, and the copy fails
        # ("view size is not compatible with input tensor's size and stride"). So every weight
        # is made contiguous and viewed flat here, on every device: the CPU runs what CUDA needs.
        weights = [w.contiguous().view(-1).view(w.shape) for w in weights]
        k, n = self.state_size, len(self.names)
        stacked = [torch.stack(state[j::k]) for j in range(k)]         # (layers, batch, hidden)
        first = stacked[0] if k == 1 else tuple(stacked)
        with self.numerics_scope():
            Hs, last = torch.func.functional_call(self.rnn, dict(zip(self.names, weights[:n])),
                                                  (inputs, first))
            O = torch.func.functional_call(self.dense, dict(zip(("weight", "bias"), weights[n:])),
                                           (Hs.reshape(-1, Hs.shape[-1]),))
        last = (last,) if k == 1 else last
        return O, tuple(s for layer in zip(*(torch.unbind(t) for t in last)) for s in layer)
