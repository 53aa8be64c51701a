"""The PyTorch backend: each op is one call of ``torch``; autograd is ``torch.autograd.grad``."""
import numpy as np
import torch

from ._allocator import keep_freed_buffers
from rnn_core.errors import DeviceUnavailable


class TorchOps:
    name = "torch"

    def __init__(self, device="auto"):
        has_cuda = torch.cuda.is_available()
        if device == "gpu" and not has_cuda:
            raise DeviceUnavailable(
                "--device gpu: PyTorch sees no CUDA GPU (torch.cuda.is_available() is False; "
                f"this torch {torch.__version__} build is "
                f"{'CPU-only' if torch.version.cuda is None else 'for CUDA ' + torch.version.cuda}). "
                "Use --device cpu, or install a CUDA build of torch on a machine with a GPU")
        use_gpu = has_cuda and device in ("gpu", "auto")
        self._device = torch.device("cuda:0" if use_gpu else "cpu")
        self.device = str(self._device)
        self.version = torch.__version__

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

    def exp(self, x, /):
        return torch.exp(x)

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
        with torch.enable_grad():
            loss, aux = f(params)
        grads = torch.autograd.grad(loss, params)
        return (loss.detach(), aux), list(grads)

    def rnn_layer(self, input_size, num_hiddens, vocab_size):
        return TorchRNNLayer(input_size, num_hiddens, vocab_size, self._device)

    def graph(self, fn):
        return fn

    def compile(self, fn):
        # Nothing to compile in PyTorch; the step's large buffers are kept for reuse instead.
        keep_freed_buffers()
        return fn


class TorchRNNLayer:
    """``nn.RNN`` + ``nn.Linear``, called with ``torch.func.functional_call``."""
    layout = (("weight_ih_l0", "W_xh", True), ("weight_hh_l0", "W_hh", True),
              ("bias_ih_l0", "b_h", False), ("bias_hh_l0", None, False),
              ("weight", "W_hq", True), ("bias", "b_q", False))

    def __init__(self, input_size, num_hiddens, vocab_size, device):
        self.rnn = torch.nn.RNN(input_size, num_hiddens, nonlinearity="tanh").to(device)
        self.dense = torch.nn.Linear(num_hiddens, vocab_size).to(device)

    def apply(self, weights, inputs, H):
        # On CUDA, nn.RNN copies its weights into cuDNN's one flat buffer through a flat view of
        # each; a transposed view (the layout's W_xhᵀ, W_hhᵀ, W_hqᵀ) has none, and the copy fails
        # ("view size is not compatible with input tensor's size and stride"). So every weight
        # is made contiguous and viewed flat here, on every device: the CPU runs what CUDA needs.
        weights = [w.contiguous().view(-1).view(w.shape) for w in weights]
        names = [name for name, _, _ in self.layout]
        rnn_weights, dense_weights = dict(zip(names[:4], weights[:4])), dict(zip(names[4:], weights[4:]))
        Hs, H_T = torch.func.functional_call(self.rnn, rnn_weights, (inputs, H[None]))
        O = torch.func.functional_call(self.dense, dense_weights, (Hs.reshape(-1, Hs.shape[-1]),))
        return O, H_T[0]
