# Allen-Cahn phase separation on a periodic square, with the implicit-explicit scheme imex:
# the stiff linear part (diffusion and the linear reaction u) is taken implicitly, u^3
# explicitly, split by the compiler. The explicit rk4 needs dt < 0.011 on this grid; imex runs
# at dt = 0.2 with second-order accuracy and one factorised matrix for the whole run.
pde allen_cahn {
    space x in [0, 1] periodic
    space y in [0, 1] periodic
    time  t in [0, 30]
    field u
    param D = 1e-3
    dt(u) = D * lap(u) + u - u^3
    initial u = 0.1 * (sin(2 * pi * x + 0.3) * cos(4 * pi * y) + cos(6 * pi * x) * sin(2 * pi * y + 1) + 0.5 * sin(2 * pi * (2 * x + y)))
    solve fd(cells = 256, scheme = imex, dt = 0.2, every = 10)
}
