"""A Program split along its batch axes (``passes.batch_split``) -> chunk functions and a driver.

``<name>_chunk`` (compiled, serial, releasing the GIL) computes one row chunk's partial sums and
output rows; ``<name>_finish`` (compiled, serial; left out when every output is a sum as it is)
computes the outputs from the combined sums; ``<name>`` is plain Python: it slices the batched
inputs, runs the chunks on a pool of threads, adds the partial sums up in chunk order and calls
the finish.

Why threads from Python and not one ``prange`` over the chunks: Numba re-optimises a callee's
code inside every caller it is linked into, and a parallel loop is two callers deep, so a
network's gradient compiled two to three times slower than its serial function did. Why the
chunk count depends on the sizes alone, never on the thread count: the sums are then the same on
every machine. Chunks of a few hundred rows keep a chunk's intermediate arrays in cache.
"""

from __future__ import annotations

from ..ir.ops import Input
from ..ir.program import Program
from ..passes.batch_split import BatchSplit
from .base import NameRegistry
from .numba_dense import DenseFunction, _ident

ROWS_PER_CHUNK = 256  # rows of the largest batch axis per chunk (64-wide float64: 128 KiB)
MAX_CHUNKS = 256

# The module's thread pool (printed once into a module that has chunked functions). BLAS is held
# to one thread while chunks run, so that the chunks' matrix products do not each start a team.
RUNNER = '''

_POOL = []
_LIMITER = []


def _run_chunks(run, chunks):
    """``[run(c) for c in range(chunks)]``, the chunks spread over Numba's thread count."""
    threads = min(chunks, numba.get_num_threads())
    if threads <= 1:
        return [run(c) for c in range(chunks)]
    if not _POOL:
        from concurrent.futures import ThreadPoolExecutor

        _POOL.append(ThreadPoolExecutor(max_workers=numba.config.NUMBA_NUM_THREADS))

    def share(k):
        return [run(c) for c in range(k, chunks, threads)]

    with _blas_one_thread():
        shares = list(_POOL[0].map(share, range(threads)))
    return [shares[c % threads][c // threads] for c in range(chunks)]


def _blas_one_thread():
    if not _LIMITER:  # one controller: finding the BLAS libraries takes milliseconds
        try:
            import scipy.linalg.cython_blas  # noqa: F401  (the BLAS that Numba calls)
            from threadpoolctl import ThreadpoolController

            _LIMITER.append(ThreadpoolController())
        except ImportError:  # then BLAS keeps its own thread count
            _LIMITER.append(None)
    if _LIMITER[0] is None:
        import contextlib

        return contextlib.nullcontext()
    return _LIMITER[0].limit(limits=1, user_api="blas")
'''


def _inputs(prog: Program) -> list[Input]:
    return [op for op in prog.ops if isinstance(op, Input)]


