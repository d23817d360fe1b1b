# std.nn: activations (as fns, so their derivatives are derived symbolically) and networks.
#
#   import std.nn as nn
#   net f = nn.mlp(width = 32, depth = 2)

# Written so that no exp sees a positive argument: neither they nor their derivatives overflow
# for large |z| (float32 exp overflows past 88), and sigmoid keeps its relative accuracy far
# into the negative tail (where 1 - tanh would round to 0).
fn relu(z) = max(z, 0)
fn sigmoid(z) = exp(min(z, 0)) / (1 + exp(-abs(z)))
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
