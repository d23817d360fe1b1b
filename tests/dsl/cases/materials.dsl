# Imported by top_level.dsl.
const rho = 1.2
const c0 = 343.0
fn impedance(r, c) = r * c
