# Steady Poisson problem on the unit square: Newton's method with a matrix-free Krylov solver
# on the compiled residual and its derived Jacobian. Exact solution: sin(pi x) sin(pi y).
pde poisson {
    space x in [0, 1]
    space y in [0, 1]
    field u
    -lap(u) = 2 * pi^2 * sin(pi * x) * sin(pi * y)
    boundary u = 0 at all
    solve fd(cells = 128, tol = 1e-10)
}