def print_chunked(
    split: BatchSplit,
    name: str,
    order: list[str],
    outputs: tuple[str, ...],
    ids: dict[str, str],
    dtype: str,
    names: NameRegistry,
    whole_prog: Program,
) -> list[str]:
    """The functions; ``name(*ids[order]) -> outputs`` has the signature and results of the
    unsplit Program's function (but is plain Python: call it from Python)."""
    sizes: dict[str, str] = {}  # every symbolic size -> the driver's local holding it
    bind: list[str] = []
    for op in _inputs(whole_prog):
        if op.name not in ids:
            continue
        for k, d in enumerate(op.shape):
            if isinstance(d, str) and d not in sizes:
                sizes[d] = names.fresh(f"N_{_ident(d)}")
                bind.append(f"    {sizes[d]} = {ids[op.name]}.shape[{k}]")
    part_ids = {p.name: names.fresh(f"part{k}") for k, p in enumerate(split.parts)}
    local = {**ids, **part_ids}
    chunk_name, finish_name = names.fresh(f"{name}_chunk"), names.fresh(f"{name}_finish")
    chunk_in = [op.name for op in _inputs(split.chunk)]
    finish_in = [op.name for op in _inputs(split.finish)]
    chunk_out = [*(p.name for p in split.parts), *split.rows]
    rows_of = {d: names.fresh(f"m_{_ident(d)}") for d in split.batch}  # a chunk's rows
    chunk_fn = DenseFunction(
        split.chunk,
        chunk_name,
        {n: local[n] for n in chunk_in},
        dtype,
        names,
        given={**sizes, **rows_of},
        counts=sizes,
    )
    lines = [*chunk_fn.emit(chunk_out, parallel=False, nogil=True), "", ""]
    fin = split.finish
    direct = {}  # outputs that are a combined chunk sum as it is
    for out, at in fin.outputs.items():
        made = fin.ops[at]
        if isinstance(made, Input) and made.name in part_ids:
            direct[out] = made.name
    needs_finish = len(direct) < len(split.whole)
    if needs_finish:
        finish_fn = DenseFunction(
            fin, finish_name, {n: local[n] for n in finish_in}, dtype, names, sizes
        )
        lines += [*finish_fn.emit(list(split.whole), parallel=False), "", ""]

    lines += [f"def {name}({', '.join(ids[n] for n in order)}):"]
    lines += bind
    batch = [sizes[d] for d in split.batch]
    largest = f"max({', '.join(batch)})" if len(batch) > 1 else batch[0]
    lines.append(
        f"    chunks = min({MAX_CHUNKS}, max(1, ({largest} + {ROWS_PER_CHUNK - 1}) // "
        f"{ROWS_PER_CHUNK}))"
    )
    lines += ["", "    def run(c):"]
    cuts = {}
    for d in split.batch:
        lo, hi = names.fresh(f"lo_{_ident(d)}"), names.fresh(f"hi_{_ident(d)}")
        cuts[d] = (lo, hi)
        n = sizes[d]
        lines.append(f"        {lo}, {hi} = c * {n} // chunks, (c + 1) * {n} // chunks")
    args = []
    for op in _inputs(split.chunk):
        first = op.shape[0] if op.shape else None
        if isinstance(first, str) and first in cuts:
            lo, hi = cuts[first]
            args.append(f"{local[op.name]}[{lo}:{hi}]")
        else:
            args.append(local[op.name])
    value = {n: n for n in sizes.values()}  # a size parameter -> what the driver passes
    value.update({rows_of[d]: f"{cuts[d][1]} - {cuts[d][0]}" for d in split.batch})
    args += [value[n] for n in chunk_fn.size_params]
    lines.append(f"        return {chunk_name}({', '.join(args)})")
    lines += ["", "    got = _run_chunks(run, chunks)"]
    for k, p in enumerate(split.parts):  # in chunk order: the same sums on every machine
        total = part_ids[p.name]
        first = f"got[0][{k}]" if not p.shape else f"got[0][{k}].copy()"
        lines.append(f"    {total} = {first}")
        lines.append("    for r in got[1:]:")
        if p.combine == "max":
            lines.append(f"        {total} = np.maximum({total}, r[{k}])")
        else:
            lines.append(f"        {total} = {total} + r[{k}]")
    row_ids = {}
    for k, r in enumerate(split.rows, start=len(split.parts)):
        row_ids[r] = names.fresh(f"rows_{_ident(r)}")
        lines.append(f"    {row_ids[r]} = np.concatenate([r[{k}] for r in got])")
    if needs_finish:
        finish_args = [*(local[n] for n in finish_in), *finish_fn.size_params]
        lines.append(f"    done = {finish_name}({', '.join(finish_args)})")
    result = []
    for out in outputs:
        if out in row_ids:
            result.append(row_ids[out])
        elif out in direct:
            result.append(part_ids[direct[out]])
        else:
            result.append(f"done[{split.whole.index(out)}]")
    lines.append(f"    return ({''.join(r + ', ' for r in result)})")
    return lines


__all__ = ["MAX_CHUNKS", "ROWS_PER_CHUNK", "RUNNER", "print_chunked"]
