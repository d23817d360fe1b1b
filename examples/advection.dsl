# Linear advection on a periodic line: the initial bump travels once around the domain.
pde advection {
    space x in [0, 1] periodic
    time  t in [0, 1]
    field u
    param c = 1
    dt(u) = -c * diff(u, x)
    initial u = exp(-100 * (x - 0.5)^2)
    solve fd(cells = 400, order = 4, scheme = rk4, dt = 1e-3, every = 0.25)
}
