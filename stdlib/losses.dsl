# std.losses: pointwise loss functions; reduce them with sum(...) or mean(...).
#
#   import std.losses as losses
#   loss mean(losses.huber(f(x) - y, 1.0))

fn squared(r) = r^2
fn absolute(r) = abs(r)
fn huber(r, delta) = 0.5 * min(abs(r), delta)^2 + delta * max(abs(r) - delta, 0)
fn log_cosh(r) = log(cosh(r))
fn pseudo_huber(r, delta) = delta^2 * (sqrt(1 + (r / delta)^2) - 1)
