# From the language design card, LANGUAGE.md (verbatim).
network mlp2(x: [2]) -> [1] {
    h = tanh(dense(x, 64))
    h = tanh(dense(h, 64))
    return dense(h, 1)
}
