# 3-D diffusion in a unit cube: cold walls on x, insulated walls on y and z.
# Exact solution: u = exp(-(pi^2 + 4 pi^2) kappa t) sin(pi x) cos(2 pi y).
pde diffusion3d {
    space x in [0, 1]
    space y in [0, 1]
    space z in [0, 1]
    time  t in [0, 0.05]
    field u
    param kappa = 0.1
    dt(u) = kappa * lap(u)
    boundary u = 0 at x = 0, x = 1
    boundary diff(u, y) = 0 at y = 0, y = 1
    boundary diff(u, z) = 0 at z = 0, z = 1
    initial u = sin(pi * x) * cos(2 * pi * y)
    solve fd(cells = 48, scheme = rk4, dt = 1e-4, every = 0.025)
}
