# Networks and training (LANGUAGE.md §4-§5): a multilayer perceptron fitted to sin(x), and a
# DeepONet that learns an operator, the antiderivative G(u)(y) = integral of u from 0 to y.
# Gradients come from the compiler's reverse mode over the network's IR; Adam runs inside
# compiled code. Data are given at run time:
#
#   ritz run examples/fit_sine.dsl --data x=x.npy --data y=y.npy
#   python examples/fit_sine.py          (makes the data, trains both blocks)

import std.nn as nn

train fit_sine {
    net f = nn.mlp(width = 32, depth = 2)
    data x: [N, 1], y: [N, 1]
    loss mean((f(x) - y)^2)
    optimizer adam(lr = 1e-3)
    steps 2000, batch 128
}

# u sampled at m = 20 points of [0, 1]; y a query point; s = G(u)(y)
train antiderivative {
    net G = nn.deeponet(p = 32, width = 40, depth = 2, act = tanh)
    data u: [N, 20], y: [N, 1], s: [N, 1]
    loss mean((G(u, y) - s)^2)
    optimizer adam(lr = 2e-3)
    steps 3000, batch 256
}
