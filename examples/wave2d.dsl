# 2-D wave equation in a unit square with fixed edges: a standing wave,
# u = cos(sqrt(2) pi c t) sin(pi x) sin(pi y).
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
