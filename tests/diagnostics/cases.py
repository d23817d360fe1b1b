"""Malformed programs and the first diagnostic each must produce: (code, line, col, substring).

H is a well-formed heat1d prefix; cases splice one mistake into otherwise valid programs.
"""

HEAD = "pde p {\n    space x in [0, 1]\n    time t in [0, 1]\n    field u\n"
OK_TAIL = "    boundary u = 0 at all\n    initial u = 0\n}\n"


def pde(*lines: str, tail: str = OK_TAIL) -> str:
    return HEAD + "".join(f"    {ln}\n" for ln in lines) + tail


HEAT = (
    "pde heat {\n    space x in [0, 1]\n    time t in [0, 0.1]\n    field u\n    param nu = 0.1\n"
    "    dt(u) = nu * diff(u, x, 2)\n    boundary u = 0 at all\n    initial u = sin(pi * x)\n}\n"
)


def pde_bilevel(*lines: str) -> str:
    """A bilevel block over the pde ``heat`` (lines 1-9); its own lines start at line 11."""
    return HEAT + "bilevel b {\n" + "".join(f"    {ln}\n" for ln in lines) + "}\n"


# name: (program, code, line, col, message substring)
CASES: dict[str, tuple[str, str, int, int, str]] = {
    "param_uses_a_later_param": (
        pde("param a = b, b = 1", "dt(u) = a * lap(u)"),
        "R317",
        5,
        15,
        "param 'a' uses 'b', which is defined after it",
    ),
    "param_uses_itself": (
        pde("param a = 2 * a", "dt(u) = a * lap(u)"),
        "R317",
        5,
        19,
        "uses itself",
    ),
    "bilevel_param_uses_a_later_param": (
        "bilevel b {\n    param a = b\n    param b = 1\n    upper y = 0\n    lower x = 0\n"
        "    lower minimize (x - y)^2\n    upper minimize (x - a)^2\n}\n",
        "R317",
        2,
        15,
        "which is defined after it (line 3)",
    ),
    "complex_in_equation": (pde("dt(u) = lap(u) + sqrt(-1)"), "R317", 5, 22, "not a real"),
    "complex_log_in_boundary": (
        pde("dt(u) = lap(u)", tail="    boundary u = log(-2) at all\n    initial u = 0\n}\n"),
        "R317",
        6,
        18,
        "not a real number (log(2) + I*pi)",
    ),
    "nan_constant_in_equation": (pde("dt(u) = lap(u) + asin(2)"), "R317", 5, 22, "not a real"),
    "literal_below_smallest_double": ("const a = 1e-400\n", "R317", 1, 11, "smallest double"),
    "product_below_smallest_double": (
        "const a = 1e-300 * 1e-300\n",
        "R317",
        1,
        11,
        "smallest double",
    ),
    "train_net_unused": (
        "import std.nn as nn\ntrain t {\n    net f = nn.mlp(width = 4)\n"
        "    net g = nn.mlp(width = 4)\n    data x: [N, 1], y: [N, 1]\n"
        "    loss mean((f(x) - y)^2) + 0 * mean(g(x)^2)\n}\n",
        "R331",
        4,
        5,
        "net 'g' is declared but the loss does not use it",
    ),
    "weight_read_in_a_loss": (
        "import std.nn as nn\ntrain t {\n    net f = nn.mlp(width = 4)\n"
        "    data x: [N, 1], y: [N, 1]\n    loss mean((f(x) - y)^2) + sum(f.h.W^2)\n}\n",
        "R201",
        5,
        35,
        "'f.h.W' is a weight",
    ),
    "train_loss_misspelt": (
        "import std.nn as nn\ntrain t {\n    net f = nn.mlp(width = 4)\n"
        "    data x: [N, 1], y: [N, 1]\n    los mean((f(x) - y)^2)\n}\n",
        "R206",
        5,
        5,
        "unknown option 'los'",
    ),
    "bilevel_minimize_misspelt": (
        "bilevel b {\n    upper a = 1\n    lower w = 0\n    lower minimze (w - a)^2\n"
        "    upper minimize w^2\n}\n",
        "R128",
        4,
        11,
        "unknown word 'minimze' after 'lower'",
    ),
    "train_without_net": (
        "train u {\n    data x: [N, 1], y: [N, 1]\n    loss mean((x - y)^2)\n}\n",
        "R331",
        1,
        1,
        "has no net, so it has nothing to train",
    ),
    "lbfgs_with_batch": (
        "import std.nn as nn\ntrain t {\n    net f = nn.mlp(width = 4)\n"
        "    data x: [N, 1], y: [N, 1]\n    loss mean((f(x) - y)^2)\n"
        "    optimizer lbfgs\n    steps 10, batch 4\n}\n",
        "R537",
        7,
        15,
        "a batch does not apply to it",
    ),
    "steady_pinn_initial_points": (
        "pde s {\n    space x in [0, 1]\n    field u\n    -diff(u, x, 2) = 1\n"
        "    boundary u = 0 at all\n    solve pinn(points = 10, initial_points = 5)\n}\n",
        "R206",
        6,
        29,
        "'initial_points' is for time-dependent problems",
    ),
    "bilevel_param_follows_a_variable": (
        "bilevel c {\n    upper q1 = 1\n    param a = q1\n    lower w = 0\n"
        "    lower minimize (w - a)^2\n    upper minimize w^2\n}\n",
        "R317",
        3,
        15,
        "'q1' is a variable or data of the block",
    ),
    # ---- syntax ------------------------------------------------------------------------
    "dangling_operator": ("const c = 1 +\n", "R111", 1, 14, "ends with an operator"),
    "two_expressions": ("const c = 2 x\n", "R112", 1, 13, "two expressions in a row"),
    "missing_equals": ("const c 1\n", "R110", 1, 9, "expected '='"),
    "statement_at_top": ("\n\nu = 1\n", "R116", 3, 1, "top level"),
    "unclosed_paren": (pde("dt(u) = diff(u, x", "initial u = 0"), "R102", 5, 17, "unclosed '('"),
    "unclosed_paren_eof": ("const c = f(1, 2\n", "R102", 1, 12, "unclosed '('"),
    "mismatched_bracket": ("const c = (1 + 2]\n", "R102", 1, 11, "unclosed '('"),
    "stray_closer": ("const c = 1)\n", "R103", 1, 12, "unmatched ')'"),
    "bad_character": ("const c = 1 $ 2\n", "R101", 1, 13, "unexpected character '$'"),
    "space_without_in": ("pde p {\n    space x [0, 1]\n}\n", "R113", 2, 13, "interval"),
    "boundary_without_at": (
        pde("dt(u) = 0", tail="    boundary u = 0\n}\n"),
        "R114",
        6,
        19,
        "needs 'at'",
    ),
    "block_without_name": ("pde {\n}\n", "R115", 1, 5, "needs a name"),
    "two_statements_one_line": ("pde p {\n    field u v\n}\n", "R117", 2, 13, "past its end"),
    "solve_positional": ("pde p {\n    solve fd(200)\n}\n", "R118", 2, 14, "'solve' names"),
    "network_without_arrow": ("network n(x: [1]) {\n}\n", "R120", 1, 19, "network is declared"),
    "data_without_shape": ("train t {\n    data x\n}\n", "R121", 2, 11, "shape"),
    "fn_without_body": ("fn f(x)\n", "R124", 1, 8, "fn is defined"),
    "unclosed_block": ("pde p {\n    field u\n", "R104", 2, 12, "not closed"),
    "dotted_declaration": ("const a.b = 1\n", "R105", 1, 7, "cannot contain '.'"),
    "duplicate_kwarg": ("const c = f(a = 1, a = 2)\n", "R106", 1, 20, "given twice"),
    "chained_comparison": ("const c = 1 < 2 < 3\n", "R100", 1, 17, "unexpected '<'"),
    "lower_solution_not_a_call": (
        "bilevel b {\n    upper nu = 1\n    lower u = (nu + 1).u\n}\n",
        "R108",
        3,
        16,
        "must name a problem call",
    ),
    "lower_solution_of_elementary_call": (
        "bilevel b {\n    upper nu = 1\n    lower u = sin(nu).u at t = 0.1\n}\n",
        "R108",
        3,
        15,
        "must name a problem call",
    ),
    # ---- names -------------------------------------------------------------------------
    "unknown_name": (
        pde("dt(u) = nux * diff(u, x, 2)", "param nu = 1"),
        "R201",
        5,
        13,
        "unknown name 'nux'",
    ),
    "unknown_function": (pde("dt(u) = lapl(u)"), "R202", 5, 13, "unknown function 'lapl'"),
    "field_indexed": (pde("dt(u) = u[0]"), "R352", 5, 13, "cannot index"),
    "field_called": (pde("dt(u) = u(x)"), "R202", 5, 13, "not a function"),
    "duplicate_field": (pde("field u", "dt(u) = 0"), "R203", 5, 11, "declared twice"),
    "shadow_builtin": (pde("param pi = 3", "dt(u) = 0"), "R204", 5, 11, "shadows the built-in"),
    "axis_named_keyword": (
        "pde p {\n    space in in [0, 1]\n    field u\n    u = 0\n}\n",
        "R204",
        2,
        5,
        "shadows the keyword 'in'",
    ),
    "network_value_named_e": (
        "network g(x: [2]) -> [1] {\n    e = dense(x, 1)\n    return e\n}\n",
        "R204",
        2,
        5,
        "value 'e' shadows the built-in 'e'",
    ),
    "network_value_named_const": (
        "const c = 2\nnetwork g(x: [2]) -> [1] {\n    c = tanh(dense(x, 3))\n"
        "    return dense(c, 1)\n}\n",
        "R204",
        3,
        5,
        "shadows the top-level 'c'",
    ),
    "setting_twice": (
        "import std.nn as nn\ntrain t {\n    net f = nn.mlp(width = 4)\n"
        "    data x: [N, 1], y: [N, 1]\n    loss mean((f(x) - y)^2)\n    steps 3, steps 4\n}\n",
        "R203",
        6,
        14,
        "'steps' is given twice",
    ),
    "recursive_fn": ("fn f(z) = f(z) + 1\n", "R205", 1, 1, "recursive fn: f -> f"),
    "unknown_option": (
        pde("dt(u) = 0", "solve fd(cels = 10)"),
        "R206",
        6,
        14,
        "unknown option 'cels'",
    ),
    "unknown_method": (
        pde("dt(u) = 0", "solve fdm(cells = 10)"),
        "R207",
        6,
        5,
        "unknown solve method 'fdm'",
    ),
    "initial_not_field": (
        pde(
            "dt(u) = 0", tail="    boundary u = 0 at all\n    initial u = 0\n    initial w = 0\n}\n"
        ),
        "R208",
        8,
        13,
        "not a field",
    ),
    "duplicate_top_name": ("const a = 1\nfn a(z) = z\n", "R203", 2, 1, "duplicate top-level"),
    "unknown_network": (
        "train t {\n    net f = mpl(width = 2)\n    data x: [N, 1]\n    loss mean(f(x))\n}\n",
        "R202",
        2,
        13,
        "unknown network 'mpl'",
    ),
    "unknown_setting": (
        "import std.nn as nn\ntrain t {\n    net f = nn.mlp()\n"
        "    data x: [N, 1]\n    loss mean(f(x))\n    step 10\n}\n",
        "R206",
        6,
        5,
        "unknown option 'step'",
    ),
    "over_not_lower": (
        "bilevel b {\n    upper a = 1\n    lower q = 1\n"
        "    lower minimize q^2 over a\n    upper minimize a\n}\n",
        "R209",
        4,
        29,
        "not a lower variable",
    ),
    # ---- imports -----------------------------------------------------------------------
    "missing_std_module": ("import std.nnn\n", "R250", 1, 1, "cannot find module 'std.nnn'"),
    "import_non_std": ("import foo.bar\n", "R252", 1, 1, "only std modules"),
    # ---- types and shapes --------------------------------------------------------------
    "diff_arity": (pde("dt(u) = diff(u)"), "R301", 5, 13, "diff() takes 2 or 3"),
    "elementary_arity": ("const c = sin(1, 2)\n", "R301", 1, 11, "sin() takes 1"),
    "fn_arity": (
        "fn sq(z) = z^2\n" + pde("dt(u) = sq(u, u)"),
        "R301",
        6,
        13,
        "takes 1 argument(s), got 2",
    ),
    "diff_order_not_int": (pde("dt(u) = diff(u, x, 1.5)"), "R302", 5, 24, "positive integer"),
    "diff_wrt_param": (pde("param k = 1", "dt(u) = diff(u, k)"), "R303", 6, 21, "not a space axis"),
    "diff_wrt_time": (pde("dt(u) = diff(u, t)"), "R304", 5, 21, "with respect to time"),
    "dt_in_steady": (
        "pde p {\n    space x in [0, 1]\n    field u\n    dt(u) = 0\n}\n",
        "R305",
        4,
        5,
        "steady problem",
    ),
    "dt_on_rhs": (pde("dt(u) = dt(u)"), "R305", 5, 13, "only stand alone"),
    "missing_equation": (pde(), "R306", 4, 11, "has no equation"),
    "duplicate_equation": (pde("dt(u) = 0", "dt(u) = 1"), "R307", 6, 5, "second equation"),
    "missing_initial": (
        pde("dt(u) = 0", tail="    boundary u = 0 at all\n}\n"),
        "R308",
        4,
        11,
        "missing initial condition for u",
    ),
    "missing_initial_dt": (pde("dt(u, 2) = lap(u)"), "R308", 4, 11, "for dt(u)"),
    "periodic_boundary": (
        "pde p {\n    space x in [0, 1] periodic\n    time t in [0, 1]\n"
        "    field u\n    dt(u) = 0\n    boundary u = 0 at x = 0\n"
        "    initial u = 0\n}\n",
        "R310",
        6,
        23,
        "periodic axis 'x'",
    ),
    "not_a_face": (
        pde("dt(u) = 0", tail="    boundary u = 0 at x = 0.5\n    initial u = 0\n}\n"),
        "R311",
        6,
        23,
        "not a face",
    ),
    "nonlinear_boundary": (
        pde("dt(u) = 0", tail="    boundary u^2 = 0 at all\n    initial u = 0\n}\n"),
        "R312",
        6,
        5,
        "not linear",
    ),
    "tangential_derivative": (
        "pde p {\n    space x in [0, 1]\n    space y in [0, 1]\n"
        "    field u\n    -lap(u) = 1\n"
        "    boundary diff(u, y) = 0 at x = 0\n    boundary u = 0 at all\n"
        "}\n",
        "R312",
        6,
        5,
        "tangential",
    ),
    "missing_boundary": (
        pde("dt(u) = diff(u, x, 2)", tail="    boundary u = 0 at x = 0\n    initial u = 0\n}\n"),
        "R313",
        4,
        11,
        "at x = 1",
    ),
    "steady_with_a_time_scheme": (
        "pde p {\n    space x in [0, 1]\n    field u\n    -diff(u, x, 2) = 1\n"
        "    boundary u = 0 at all\n    solve fd(cells = 10, scheme = rk4)\n}\n",
        "R206",
        6,
        26,
        "is steady",
    ),
    "empty_interval": (
        "pde p {\n    space x in [1, 0]\n    field u\n    u = 0\n}\n",
        "R314",
        2,
        5,
        "empty interval",
    ),
    "too_many_axes": (
        "pde p {\n"
        + "".join(f"    space {a} in [0, 1] periodic\n" for a in "abcd")
        + "    field u\n    u = 0\n}\n",
        "R315",
        5,
        5,
        "4 space axes",
    ),
    "bad_option_value": (pde("dt(u) = 0", "solve fd(scheme = rk5)"), "R316", 6, 23, "one of euler"),
    "cells_per_axis": (
        pde("dt(u) = 0", "solve fd(cells = [10, 20])"),
        "R316",
        6,
        14,
        "2 sizes for 1 axes",
    ),
    "nonconstant_const": ("const c = 2 * k\n", "R317", 1, 15, "'k' is not a known constant"),
    "duplicate_boundary": (
        pde(
            "dt(u) = 0",
            tail="    boundary u = 0 at all\n    boundary u = 1 at x = 1\n    initial u = 0\n}\n",
        ),
        "R318",
        7,
        5,
        "second boundary condition",
    ),
    "no_axis": ("pde p {\n    field u\n    u = 0\n}\n", "R319", 1, 1, "no space axis"),
    "grad_as_scalar": (pde("dt(u) = grad(u)"), "R321", 5, 13, "where a scalar is expected"),
    # ---- comparisons are 0/1 indicators; misplaced 'not' (R327), jumps differentiated (R328)
    "not_after_operator": ("const c = 1 + not (2 > 1)\n", "R327", 1, 15, "'not' binds"),
    "fn_named_not": ("fn not(z) = z + 100\nconst c = not(0)\n", "R204", 1, 1, "'not'"),
    "const_named_or": ("const or = 3\n", "R204", 1, 1, "shadows the built-in 'or'"),
    "fn_parameter_named_and": ("fn f(and) = 1\n", "R204", 1, 1, "'and'"),
    "fn_arity_in_const": ("fn f(z) = z\nconst c = f(1, 2)\n", "R301", 2, 11, "takes 1 argument"),
    "steady_first_order": (
        "pde fo {\n    space x in [0, 1]\n    field u\n    diff(u, x) = cos(x)\n"
        "    boundary u = 0 at x = 0\n}\n",
        "R329",
        3,
        11,
        "only once along 'x'",
    ),
    "not_before_a_name": ("const c = 2 == not x\n", "R327", 1, 16, "'not' binds"),
    "comparison_of_vectors": (pde("dt(u) = grad(u) < 1"), "R321", 5, 13, "a vector"),
    "comparison_of_complex": ("const c = sqrt(-1) < 1\n", "R317", 1, 11, "not a real number"),
    "jump_differentiated": (
        pde("dt(u) = diff((x < 0.5) * u, x)"),
        "R328",
        5,
        13,
        "delta function where 0.5 - x = 0",
    ),
    "sign_differentiated": (pde("dt(u) = diff(sign(u), x)"), "R328", 5, 13, "where u = 0"),
    "kink_thrice": (pde("dt(u) = diff(max(u, 0), x, 3)"), "R328", 5, 13, "delta function"),
    "bounded_fifth_order": (pde("dt(u) = diff(u, x, 5)"), "R333", 5, 5, "order 5 along 'x'"),
    # ---- nesting (R324), numbers out of a double's range (R317) --------------------------
    "nested_powers": ("const c = " + "^".join(["c"] * 200) + "\n", "R324", 1, 207, "too deeply"),
    "nested_calls": (
        "fn f(z) = z\nconst c = " + "f(" * 1500 + "1" + ")" * 1500 + "\n",
        "R324",
        2,
        2809,
        "more than 100 levels",
    ),
    "power_overflow": (pde("param nu = 10^400", "dt(u) = nu * u"), "R317", 5, 16, "1e400"),
    "power_tower": (pde("param nu = 2^(2^(2^(2^5)))", "dt(u) = u"), "R317", 5, 19, "2^4294967296"),
    "long_integer": ("const c = " + "9" * 5000 + "\n", "R317", 1, 11, "beyond a double's range"),
    "float_overflow": (pde("dt(u) = 1e200 * 1e200 * u"), "R317", 5, 13, "beyond a double"),
    "remainder_by_zero": ("const c = 5 % 0\n", "R317", 1, 11, "division by zero"),
    "division_by_zero_const": ("const z = 0\nconst c = 1 / z\n", "R317", 2, 11, "divides by zero"),
    "log_of_zero": (pde("dt(u) = u * log(0)"), "R317", 5, 17, "infinite"),
    "const_power_overflow": ("const k = 2^30\nconst c = 2^(2^k)\n", "R317", 2, 11, "1e323228497"),
    "huge_cells": (pde("dt(u) = 0", "solve fd(cells = 10^20)"), "R316", 6, 22, "2147483647"),
    "huge_dt": (pde("dt(u) = 0", "solve fd(dt = 10^400)"), "R317", 6, 19, "1e400"),
    # ---- limits on derivative order (R325) and repeat counts (R326) ----------------------
    "diff_order_50": (pde("dt(u) = diff(u, x, 50)"), "R325", 5, 13, "at most 8"),
    "nested_laplacians": (pde("dt(u) = lap(lap(lap(lap(lap(u)))))"), "R325", 5, 13, "order 10"),
    "repeat_count": (
        "network n(x: [2]) -> [2] {\n    h = x\n    repeat 1000000000 { h = tanh(h) }\n"
        "    return h\n}\n",
        "R326",
        3,
        12,
        "at most 1000",
    ),
    # ---- operators named as written ------------------------------------------------------
    "matmul_in_pde": (pde("dt(u) = 0.5 * (u @ u)"), "R320", 5, 20, "'@' multiplies vectors"),
    "matmul_in_const": ("const c = 1 + 2 @ 3\n", "R317", 1, 15, "'@' is not allowed"),
    # ---- bilevel checks that need no data ------------------------------------------------
    "bilevel_unknown_size": (
        "bilevel b {\n    data X: [n, p]\n    upper y = 1\n    lower w: [q] = 0\n"
        "    lower minimize sum((X @ w)^2) + y * sum(w^2)\n    upper minimize sum(w^2)\n}\n",
        "R349",
        4,
        15,
        "'q' of 'w' is not a size of the data",
    ),
    "bilevel_negative_size": (
        "bilevel b {\n    upper y: [-2] = 1\n    lower w = 0\n"
        "    lower minimize (w - y)^2\n    upper minimize w^2\n}\n",
        "R343",
        2,
        15,
        "whole number",
    ),
    "bilevel_observed_before_start": (
        pde_bilevel(
            "upper nu = 0.1", "lower v = heat(nu = nu).u at t = -1", "upper minimize sum(v^2)"
        ),
        "R350",
        12,
        38,
        "not after the start time 0",
    ),
    "bilevel_two_pde_solutions": (
        pde_bilevel(
            "upper nu = 0.1",
            "lower v = heat(nu = nu).u at t = 0.1",
            "lower w = heat(nu = nu).u at t = 0.05",
            "upper minimize sum(v^2) + sum(w^2)",
        ),
        "R416",
        13,
        5,
        "several PDE lower solutions",
    ),
    "bilevel_vector_pde_parameter": (
        pde_bilevel(
            "upper c: [2] = 0.1",
            "lower v = heat(nu = sum(c)).u at t = 0.1",
            "upper minimize sum(v^2)",
        ),
        "R416",
        11,
        5,
        "only scalar upper variables",
    ),
    "bilevel_nan_param": (
        "bilevel b {\n    param a = 0/0\n    upper y = 1\n    lower w = 0\n"
        "    lower minimize (w - a * y)^2\n    upper minimize w^2\n}\n",
        "R317",
        2,
        15,
        "division by zero",
    ),
    "bilevel_const_nan_param": (
        "const z = 0\nbilevel b {\n    param a = log(z)\n    upper y = 1\n    lower w = 0\n"
        "    lower minimize (w - a * y)^2\n    upper minimize w^2\n}\n",
        "R317",
        3,
        15,
        "param 'a'",
    ),
    "network_no_return": ("network n(x: [1]) -> [1] {\n    h = x\n}\n", "R330", 1, 1, "no return"),
    "train_no_loss": (
        "import std.nn as nn\ntrain t {\n    net f = nn.mlp()\n}\n",
        "R331",
        2,
        1,
        "no loss",
    ),
    "recursive_network": (
        "network a(x: [2]) -> [2] {\n    return a(x)\n}\n",
        "R205",
        1,
        1,
        "recursive network: a -> a",
    ),
    "unknown_optimizer_option": (
        "import std.nn as nn\ntrain t {\n    net f = nn.mlp()\n    data x: [N, 1]\n"
        "    loss mean(f(x))\n    optimizer adam(lr = 1e-3, momentum = 0.9)\n}\n",
        "R537",
        6,
        31,
        "'momentum' is not an option of adam",
    ),
    # ---- regressions of the front-end test report ---------------------------------------
    "steady_equation_without_field": (
        "pde p {\n    space x in [0, 1]\n    field u\n    0 = 0\n    solve fd(cells = 8)\n}\n",
        "R306",
        4,
        5,
        "involves no field, so the equation of field 'u' determines no field",
    ),
    "steady_equation_without_field_of_two": (
        "pde p {\n    space x in [0, 1]\n    field u\n    field v\n    diff(v, x, 2) = 1\n"
        "    sin(x) = 1\n    boundary u = 0 at all\n    boundary v = 0 at all\n}\n",
        "R306",
        6,
        5,
        "field 'v' determines no field",
    ),
    "dense_zero_width": (
        "network m(x: [2]) -> [1] {\n    h = dense(x, 0)\n    return dense(h, 1)\n}\n",
        "R343",
        2,
        9,
        "the width of dense() must be a positive whole number, got 0",
    ),
    "dense_fractional_width_from_const": (
        "const w = 2.5\nnetwork m(x: [2]) -> [1] {\n    return dense(x, w)\n}\n",
        "R343",
        3,
        12,
        "got 2.5",
    ),
    "pinn_mlp_zero_width": (
        "import std.nn as nn\n"
        + pde("dt(u) = diff(u, x, 2)", "solve pinn(net = nn.mlp(width = 0))"),
        "R343",
        7,
        37,
        "option 'width' of network 'nn.mlp' (a layer width) must be a positive whole number",
    ),
    "train_mlp_zero_outputs": (
        "import std.nn as nn\ntrain t {\n    net f = nn.mlp(n_out = 0)\n    data x: [N, 1]\n"
        "    loss mean(f(x))\n}\n",
        "R343",
        3,
        28,
        "option 'n_out'",
    ),
    "network_negative_depth_default": (
        "import std.nn as nn\nnetwork m(x: [2], d = -1) -> [1] {\n"
        "    return nn.mlp(x, depth = d)\n}\n",
        "R343",
        2,
        23,
        "the default of option 'd' (a repeat count) must be a non-negative whole number, got -1",
    ),
    "one_cell": (
        pde("dt(u) = diff(u, x, 2)", "solve fd(cells = 1)"),
        "R504",
        6,
        14,
        "cells must be one integer >= 2 or a list of 1 of them; got [1]",
    ),
    "misspelt_initial": (
        pde("dt(u) = 0", "intial u = 1"),
        "R128",
        6,
        5,
        "unknown statement 'intial'",
    ),
    "misspelt_field": (pde("feild v", "dt(u) = 0"), "R128", 5, 5, "unknown statement 'feild'"),
    "misspelt_solve": (pde("dt(u) = 0", "solv fd(cells = 8)"), "R128", 6, 5, "'solv'"),
    "misspelt_space": (pde("spce y in [0, 1]", "dt(u) = 0"), "R128", 5, 5, "'spce'"),
    "misspelt_net": (
        "train t {\n    nett g = nn.mlp()\n}\n",
        "R128",
        2,
        5,
        "unknown statement 'nett' in a train block",
    ),
    "misspelt_data": ("train t {\n    datas z: [N]\n}\n", "R128", 2, 5, "'datas'"),
    "misspelt_upper": ("bilevel b {\n    uper q = 1\n}\n", "R128", 2, 5, "'uper'"),
    "misspelt_return": (
        "network n(x: [1]) -> [1] {\n    retrun x\n}\n",
        "R128",
        2,
        5,
        "unknown statement 'retrun' in a network body",
    ),
    "double_equals_equation": (pde("dt(u) == -u"), "R129", 5, 11, "'==' is a comparison"),
    "double_equals_const": ("const c == 1\n", "R129", 1, 9, "uses '='"),
    "double_equals_initial": (
        pde("dt(u) = 0", tail="    boundary u = 0 at all\n    initial u == 0\n}\n"),
        "R129",
        7,
        15,
        "'==' is a comparison",
    ),
    "index_not_whole": (
        "network m(x: [2]) -> [1] {\n    return dense(x, 1) * x[0.5]\n}\n",
        "R352",
        2,
        26,
        "index 0.5 is not a whole number",
    ),
    "fn_keyword_call_in_const": (
        "fn f(z) = z\nconst a = f(z = 1)\n",
        "R301",
        2,
        11,
        "keyword arguments are only allowed in calls of networks",
    ),
    "const_defined_later": (
        "const a = b + 1\nconst b = 2\n",
        "R317",
        1,
        11,
        "const 'a' uses 'b', which is defined after it (line 2)",
    ),
    "unknown_function_in_param": (
        pde("param r = sine(2)", "dt(u) = -r * u"),
        "R202",
        5,
        15,
        "unknown function 'sine'",
    ),
}
