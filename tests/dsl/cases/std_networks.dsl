# From the language design card, LANGUAGE.md (verbatim).
network mlp(x: [n_in], width = 64, depth = 3, n_out = 1, act = tanh) -> [n_out] {
    h = x
    repeat depth { h = act(dense(h, width)) }
    return dense(h, n_out)
}

network deeponet(u: [m], y: [d], p = 40, width = 40, depth = 2, act = relu) -> [1] {
    b = mlp(u, width = width, depth = depth, n_out = p, act = act)
    k = act(mlp(y, width = width, depth = depth, n_out = p, act = act))
    return sum(b * k) + bias()
}
