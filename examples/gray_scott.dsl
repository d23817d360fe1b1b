# Gray-Scott reaction-diffusion on a periodic square: spots grow out of a central seed.
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
