# Heat conduction with a diffusivity that varies in space: nu * kappa(x). kappa is a field that
# does not change in time, so its gradient is g.initial["kappa"] (see inverse_heat.py, which
# recovers nu, then kappa(x), from noisy observations with L-BFGS-B).
pde inverse_heat {
    space x in [0, 1]
    time  t in [0, 0.05]
    field u, kappa
    param nu = 0.5
    dt(u) = nu * diff(kappa * diff(u, x), x)
    dt(kappa) = 0
    boundary u = 0 at all
    boundary diff(kappa, x) = 0 at all
    initial u = sin(pi * x) + 0.5 * sin(3 * pi * x)
    initial kappa = 1
    solve fd(cells = 64, scheme = rk4, dt = 1e-4, every = 0.01)
}
