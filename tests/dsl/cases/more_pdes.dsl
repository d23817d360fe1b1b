# From the language design card, LANGUAGE.md (verbatim).
import std.nn as nn

pde gray_scott {
    space x in [0, 2.5] periodic
    space y in [0, 2.5] periodic
    time  t in [0, 1000]
    field u, v
    param Du = 2e-5, Dv = 1e-5, F = 0.04, k = 0.06
    dt(u) = Du * lap(u) - u * v^2 + F * (1 - u)
    dt(v) = Dv * lap(v) + u * v^2 - (F + k) * v
    initial u = 1 - 0.5 * exp(-100 * ((x - 1.25)^2 + (y - 1.25)^2))
    initial v = 0.25 * exp(-100 * ((x - 1.25)^2 + (y - 1.25)^2))
    solve fd(cells = 256, scheme = rk4, dt = 1.0, every = 100)
}

pde wave2d {
    space x in [0, 1]
    space y in [0, 1]
    time  t in [0, 1]
    field u
    param c = 1
    dt(u, 2) = c^2 * lap(u)
    boundary u = 0 at all
    initial u = sin(pi * x) * sin(pi * y)
    initial dt(u) = 0
    solve fd(cells = 128, scheme = rk4, dt = 1e-3)
}

pde poisson {
    space x in [0, 1]
    space y in [0, 1]
    field u
    -lap(u) = 2 * pi^2 * sin(pi * x) * sin(pi * y)
    boundary u = 0 at all
    solve fd(cells = 128, tol = 1e-10)
}

pde burgers {
    space x in [-1, 1]
    time  t in [0, 1]
    field u
    param nu = 0.01 / pi
    dt(u) = -u * diff(u, x) + nu * diff(u, x, 2)
    boundary u = 0 at x = -1, x = 1
    initial  u = -sin(pi * x)
    solve fd(cells = 1024, scheme = ssprk3, dt = 1e-4)
    solve pinn(net = nn.mlp(width = 20, depth = 8, act = tanh), points = 10000, steps = 20000, optimizer = adam(lr = 1e-3))
}
