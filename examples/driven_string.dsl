# A string fixed at x = 1 and shaken at x = 0: u(0, t) = A sin(w t). The boundary data move, so
# each Runge-Kutta stage imposes them at the value the stage would hold, built from the data's
# time derivatives (SymPy's); imposed at the stage times instead, they would cost rk4 its order.
# Exact solution: u = A sin(w t) sin(w (1 - x) / c) / sin(w / c).
pde driven_string {
    space x in [0, 1]
    time  t in [0, 2]
    field u
    param c = 1, A = 0.1, w = 5
    dt(u, 2) = c^2 * diff(u, x, 2)
    boundary u = A * sin(w * t) at x = 0
    boundary u = 0 at x = 1
    initial u = 0
    initial dt(u) = A * w * sin(w * (1 - x) / c) / sin(w / c)
    solve fd(cells = 100, scheme = rk4, order = 4, dt = auto)
}
