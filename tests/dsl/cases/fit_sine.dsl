# From the language design card, LANGUAGE.md (verbatim).
import std.nn as nn
train fit_sine {
    net f = nn.mlp(width = 32, depth = 2)
    data x: [N, 1], y: [N, 1]
    loss mean((f(x) - y)^2)
    optimizer adam(lr = 1e-3)
    steps 2000, batch 128
}
