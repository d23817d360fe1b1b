"""The fixed half of every generated CuPy module: launch configuration, the device clock, graph
capture and replay, and the standalone helpers.

It is text, not code run here: ``cupy_emit`` appends it after the problem's tables (CUDA_SOURCE,
PLAN, KERNELS, CLOCK_SET, CLOCK_TICK, INITIAL, SIGNATURES, STEP, SWAPS), so a generated module
needs only CuPy and NumPy. Kernels compile once per GPU architecture, with NVRTC, to a cubin kept
beside the module file (in ritz's cache, or beside a module ``ritz build`` wrote), so a warm
start only loads a file. The module docstring it gets describes the time-loop scheme.
"""

RUNTIME = '''\
REAL = np.dtype(PLAN["dtype"]).type
HALO = PLAN["halo"]
# float32 points are cheap: each thread of a stencil kernel takes two rows of the first axis
POINTS_PER_THREAD = 2 if PLAN["dtype"] == "float32" else 1
GRAPH_PAIRS = 32  # the largest graph holds 2 * GRAPH_PAIRS steps
GRAPH_CACHE_SIZE = 16
COMPILE_OPTIONS = ("-std=c++17",)

_kernels = {}
_clocks = {}
_capture_streams = {}
_graphs = collections.OrderedDict()
graph_status = {"enabled": True, "reason": ""}
load_status = {"how": "", "reason": ""}  # how kernels() got the binary; why not from a cubin


def kernels():
    """The compiled kernels on the current device, by name: compiled and loaded on first use,
    and so never inside a stream capture."""
    device = cupy.cuda.runtime.getDevice()
    table = _kernels.get(device)
    if table is None:
        names = (*KERNELS, CLOCK_SET, CLOCK_TICK)
        arch = str(cupy.cuda.Device(device).compute_capability)
        cubin = _cubin_path(arch)
        table = None
        if cubin is not None and cubin.exists():
            try:
                table = _load_cubin(cubin, names)
                load_status.update(how="loaded " + cubin.name, reason="")
            except Exception:  # unreadable (truncated, from a newer toolkit): compiled again below
                table = None
        if cubin is not None and table is None:
            try:
                _write_cubin(cubin, _nvrtc_cubin(arch))
                table = _load_cubin(cubin, names)
                load_status.update(how="compiled to " + cubin.name, reason="")
            except Exception as exc:  # NVRTC too old for this GPU, read-only folder, ...
                load_status.update(how="", reason=f"{type(exc).__name__}: {exc}")
        if table is None:  # CuPy compiles (and caches in its own folder)
            module = cupy.RawModule(code=CUDA_SOURCE, options=COMPILE_OPTIONS)
            table = {name: module.get_function(name) for name in names}
            load_status["how"] = "compiled by CuPy"
        _kernels[device] = table
    return table


def _cubin_path(arch):
    """Where this module keeps its kernels' binary for GPUs of compute capability ``arch``:
    beside the module file, named for the source, the options and the architecture."""
    here = globals().get("__file__")
    if not here:
        return None
    key = hashlib.sha256(repr((CUDA_SOURCE, COMPILE_OPTIONS)).encode()).hexdigest()[:16]
    here = pathlib.Path(here)
    return here.with_name(f"{here.stem}.{key}.sm_{arch}.cubin")


def _load_cubin(path, names):
    module = cupy.RawModule(path=str(path))
    return {name: module.get_function(name) for name in names}


def _nvrtc_cubin(arch):
    """The CUDA source compiled by NVRTC to a cubin for sm_``arch``."""
    nvrtc = cupy.cuda.nvrtc
    program = nvrtc.createProgram(CUDA_SOURCE, "ritz_kernels.cu", (), ())
    try:
        try:
            nvrtc.compileProgram(program, (*COMPILE_OPTIONS, f"-arch=sm_{arch}"))
        except nvrtc.NVRTCError as exc:
            raise RuntimeError(f"{exc}: {nvrtc.getProgramLog(program)}") from None
        return nvrtc.getCUBIN(program)
    finally:
        nvrtc.destroyProgram(program)


def _write_cubin(path, data):
    """Write beside the module, atomically: a concurrent reader sees the whole file or none."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _clock(stream):
    """The [t0, steps taken] device array of ``stream`` (one per stream: no races between them)."""
    key = (cupy.cuda.runtime.getDevice(), stream.ptr)
    clock = _clocks.get(key)
    if clock is None:
        clock = _clocks[key] = cupy.zeros(2, dtype=np.float64)
    return clock


def _cdiv(a, b):
    return -(-a // b)


def _config(name, sizes):
    """(grid, block) of one kernel for ``sizes`` interior cells per axis."""
    kind, axis, _ = SIGNATURES[name]
    nd = len(sizes)
    if kind in ("stencil", "init"):
        ppt = POINTS_PER_THREAD
        if nd == 1:
            return (min(_cdiv(sizes[0], 256 * ppt), 1 << 20), 1, 1), (256, 1, 1)
        if nd == 2:
            return (_cdiv(sizes[1], 32), min(_cdiv(sizes[0], 8 * ppt), 65535), 1), (32, 8, 1)
        if _cdiv(sizes[1], 4) > 65535:
            raise ValueError(f"axis 1 has too many cells for one launch: {sizes[1]}")
        grid = (_cdiv(sizes[2], 32), _cdiv(sizes[1], 4), min(_cdiv(sizes[0], 2 * ppt), 65535))
        return grid, (32, 4, 2)
    count = 1  # ghost and wrap kernels: one thread per point of the face
    for b, n in enumerate(sizes):
        if b != axis:
            count *= n + 2 * HALO if b < axis else n
    return (max(1, min(_cdiv(count, 128), 4096)), 1, 1), (128, 1, 1)


def _arguments(name, arrays, values, clock, tc, sizes):
    args = list(arrays)
    for s in SIGNATURES[name][2]:
        if s == "t":
            args += [clock, np.float64(tc)]
        else:
            args.append(REAL(values[s]))
    args += [np.int32(n) for n in sizes]
    return tuple(args)


def _check(arrays, what):
    first = arrays[0]
    for a in arrays:
        if (
            not isinstance(a, cupy.ndarray)
            or a.dtype != np.dtype(PLAN["dtype"])
            or a.ndim != PLAN["ndim"]
            or a.shape != first.shape
            or not a.flags.c_contiguous
        ):
            raise ValueError(
                f"{what}: expected C-contiguous cupy arrays of dtype {PLAN['dtype']} and one "
                f"padded shape ({PLAN['ndim']}-D, {HALO} ghost layer(s) per face)"
            )
    return tuple(int(n) - 2 * HALO for n in first.shape)


def _swap(buffers):
    out = list(buffers)
    for i, j in SWAPS:
        out[i], out[j] = out[j], out[i]
    return out


def _step_launches(table, buffers, values, clock, sizes):
    """One step as (kernel, grid, block, args) launches, the clock tick last."""
    out = []
    for name, which, c in STEP:
        grid, block = _config(name, sizes)
        args = _arguments(name, [buffers[i] for i in which], values, clock, c, sizes)
        out.append((table[name], grid, block, args))
    out.append((table[CLOCK_TICK], (1, 1, 1), (1, 1, 1), (clock,)))
    return out


def _pair_launches(table, buffers, values, clock, sizes):
    """Two steps: after them every buffer is back in its role."""
    first = _step_launches(table, buffers, values, clock, sizes)
    return first + _step_launches(table, _swap(buffers), values, clock, sizes)


def _launch_pairs(launches, pairs):
    for _ in range(pairs):
        for kernel, grid, block, args in launches:
            kernel(grid, block, args)


def _capture(launches, pairs):
    """A CUDA graph of ``pairs`` pairs of steps, or None where stream capture fails."""
    if not graph_status["enabled"]:
        return None
    device = cupy.cuda.runtime.getDevice()
    stream = _capture_streams.get(device)
    try:
        if stream is None:
            stream = _capture_streams[device] = cupy.cuda.Stream(non_blocking=True)
        with stream:
            stream.begin_capture()
            try:
                _launch_pairs(launches, pairs)
            finally:
                graph = stream.end_capture()
    except Exception as exc:  # no capture here (driver, platform, CuPy version): launch instead
        graph_status.update(enabled=False, reason=f"{type(exc).__name__}: {exc}")
        return None
    return graph


def _graph(launches, key, pairs):
    graph = _graphs.get((key, pairs))
    if graph is not None:
        _graphs.move_to_end((key, pairs))
        return graph
    graph = _capture(launches, pairs)
    if graph is not None:
        _graphs[(key, pairs)] = graph
        while len(_graphs) > GRAPH_CACHE_SIZE:
            _graphs.popitem(last=False)
    return graph


def _blocks(pairs):
    """Graph sizes (in pairs of steps) adding up to ``pairs``: full graphs, then powers of two,
    so that few distinct graphs are ever captured."""
    out = [GRAPH_PAIRS] * (pairs // GRAPH_PAIRS)
    rest, bit = pairs % GRAPH_PAIRS, GRAPH_PAIRS
    while rest:
        bit //= 2
        if rest >= bit:
            out.append(bit)
            rest -= bit
    return out


def initial(*args):
    """Initial values of the fields (padded device arrays), then the scalars in PLAN order."""
    nf = len(PLAN["fields"])
    if len(args) != nf + len(PLAN["scalars"]):
        raise TypeError(f"initial takes {nf} fields and {len(PLAN['scalars'])} scalars")
    fields = list(args[:nf])
    values = dict(zip(PLAN["scalars"], args[nf:]))
    sizes = _check(fields, "initial")
    table = kernels()
    clock = _clock(cupy.cuda.get_current_stream())
    table[CLOCK_SET]((1, 1, 1), (1, 1, 1), (clock, np.float64(values["t"])))
    grid, block = _config(INITIAL, sizes)
    table[INITIAL](grid, block, _arguments(INITIAL, fields, values, clock, 0.0, sizes))


def advance(*args):
    """``nsteps`` steps from time t (the 't' scalar) without waiting for the device; returns the
    buffers in their new roles, in PLAN['buffers'] order."""
    nb = len(PLAN["buffers"])
    if len(args) != nb + len(PLAN["scalars"]) + 1:
        raise TypeError(f"advance takes {nb} buffers, {len(PLAN['scalars'])} scalars and nsteps")
    buffers = list(args[:nb])
    values = dict(zip(PLAN["scalars"], args[nb:-1]))
    nsteps = int(args[-1])
    sizes = _check(buffers, "advance")
    if nsteps <= 0:
        return tuple(buffers)
    table = kernels()
    clock = _clock(cupy.cuda.get_current_stream())
    table[CLOCK_SET]((1, 1, 1), (1, 1, 1), (clock, np.float64(values["t"])))
    pairs, odd = divmod(nsteps, 2)
    if pairs:
        launches = _pair_launches(table, buffers, values, clock, sizes)
        key = (
            cupy.cuda.runtime.getDevice(),
            tuple(b.data.ptr for b in buffers),
            clock.data.ptr,
            tuple(float(v) for s, v in values.items() if s != "t"),
            sizes,
        )
        for size in _blocks(pairs):
            graph = _graph(launches, key, size)
            if graph is None:
                _launch_pairs(launches, size)
            else:
                graph.launch()
    if odd:
        for kernel, grid, block, a in _step_launches(table, buffers, values, clock, sizes):
            kernel(grid, block, a)
        buffers = _swap(buffers)
    return tuple(buffers)


def _run_entry(name, args):
    """Run the named launch list of ENTRIES (a steady solver's residual or jvp) once."""
    nb = len(PLAN["buffers"])
    if len(args) != nb + len(PLAN["scalars"]):
        raise TypeError(f"{name} takes {nb} buffers and {len(PLAN['scalars'])} scalars")
    buffers = list(args[:nb])
    values = dict(zip(PLAN["scalars"], args[nb:]))
    sizes = _check(buffers, name)
    table = kernels()
    clock = _clock(cupy.cuda.get_current_stream())
    table[CLOCK_SET]((1, 1, 1), (1, 1, 1), (clock, np.float64(values["t"])))
    for kernel, which, c in ENTRIES[name]:
        grid, block = _config(kernel, sizes)
        table[kernel](grid, block, _arguments(kernel, [buffers[i] for i in which], values, clock,
                                              c, sizes))


def allocate(cells):
    """Zeroed padded device buffers for a grid of ``cells`` (one int per axis), by name."""
    shape = tuple(int(n) + 2 * HALO for n in cells)
    return {b: cupy.zeros(shape, dtype=PLAN["dtype"]) for b in PLAN["buffers"]}


def scalars(params, bounds, cells, t, dt):
    """The scalar arguments of every kernel, in order."""
    values = {"p_" + k: v for k, v in params.items()}
    values.update(t=t, dt=dt)
    for a, ((lo, hi), n) in enumerate(zip(bounds, cells)):
        values[f"lo{a}"] = lo
        values[f"h{a}"] = (hi - lo) / n
    # in the module's dtype: a float32 kernel given Python floats would compute in float64
    real = np.dtype(PLAN["dtype"]).type
    return tuple(real(values[s]) for s in PLAN["scalars"])


def solve(params, bounds, cells, t0, t1, dt):
    """Initialise and integrate from t0 to t1 with steps of at most dt; returns the fields as
    NumPy arrays (the only copies to the host)."""
    bufs = allocate(cells)
    nsteps = max(1, int(np.ceil((t1 - t0) / dt - 1e-9)))
    dt = (t1 - t0) / nsteps
    arrays = [bufs[b] for b in PLAN["buffers"]]
    initial(*[bufs[f] for f in PLAN["fields"]], *scalars(params, bounds, cells, t0, dt))
    arrays = advance(*arrays, *scalars(params, bounds, cells, t0, dt), nsteps)
    inner = tuple(slice(HALO, -HALO) for _ in cells)
    return {f: cupy.asnumpy(arrays[i][inner]) for i, f in enumerate(PLAN["fields"])}'''
