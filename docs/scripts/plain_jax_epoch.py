"""Tokens per second of rnn-core's JAX epoch (the fast path: ``make_train_epoch``, one program
per epoch) against the same epoch written directly in JAX: a ``lax.scan`` over the minibatches
around a ``lax.scan`` over the time steps, ``jax.value_and_grad``, the book's clipping and SGD,
in one ``jax.jit``. Issue 15 measured such a program at 1,377,833 tokens/s on an H100 and
rnn-core at 0.69-0.95M; this shows, on one machine and in one run, how much of that gap is
rnn-core's and how much the two programs' settings.

    RNN_CORE_DATA=../shared/data python docs/scripts/plain_jax_epoch.py
    RNN_CORE_DATA=../shared/data python docs/scripts/plain_jax_epoch.py --device gpu --tf32

Jay Chou settings (hidden 256, batch 32, 35 steps, SGD lr 100, θ 0.01), the scratch RNN, random
sampling, both from the same weights and minibatches, alternating epoch by epoch. Both programs
get rnn-core's precision (IEEE float32, or TensorFloat-32 with ``--tf32``) and compiler options
(on the CPU, small products on one thread). Both must print the same perplexities, within
float32 rounding. The first epoch (tracing and compiling) is left out of the medians. Last, it
prints how many fused kernels (XLA's fusions) each compiled program has: on a GPU each is one
launch, and this model's step is bound by launches there."""
import argparse
import random
import statistics
import sys
import time

import numpy as np

from rnn_core import cli, get_backend, model
from rnn_core.data import load_corpus
from rnn_core.train import (TrainConfig, data_iter, init_optimizer_state, make_train_epoch,
                            model_spec, perplexity, train_epoch)


def plain_epoch(ops, config):
    """``epoch(params, Xs, Ys) -> (params, losses)``, for Xs, Ys ``(num_batches, batch,
    num_steps)``: the book's RNN epoch as one JAX program, written without rnn-core."""
    import jax
    import jax.numpy as jnp
    precision = (jax.lax.Precision.DEFAULT if ops.precision == "tf32"     # as backends/jax.py
                 else jax.lax.Precision.HIGHEST)
    lr, theta = config.lr, config.clipping_theta

    def loss(params, X, Y):
        W_xh, W_hh, b_h, W_hq, b_q = params
        H = jnp.zeros((X.shape[0], W_hh.shape[0]), jnp.float32)    # random sampling: fresh

        def step(H, x):                                              # x (batch,) indices
            H = jnp.tanh(W_xh[x] + jnp.matmul(H, W_hh, precision=precision) + b_h)
            return H, H
        _, Hs = jax.lax.scan(step, H, X.T)                           # (num_steps, batch, hidden)
        O = jnp.matmul(Hs.reshape(-1, Hs.shape[-1]), W_hq, precision=precision) + b_q
        y = Y.T.reshape(-1)                                          # time-major, as O
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(O), y[:, None], axis=1))

    def minibatch(params, XY):
        l, grads = jax.value_and_grad(loss)(params, *XY)
        norm = jnp.sqrt(sum(jnp.sum(g * g) for g in grads))
        scale = theta / jnp.maximum(norm, theta)
        return [w - lr * scale * g for w, g in zip(params, grads)], l

    return ops.compile(lambda params, Xs, Ys: jax.lax.scan(minibatch, params, (Xs, Ys)))


def recording_programs(ops) -> list:
    """``[(fn, args), ...]``: each function that ``ops`` compiles from now on, with the arguments
    of its first call, in order (rnn-core's epoch, then the plain one), to count its kernels
    after the timed epochs (:func:`fusions`)."""
    programs, compile_ = [], ops.compile

    def recording(fn):
        run = compile_(fn)

        def first_recorded(*args):
            if not any(f is fn for f, _ in programs):
                programs.append((fn, args))
            return run(*args)
        return first_recorded

    ops.compile = recording                 # this object only
    return programs


def fusions(fn, args) -> int:
    """The fusions in XLA's text of ``fn`` compiled for ``args`` (with XLA's default options):
    each is a kernel of its own on a GPU."""
    import jax
    return jax.jit(fn).lower(*args).compile().as_text().count(" fusion(")


def main(argv=None):
    p = argparse.ArgumentParser(prog="docs/scripts/plain_jax_epoch.py",
                                description="rnn-core's JAX epoch against a plain JAX epoch, in "
                                            "tokens per second.")
    p.add_argument("--epochs", type=cli.positive_int, default=10,
                   help="timed epochs after the first (default: 10)")
    cli.add_device_option(p)
    cli.add_numerics_options(p, deterministic=False)
    args = p.parse_args(argv)
    corpus = load_corpus("jaychou")
    V = corpus.vocab.vocab_size
    ops = get_backend("jax", args.device, **cli.numerics_options(args))
    programs = recording_programs(ops)
    config = TrainConfig(sampling="random", pred_period=0)
    params = model.get_params(ops, V, config.num_hiddens, config.seed, **model_spec(config))
    ours = {"fn": make_train_epoch(ops, V, config), "params": params,
            "opt": init_optimizer_state(ops, config, params), "rng": random.Random(config.seed),
            "results": []}
    plain = {"fn": plain_epoch(ops, config), "params": list(params),
             "rng": random.Random(config.seed), "results": []}
    for epoch in range(1, args.epochs + 2):
        ours["params"], ours["opt"], result = train_epoch(
            ops, ours["fn"], ours["params"], ours["opt"], config, corpus.corpus_indices,
            ours["rng"], epoch)
        ours["results"].append((result.seconds, result.tokens, result.perplexity))
        start = time.perf_counter()                 # as train_epoch times rnn-core's
        batches = list(data_iter(config, corpus.corpus_indices, plain["rng"]))
        Xs, Ys = (ops.asarray(np.stack(arrays)) for arrays in zip(*batches))
        plain["params"], losses = plain["fn"](plain["params"], Xs, Ys)
        losses = ops.to_numpy(losses)
        plain["results"].append((time.perf_counter() - start, losses.size *
                                 config.batch_size * config.num_steps,
                                 perplexity(float(losses.astype(np.float64).mean()))))
    print(f"jax {ops.version} {ops.device}{cli.describe_numerics(ops)}; Jay Chou, hidden "
          f"{config.num_hiddens}, batch {config.batch_size}, {config.num_steps} steps, "
          f"{args.epochs} timed epochs")
    print("program | first epoch (s) | tokens/s, median | perplexity after the last epoch")
    rates = {}
    for name, run in (("rnn-core", ours), ("plain JAX", plain)):
        rates[name] = statistics.median(tokens / seconds for seconds, tokens, _ in
                                        run["results"][1:])
        print(f"{name} | {run['results'][0][0]:.2f} | {rates[name]:,.0f} | "
              f"{run['results'][-1][2]:.4f}")
    print(f"rnn-core / plain JAX: {rates['rnn-core'] / rates['plain JAX']:.2f}", flush=True)
    (ours_fn, ours_args), (plain_fn, plain_args) = programs
    print("fused kernels in the compiled epoch program (XLA's fusions): rnn-core "
          f"{fusions(ours_fn, ours_args)}, plain JAX {fusions(plain_fn, plain_args)}", flush=True)


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
