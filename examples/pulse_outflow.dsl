# A pulse carried diagonally across a square and out of it. The flow enters through x = 0 and
# y = 0, so only those faces take a condition; x = 1 and y = 1 are outflow faces, left open:
# the pulse leaves through them without reflecting (a condition there would over-specify the
# problem, and the scheme would send the outgoing wave back as a grid-scale ripple).
pde pulse_outflow {
    space x in [0, 1]
    space y in [0, 1]
    time  t in [0, 1]
    field u
    param cx = 0.8, cy = 0.4
    dt(u) = -cx * diff(u, x) - cy * diff(u, y)
    boundary u = 0 at x = 0, y = 0
    initial u = exp(-100 * ((x - 0.35)^2 + (y - 0.35)^2))
    solve fd(cells = 128, order = 4, scheme = rk4, dt = 2e-3, every = 0.25)
}
