# std.ops: small differential operators as fns; pass the axis as an argument.
#
#   import std.ops as ops
#   dt(u) = -ops.advect(u, 1.0, x) + nu * ops.d2(u, x)

fn d1(u, x) = diff(u, x)
fn d2(u, x) = diff(u, x, 2)
fn advect(u, c, x) = c * diff(u, x)
fn conservative_advect(u, c, x) = diff(c * u, x)
fn diffuse(u, k) = div(k * grad(u))
fn biharmonic(u) = lap(lap(u))
