"""``python -m rnn_core.identity --backend B``: the chapter's check that the hidden layer's two
products are one product of concatenations,

    X·W_xh + H·W_hh  ==  [X, H] · [W_xh; W_hh]

(``X (3, 1)``, ``W_xh (1, 4)``, ``H (3, 4)``, ``W_hh (4, 4)``, drawn from N(0, 1) by a seeded
NumPy generator, as in the book's example)."""
from __future__ import annotations

import argparse
import sys

import numpy as np

from rnn_core import cli
from rnn_core.backend import get_backend
from rnn_core.ops import in_numerics_scope


@in_numerics_scope
def concatenated_matmul_identity(ops, seed: int = 0):
    """``(X·W_xh + H·W_hh, [X, H]·[W_xh; W_hh], largest absolute difference)`` as NumPy arrays."""
    rng = np.random.default_rng(seed)
    X, W_xh, H, W_hh = (ops.asarray(rng.normal(size=shape).astype(np.float32))
                        for shape in ((3, 1), (1, 4), (3, 4), (4, 4)))
    separate = ops.matmul(X, W_xh) + ops.matmul(H, W_hh)                                # (3, 4)
    joined = ops.matmul(ops.concat([X, H], axis=1), ops.concat([W_xh, W_hh], axis=0))  # (3, 4)
    separate, joined = ops.to_numpy(separate), ops.to_numpy(joined)
    return separate, joined, float(np.max(np.abs(separate - joined)))


def parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(
        prog="python -m rnn_core.identity",
        description="Check on one backend the chapter's identity: the hidden layer's two "
                    "products equal one product of concatenated matrices.")
    cli.add_backend_option(p)
    cli.add_device_option(p)
    p.add_argument("--seed", type=cli.non_negative_int, default=0,
                   help="seeds the random matrices (default 0)")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    ops = get_backend(args.backend, args.device)
    separate, joined, difference = concatenated_matmul_identity(ops, args.seed)
    print(f"backend {ops.name} on {ops.device}")
    with np.printoptions(precision=6, suppress=True):    # for these two only, not the process
        print(f"X·W_xh + H·W_hh =\n{separate}")
        print(f"[X, H]·[W_xh; W_hh] =\n{joined}")
    print(f"largest difference: {difference:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
