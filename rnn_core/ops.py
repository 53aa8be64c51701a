"""The tensor-ops protocol: the only door between the chapter's maths and a framework.

Every algorithm in ``rnn_core`` is written against :class:`Ops`. A backend (``backends/numpy.py``,
``backends/torch.py``, ``backends/tf.py``, ``backends/mxnet.py``, ``backends/jax.py``) implements
each op with one or two calls of its framework. Names and signatures follow the Python Array API
standard where it has the op (``concat(xs, /, *, axis)``, ``take(x, indices, /, *, axis)``,
``sum(x, /, *, axis, keepdims)``).

Conventions shared by every backend
-----------------------------------
* Floating tensors are float32; index tensors are integers (the backend picks the width).
* Tensors support ``+ - * /`` with each other and with Python floats, NumPy-style broadcasting,
  unary ``-``, and basic indexing on the first axis (``x[t]``, ``x[a:b]``).
* A reduction over all axes returns a scalar tensor: shape ``()``, or ``(1,)`` on MXNet, whose
  NDArray has no zero-dimensional arrays. ``to_numpy`` of it has one element either way.
* Ops never modify their inputs; an update makes a new tensor.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Protocol, Sequence, Tuple, runtime_checkable

import numpy as np

Tensor = Any  # a framework tensor: np.ndarray, torch.Tensor, tf.Tensor or mx.nd.NDArray


@runtime_checkable
class Ops(Protocol):
    """What the core needs from a framework. Shapes are written ``(batch, hidden)`` etc."""

    name: str    # 'numpy', 'torch', 'tf' or 'mxnet'
    device: str  # where tensors live, in the framework's words: 'cpu', 'cuda:0', '/GPU:0', 'gpu(0)'
    gpu_device: "str | None"  # the device that --device gpu takes; None: the framework has no GPU
    precision: str        # 'float32' (IEEE, the default) or 'tf32' (TensorFloat-32 allowed on GPUs)
    deterministic: bool   # deterministic algorithms asked for: a GPU run repeats bit for bit

    # The constructor is ``(device, *, precision, deterministic)``; :func:`rnn_core.get_backend`
    # checks the values and calls it.

    @staticmethod
    def gpu_count() -> int:
        """How many GPUs the framework sees (0 for a CPU-only build): what ``--device auto``
        and ``--device gpu`` decide by."""

    def numerics(self) -> dict:
        """The framework's switches that decide this backend's numerics, read back from the
        framework now: ``{"tf32": bool | None, "deterministic": bool | None}``. ``tf32`` is True
        where TensorFloat-32 is allowed in any product, False where every product is IEEE
        float32; None where the framework has no such switch on this device (NumPy; MXNet on the
        CPU). Within :meth:`numerics_scope` they are the backend's ``precision`` and
        ``deterministic``; outside it, where they are process-wide (PyTorch, TensorFlow), they
        are the process's own."""

    def numerics_scope(self):
        """A context in which the framework computes with this backend's ``precision`` and
        ``deterministic``; on leaving it, the process's own switches are as they were. Every
        training step, the recurrent layer and the core's functions that compute (training,
        prediction) enter it, so that calling rnn_core leaves a notebook's settings alone. A
        framework that takes the precision per product, or reads its switches once at start,
        needs none: ``contextlib.nullcontext()``."""

    # ---- moving data in and out -------------------------------------------------------------
    def asarray(self, x: np.ndarray, /) -> Tensor:
        """A tensor on this backend's device holding a copy of NumPy array ``x``.

        float arrays become float32; integer arrays stay integer (the backend's index dtype).
        """

    def to_numpy(self, x: Tensor, /) -> np.ndarray:
        """A NumPy copy of ``x`` (float32 or integer), on the host."""

    def zeros(self, shape: Tuple[int, ...], /) -> Tensor:
        """A float32 tensor of zeros with this ``shape``."""

    # ---- linear algebra and shapes ----------------------------------------------------------
    def matmul(self, x1: Tensor, x2: Tensor, /) -> Tensor:
        """Matrix product of 2-D tensors: ``(n, k) · (k, m) -> (n, m)``."""

    def linear(self, x: Tensor, weight: Tensor, bias: Tensor, /) -> Tensor:
        """``x · weight + bias``: ``(n, k) · (k, m) + (m,) -> (n, m)``, as one fused call where
        the framework has one (its backward then sums the bias gradient in the same kernel)."""

    def matrix_transpose(self, x: Tensor, /) -> Tensor:
        """Transpose of a 2-D tensor: ``(n, m) -> (m, n)``."""

    def concat(self, xs: Sequence[Tensor], /, *, axis: int = 0) -> Tensor:
        """Join tensors of equal shape except along ``axis``."""

    def stack(self, xs: Sequence[Tensor], /, *, axis: int = 0) -> Tensor:
        """Join tensors of equal shape along a new ``axis``: k tensors ``(n, m) -> (k, n, m)``."""

    def unstack(self, x: Tensor, /) -> list:
        """The slices ``x[0], x[1], …`` along the first axis, as a list, in one call (whose
        backward is one concatenation, not one full-size gradient per slice)."""

    def reshape(self, x: Tensor, shape: Tuple[int, ...], /) -> Tensor:
        """``x`` with a new shape of the same size, in row-major order (-1 infers one axis)."""

    def take(self, x: Tensor, indices: Tensor, /, *, axis: int = 0) -> Tensor:
        """Rows (``axis=0``) of ``x`` picked by integer ``indices`` of any shape.

        ``(vocab, hidden)`` taken with ``(num_steps, batch)`` gives ``(num_steps, batch, hidden)``:
        the embedding lookup, the same numbers as the one-hot product with far less work.
        """

    def take_along_axis(self, x: Tensor, indices: Tensor, /, *, axis: int = -1) -> Tensor:
        """One element per row: ``(n, m)`` with integer ``(n, 1)`` -> ``(n, 1)``, ``out[i, 0] =
        x[i, indices[i, 0]]`` (``axis`` is 1 or -1). The target's logit in the cross-entropy."""

    def segment_sum(self, data: Tensor, segment_ids: Tensor, /, *, num_segments: int) -> Tensor:
        """Rows of ``data (n, m)`` added up by integer ``segment_ids (n,)``: ``out (num_segments,
        m)``, ``out[i] = Σ_{j: ids[j] = i} data[j]`` (zero where no id is i). The gradient of
        ``take``: ``dW_xh`` of the embedding lookup, without the one-hot product."""

    def one_hot(self, indices: Tensor, num_classes: int, /) -> Tensor:
        """float32 one-hot rows: integer ``(n,)`` -> ``(n, num_classes)``."""

    # ---- elementwise -------------------------------------------------------------------------
    def tanh(self, x: Tensor, /) -> Tensor:
        """Elementwise hyperbolic tangent."""

    def sigmoid(self, x: Tensor, /) -> Tensor:
        """Elementwise logistic function ``1 / (1 + e**-x)``, the gates of the GRU and LSTM;
        0 (not an overflow) for very negative ``x``."""

    def exp(self, x: Tensor, /) -> Tensor:
        """Elementwise e**x."""

    def expm1(self, x: Tensor, /) -> Tensor:
        """Elementwise ``e**x - 1``, to float32's precision also where ``x`` is near 0, where
        ``exp(x) - 1`` loses digits (Adam's bias correction ``1 - β2**t``)."""

    def log(self, x: Tensor, /) -> Tensor:
        """Elementwise natural logarithm."""

    def sqrt(self, x: Tensor, /) -> Tensor:
        """Elementwise square root."""

    def log_softmax(self, x: Tensor, /, *, axis: int = -1) -> Tensor:
        """``x - log Σ exp(x)`` over ``axis``, computed without overflow (each framework's fused
        kernel): ``(n, vocab) -> (n, vocab)``, the log-probabilities of the next character."""

    def clip(self, x: Tensor, /, min: float | None = None, max: float | None = None) -> Tensor:
        """Elementwise ``min <= x <= max``; a bound that is None is not applied."""

    # ---- reductions --------------------------------------------------------------------------
    def sum(self, x: Tensor, /, *, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis`` (all axes when None)."""

    def max(self, x: Tensor, /, *, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Largest element over ``axis`` (all axes when None)."""

    def argmax(self, x: Tensor, /, *, axis: int | None = None) -> Tensor:
        """Integer position of the largest element over ``axis`` (first one on ties)."""

    # ---- autograd seam -----------------------------------------------------------------------
    def stop_gradient(self, x: Tensor, /) -> Tensor:
        """``x`` cut from the autograd graph: same values, no gradient flows back through it."""

    def value_and_grad(
        self, f: Callable[[Sequence[Tensor]], Tuple[Tensor, Any]], params: Sequence[Tensor], /
    ) -> Tuple[Tuple[Tensor, Any], list]:
        """Evaluate ``(loss, aux) = f(params)`` and the gradients ``d loss / d params``.

        ``loss`` is a scalar tensor; ``aux`` is returned untouched (the RNN state). Returns
        ``((loss, aux), grads)`` with ``grads[i]`` shaped like ``params[i]``. The NumPy backend has
        no autograd and raises :class:`NotImplementedError`: the core then uses its hand-written
        backpropagation through time.
        """

    # ---- the framework's own layers (the concise model) ------------------------------------------
    def recurrent_layer(self, cell: str, variant: str, num_layers: int, input_size: int,
                        num_hiddens: int, vocab_size: int) -> "RecurrentLayer":
        """The framework's own recurrent layer for ``cell`` (``rnn``, ``gru``, ``lstm``) and its
        ``variant`` (``book``, or the GRU's ``reset_after``), ``num_layers`` deep, followed by its
        dense layer, as a :class:`RecurrentLayer`. Where the framework has no such layer it
        raises :class:`NotImplementedError` with one line saying why and what to use (NumPy has
        none; PyTorch's and Gluon's GRU compute only the reset-after formula)."""

    # ---- compiling and loops ----------------------------------------------------------------
    def scan(self, f: Callable, carry: Any, xs: tuple, /) -> Tuple[Any, Any]:
        """The loop over time steps, as JAX's ``lax.scan``: ``xs`` is a tuple of tensors
        ``(num_steps, ...)``, one step or more; ``f(carry, x_t) -> (carry, y_t)`` with ``x_t =
        tuple(x[t] for x in xs)``; returns ``(carry, ys)``, with ``ys`` the steps' ``y_t``
        stacked along a new first axis. ``carry`` and each ``y_t`` are tensors or (nested)
        tuples of them (``None`` stays ``None``). Most backends run it as that Python loop
        (:func:`python_scan`), which their compilers unroll. JAX, inside ``jax.jit``, runs it as
        one ``lax.scan``, because unrolled, XLA compiles one copy of the cell per step; the
        stacked inputs and outputs are its own, so no step is sliced out or joined again."""

    def compile_loop(self, f: Callable) -> Callable:
        """The loop over the minibatches of an epoch, as one program where the framework compiles
        loops: ``run(carry, xs) -> (carry, ys)`` applies ``f(carry, x) -> (carry, y)`` to ``x =
        tuple(a[i] for a in xs)`` for each ``i`` along the first axis of the tensors ``xs``, and
        stacks each ``y`` (one tensor) into ``ys``. ``f`` is a pure tensor function, as for
        :meth:`compile`; it may call :meth:`value_and_grad` (a training step). Where the
        framework cannot compile the loop, ``f`` is compiled alone and called once per ``x``
        from Python (:func:`python_loop`)."""

    def compile(self, fn: Callable) -> Callable:
        """``fn`` compiled by the framework where that pays off (``tf.function``), else ``fn``.

        ``fn`` must be a pure tensor function: tensors in, tensors out, no reads to Python. It
        may call :meth:`value_and_grad` (a whole training step).
        """

    def graph(self, fn: Callable) -> Callable:
        """``fn`` as one graph that :meth:`value_and_grad` differentiates as a whole, where the
        framework needs that to run fast (MXNet: a ``CachedOp``, what Gluon's ``hybridize``
        builds, traced once per input shapes), else ``fn``.

        ``fn`` must be a pure tensor function of nested tuples of tensors, with no autograd inside
        and no Python control flow on tensor values; it may read shapes.
        """


class RecurrentLayer(Protocol):
    """A framework's recurrent layers and dense layer, called with weights given by the caller
    (a functional call), so the core can differentiate and update them like its own tensors.

    ``layout`` says how the framework stores one recurrent layer's weights, in the order
    ``apply`` takes them: ``(framework's name, parts, transposed)``. ``name`` holds ``{l}``
    where the framework numbers its layers (0 for the first); ``apply`` takes layer 0's weights,
    then layer 1's, and so on, then the dense layer's (``dense_layout``). ``parts`` names the
    canonical fields of one layer (the book's names: ``W_xz``, ``b_r``, ...) whose blocks the
    framework joins along its gate axis, in its gate order; a tuple of such tuples is rows stacked
    (Keras's two bias rows). A field named in several places is their sum: PyTorch's
    ``b_ir + b_hr`` is the book's ``b_r``. ``transposed``: the framework stores the transpose of
    the joined canonical blocks, ``(gates * hidden, inputs)`` for ``(inputs, gates * hidden)``.
    """
    layout: Tuple[Tuple[str, tuple, bool], ...]
    dense_layout: Tuple[Tuple[str, tuple, bool], ...]

    def apply(self, weights: Sequence[Tensor], inputs: Tensor,
              state: tuple) -> Tuple[Tensor, tuple]:
        """``inputs (num_steps, batch, input_size)`` and the canonical ``state`` (every layer's
        ``H``, or ``H, C``, in turn, each ``(batch, hidden)``) -> ``(O, state)``: the logits
        ``(num_steps * batch, vocab)``, rows time-major, and the last state, canonical."""


def within_numerics(ops: Ops, fn: Callable) -> Callable:
    """``fn``, each call of which runs within ``ops.numerics_scope()``: a step or an epoch that
    computes with the backend's numerics and leaves the process's own as they were."""
    @functools.wraps(fn)
    def within(*args, **kwargs):
        with ops.numerics_scope():
            return fn(*args, **kwargs)

    return within


def in_numerics_scope(fn: Callable) -> Callable:
    """``fn(ops, ...)`` run within ``ops.numerics_scope()``: the core's functions that compute
    outside a training step (the identity, the bench's rates) do so with the backend's numerics,
    and leave the process's own as they were."""
    @functools.wraps(fn)
    def within(ops, *args, **kwargs):
        with ops.numerics_scope():
            return fn(ops, *args, **kwargs)

    return within


def python_scan(ops: Ops, f: Callable, carry: Any, xs: tuple) -> Tuple[Any, Any]:
    """:meth:`Ops.scan` as a Python loop: what a backend without a loop of its own runs."""
    ys = []
    for x_t in zip(*(ops.unstack(x) for x in xs), strict=True):
        carry, y_t = f(carry, x_t)
        ys.append(y_t)
    return carry, _stack_steps(ops, ys)


def _stack_steps(ops: Ops, ys: list):
    """The steps' outputs, each a tensor, ``None`` or a tuple of them, stacked leaf by leaf."""
    if isinstance(ys[0], tuple):
        return tuple(_stack_steps(ops, [y[i] for y in ys]) for i in range(len(ys[0])))
    return None if ys[0] is None else ops.stack(ys)


def python_loop(ops: Ops, f: Callable) -> Callable:
    """:meth:`Ops.compile_loop` as a Python loop that calls ``ops.compile(f)`` once per ``x``."""
    compiled = ops.compile(f)

    def run(carry, xs):
        ys = []
        for i in range(xs[0].shape[0]):
            carry, y = compiled(carry, tuple(a[i] for a in xs))
            ys.append(y)
        return carry, ops.stack(ys)

    return run
