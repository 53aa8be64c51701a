"""How much Adam's weights move when the exponential in its bias correction is off by one float32
ulp (a GPU's ``exp`` is not correctly rounded): ``1 - exp(t·log β)`` against ``-expm1(t·log β)``.

    python docs/scripts/adam_correction.py

The settings of tests/test_concise.py::test_adam_agrees_across_backends: a (4, 3) weight, five
steps of lr 0.01 from normal gradients, β1 0.9, β2 0.999, ε 1e-8, all in float32. Near t = 1,
1 − β2^t is 0.001: subtracting an exponential from 1 keeps 4 of float32's 7 digits there, and a
change of one ulp in it moves the weights by 6e-7 (the H100 of issue 15 gave 3.4e-7 against
NumPy); expm1 gives the difference itself to float32's precision."""
import math

import numpy as np

f32 = np.float32


def adam_weights(correction, nudge):
    rng = np.random.default_rng(0)
    p = rng.normal(size=(4, 3)).astype(f32)
    grads = [rng.normal(size=(4, 3)).astype(f32) for _ in range(5)]
    m, v, t = np.zeros_like(p), np.zeros_like(p), f32(0)
    for g in grads:
        t = f32(t + 1)
        c1 = correction(f32(t * f32(math.log(0.9))), nudge)
        c2 = correction(f32(t * f32(math.log(0.999))), nudge)
        m, v = f32(0.9) * m + f32(0.1) * g, f32(0.999) * v + f32(0.001) * (g * g)
        p = p - f32(0.01) * (m / c1) / (np.sqrt(v / c2) + f32(1e-8))
    return p


def one_minus_exp(x, nudge):
    e = np.exp(x)
    return f32(1) - (np.nextafter(e, f32(2)) if nudge else e)


def minus_expm1(x, nudge):
    e = np.expm1(x)
    return -(np.nextafter(e, f32(0)) if nudge else e)


for name, correction in (("1 - exp(t·log β)", one_minus_exp), ("-expm1(t·log β)", minus_expm1)):
    moved = np.abs(adam_weights(correction, True) - adam_weights(correction, False)).max()
    print(f"{name:>18}: weights move by {moved:.1e} after 5 steps for one ulp of the exponential")
