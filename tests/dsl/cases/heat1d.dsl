# From the language design card, LANGUAGE.md (verbatim).
pde heat1d {
    space x in [0, 1]
    time  t in [0, 0.1]
    field u
    param nu = 0.05
    dt(u) = nu * diff(u, x, 2)
    boundary u = 0 at x = 0, x = 1
    initial  u = sin(pi * x)
    solve fd(cells = 200, scheme = rk4, dt = 2e-5)
}
