# Allen-Cahn phase separation on a periodic square, with the implicit-explicit scheme imex:
# the stiff linear part (diffusion and the linear reaction u) is taken implicitly, u^3
# explicitly, split by the compiler. rk4 is unstable here above dt = 0.005; imex runs at
# dt = 0.2 (second order in time) on one factorised matrix for the whole run. On this grid the
# explicit loop is still cheaper per unit of time (an implicit step is a sparse triangular
# solve); implicit steps win as the grid is refined, since rk4's step shrinks like h^2.
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
