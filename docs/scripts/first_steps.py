"""How far apart the backends' first SGD steps drift, free-running.

    RNN_CORE_DATA=../shared/data python docs/scripts/first_steps.py
    RNN_CORE_DATA=../shared/data python docs/scripts/first_steps.py --lr 1 --clip 1 --steps 120

Prints, per seed and sampling, the largest relative difference of each backend's (and gradient
method's) losses from the NumPy reference, and the same for the NumPy run itself restarted from
weights changed by 1e-7 relative: the trajectory's own sensitivity to float32 rounding. The
backends are the frameworks of this environment's install profile. Defaults: the book's lr 100 and
θ 0.01, 20 steps, the project's default corpus."""
import argparse

import numpy as np

from rnn_core import get_backend, model, train
from rnn_core.backend import PROFILES, REFERENCE, default_profile
from rnn_core.data import load_corpus


def losses(ops, corpus, config, noise=0.0, num_batches=20):
    start = model.init_params(corpus.vocab.vocab_size, config.num_hiddens, config.seed)
    jitter = np.random.default_rng(99)
    start = type(start)(*((p * (1 + noise * jitter.standard_normal(p.shape))).astype(np.float32)
                          for p in start))
    return train.first_losses(ops, corpus, config, num_batches,
                              params=model.params_to_backend(ops, start))[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("corpus", nargs="?")
    p.add_argument("--lr", type=float, default=1e2)
    p.add_argument("--clip", type=float, default=1e-2)
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args()
    corpus = load_corpus(args.corpus)
    # The reference first, then every other framework of this environment's profile.
    backends = [get_backend(name, "cpu") for name in
                (REFERENCE, *(n for n in PROFILES[default_profile()] if n != REFERENCE))]
    print(f"corpus {corpus.name}; lr {args.lr:g}, θ {args.clip:g}; "
          f"max relative difference from numpy over {args.steps} steps")
    for seed in (0, 1, 7):
        for sampling in ("random", "consecutive"):
            config = train.TrainConfig(seed=seed, sampling=sampling, lr=args.lr,
                                       clipping_theta=args.clip)
            reference = losses(backends[0], corpus, config, num_batches=args.steps)
            row = {"numpy 1e-7": losses(backends[0], corpus, config, noise=1e-7,
                                        num_batches=args.steps)}
            for ops in backends[1:]:
                for grad in ("autograd", "bptt"):
                    config.grad = grad
                    row[f"{ops.name} {grad}"] = losses(ops, corpus, config, num_batches=args.steps)
            print(f"seed {seed} {sampling:11s} " + "  ".join(
                f"{k}: {np.max(np.abs(v - reference) / reference):.1e}" for k, v in row.items()))


if __name__ == "__main__":
    main()
