# std.nn: activations (as fns, so their derivatives are derived symbolically) and networks.
#
#   import std.nn as nn
#   net f = nn.mlp(width = 32, depth = 2)

# Written so that nothing overflows for large |z| (float32 exp overflows past 88): softplus
# lets no exp see a positive argument, and sigmoid is the identity 1/2 + tanh(z/2)/2, smooth,
# so its derivatives of any order stay short polynomials in tanh (a PINN differentiates the
# activation four times for lap(lap(u))). In its negative tail sigmoid is accurate to rounding
# in absolute terms, not relative ones: write log(sigmoid(z)) as -softplus(-z). relu is written
# with a comparison, whose derivative is 0, so that relu'(0) is 0 as in PyTorch and JAX (max(z, 0)
# would give SymPy's 1/2 there).
fn relu(z) = z * (z > 0)
fn sigmoid(z) = 0.5 + 0.5 * tanh(0.5 * z)
fn softplus(z) = max(z, 0) + log(1 + exp(-abs(z)))
fn swish(z) = z * sigmoid(z)
fn gelu(z) = 0.5 * z * (1 + tanh(sqrt(2 / pi) * (z + 0.044715 * z^3)))

# A multilayer perceptron: `depth` hidden layers of `width` units, then a linear layer.
network mlp(x: [n_in], width = 64, depth = 3, n_out = 1, act = tanh) -> [n_out] {
    h = x
    repeat depth { h = act(dense(h, width)) }
    return dense(h, n_out)
}

# DeepONet: a branch net of the sampled input function u and a trunk net of the query
# point y, combined by an inner product of their p features.
network deeponet(u: [m], y: [d], p = 40, width = 40, depth = 2, act = relu) -> [1] {
    b = mlp(u, width = width, depth = depth, n_out = p, act = act)
    k = act(mlp(y, width = width, depth = depth, n_out = p, act = act))
    return sum(b * k) + bias()
}
