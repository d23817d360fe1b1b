# Viscous Burgers equation: a shock forms at x = 0 around t = 1/pi.
pde burgers {
    space x in [-1, 1]
    time  t in [0, 1]
    field u
    param nu = 0.01 / pi
    dt(u) = -u * diff(u, x) + nu * diff(u, x, 2)
    boundary u = 0 at x = -1, x = 1
    initial  u = -sin(pi * x)
    solve fd(cells = 1024, scheme = ssprk3, dt = 1e-4, every = 0.25)
}
