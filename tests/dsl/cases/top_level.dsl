# From the language design card, LANGUAGE.md (verbatim).
import std.nn                         # stdlib module (stdlib/nn.dsl), names used as nn.mlp
import std.nn as nn                   # same, explicit alias
import "materials.dsl" as mat         # a file relative to the importing file

const c0 = 343.0                      # a named constant (any constant expression)
fn softplus(z) = log(1 + exp(z))      # a symbolic scalar function; derivatives are derived
