# Bilevel programs (LANGUAGE.md §6) solved by implicit differentiation: the lower level is
# solved by Newton-Krylov on derived Hessian-vector products, the hypergradient comes from the
# implicit function theorem (one more Krylov solve with the transposed Jacobian), the upper level
# is L-BFGS-B. See bilevel.py.

# Tune a ridge penalty exp(lam) on validation data (data given at run time).
bilevel ridge {
    data X: [n, p], y: [n], Xv: [m, p], yv: [m]
    upper lam = 0.0
    lower w: [p] = 0
    lower minimize 0.5 * sum((X @ w - y)^2) + 0.5 * exp(lam) * sum(w^2)
    upper minimize 0.5 * sum((Xv @ w - yv)^2)
    solve implicit(tol = 1e-10, steps = 100, lr = 0.1)
}

# A Stackelberg duopoly: the leader picks q1 knowing how the follower answers.
bilevel cournot {
    param a = 100, b = 1, c1 = 10, c2 = 10
    upper q1 = 10 in [0, 100]
    lower q2 = 10 in [0, 100]
    lower maximize q2 * (a - b * (q1 + q2)) - c2 * q2
    upper maximize q1 * (a - b * (q1 + q2)) - c1 * q1
}

# One leader, two followers in Nash equilibrium with each other.
bilevel oligopoly {
    param a = 100, b = 1, c = 10
    upper q0 = 10 in [0, 100]
    lower q1 = 10 in [0, 100]
    lower q2 = 10 in [0, 100]
    lower maximize q1 * (a - b * (q0 + q1 + q2)) - c * q1 over q1
    lower maximize q2 * (a - b * (q0 + q1 + q2)) - c * q2 over q2
    upper maximize q0 * (a - b * (q0 + q1 + q2)) - c * q0
}
