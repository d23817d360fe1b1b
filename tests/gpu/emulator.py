"""A CPU stand-in for CuPy that runs the generated CUDA kernels themselves.

CI has no GPU, but it has a C++ compiler. The CUDA source ritz generates uses no shared memory,
no warp functions and no synchronisation, so every kernel is a plain function of the thread's
``blockIdx``/``threadIdx``: compiled as C++ with those four names as globals, a launch runs every
thread of the grid one after another. Blocks run in reverse order and threads in order within a
block, so a kernel that depended on one block finishing before another would disagree with the
Numba reference.

What this checks that nvcc alone cannot: the kernel bodies compute what the Numba kernels
compute (indexing, strides, ghost layers, stage coefficients, the device clock), the launch
configuration covers every point, and every argument matches the kernel's C signature exactly
(a float64 passed where a kernel takes ``float`` is garbage on a GPU, and an exact type check is
the only place it shows without one). Device arrays carry red zones of a sentinel value on both
sides: a write outside an array fails the launch, a read outside it poisons the results.

The module object is installed as ``cupy`` (``install``); the runtime and the generated modules
cannot tell it from CuPy for the parts of the API they use: arrays, RawModule (from source, or
from a "cubin" file this stand-in's NVRTC wrote), streams with graph capture, and the device
queries.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import shutil
import subprocess
import sys
import types
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

CXX = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
SIGNATURE = re.compile(r'extern "C" __global__ void (\w+)\(([^)]*)\)')
C_TYPES = {"double": np.float64, "float": np.float32, "int": np.int32, "long long": np.int64}
CTYPES = {
    "double": ctypes.c_double,
    "float": ctypes.c_float,
    "int": ctypes.c_int,
    "long long": ctypes.c_longlong,
}
REDZONE = 64  # elements of sentinel on each side of every device array
SENTINEL = {np.dtype(np.float64): 1.2345678e300, np.dtype(np.float32): 1.2345678e30}
CUBIN_MAGIC = b"RITZ-EMULATED-CUBIN\n"

PRELUDE = r"""
#include <math.h>
#include <stdint.h>
struct ritz_emu_dim3 { unsigned int x, y, z; };
static ritz_emu_dim3 threadIdx, blockIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
"""


class EmulatorError(AssertionError):
    """A launch that would be wrong on a GPU (bad argument, out-of-bounds write)."""


def _parameters(params: str) -> list[tuple[str, bool, str]]:
    """(base C type, is pointer, name) for each parameter of a kernel signature."""
    out = []
    for p in params.split(","):
        words = p.replace("*", " * ").split()
        name = words[-1]
        pointer = "*" in words
        base = " ".join(w for w in words[:-1] if w not in ("const", "__restrict__", "*"))
        if base not in C_TYPES:
            raise EmulatorError(f"parameter '{p.strip()}': type '{base}' is not emulated")
        out.append((base, pointer, name))
    return out


def _wrapper(name: str, params: list[tuple[str, bool, str]]) -> str:
    """A C entry that runs every thread of a launch of kernel ``name``."""
    unpack = ", ".join(
        f"*({base}{'*' if pointer else ''}*)a[{i}]" for i, (base, pointer, _) in enumerate(params)
    )
    return f"""
extern "C" void ritz_emu_launch_{name}(const unsigned int* g, const unsigned int* b, void** a)
{{
    gridDim = {{g[0], g[1], g[2]}};
    blockDim = {{b[0], b[1], b[2]}};
    for (long long k = (long long)g[0] * g[1] * g[2] - 1; k >= 0; --k) {{
        blockIdx = {{(unsigned)(k % g[0]), (unsigned)(k / g[0] % g[1]),
                     (unsigned)(k / ((long long)g[0] * g[1]))}};
        for (unsigned int z = 0; z < b[2]; ++z)
            for (unsigned int y = 0; y < b[1]; ++y)
                for (unsigned int x = 0; x < b[0]; ++x) {{
                    threadIdx = {{x, y, z}};
                    {name}({unpack});
                }}
    }}
}}
"""


class CompiledKernels:
    """A translation unit of CUDA kernels compiled for the host, by kernel name."""

    def __init__(self, source: str, build_dir: Path) -> None:
        if CXX is None:
            raise EmulatorError("no C++ compiler on PATH: CUDA kernels cannot be emulated")
        self.signatures = {name: _parameters(params) for name, params in SIGNATURE.findall(source)}
        unit = PRELUDE + '#line 1 "kernels.cu"\n' + source + "\n"
        unit += "".join(_wrapper(n, p) for n, p in self.signatures.items())
        digest = hashlib.sha256(unit.encode()).hexdigest()[:24]
        build_dir.mkdir(parents=True, exist_ok=True)
        lib = build_dir / f"emu_{digest}.so"
        if not lib.exists():
            cpp = build_dir / f"emu_{digest}.cpp"
            cpp.write_text(unit)
            tmp = lib.with_suffix(f".{id(self)}.tmp")
            # -ffp-contract=off: no fused multiply-adds, so float64 rounding matches Numba's
            cmd = [CXX, "-std=c++17", "-O1", "-ffp-contract=off", "-shared", "-fPIC"]
            proc = subprocess.run(
                [*cmd, str(cpp), "-o", str(tmp)], capture_output=True, text=True, timeout=300
            )
            if proc.returncode != 0:
                raise EmulatorError(f"the CUDA source does not compile as C++:\n{proc.stderr}")
            tmp.replace(lib)
        self.lib = ctypes.CDLL(str(lib))

    def entry(self, name: str) -> Callable:
        fn = getattr(self.lib, f"ritz_emu_launch_{name}")
        fn.restype = None
        fn.argtypes = [
            ctypes.POINTER(ctypes.c_uint),
            ctypes.POINTER(ctypes.c_uint),
            ctypes.POINTER(ctypes.c_void_p),
        ]
        return fn


class ndarray(np.ndarray):  # the name of CuPy's array class
    """A host array standing in for a device array: ``.data.ptr`` is its address."""

    @property
    def data(self):  # type: ignore[override]
        return types.SimpleNamespace(ptr=self.__array_interface__["data"][0])


class Launch:
    """One kernel launch: checked against the C signature when it is made, run now or later."""

    def __init__(
        self, device: EmulatedCupy, name: str, entry: Callable, params, grid, block, args
    ) -> None:
        if len(grid) != 3 or len(block) != 3 or min(*grid, *block) < 1:
            raise EmulatorError(f"{name}: grid {grid} and block {block} must be 3 positive ints")
        if (
            block[0] * block[1] * block[2] > 1024
            or block[2] > 64
            or grid[1] > 65535
            or grid[2] > 65535
        ):
            raise EmulatorError(f"{name}: launch ({grid}, {block}) exceeds CUDA's limits")
        if len(args) != len(params):
            raise EmulatorError(f"{name}: {len(args)} arguments for {len(params)} parameters")
        self.device, self.name, self.entry = device, name, entry
        self.grid = (ctypes.c_uint * 3)(*grid)
        self.block = (ctypes.c_uint * 3)(*block)
        self.holders: list[Any] = []
        self.arrays: list[ndarray] = []
        self.argv = (ctypes.c_void_p * len(args))()
        for i, ((base, pointer, pname), arg) in enumerate(zip(params, args, strict=True)):
            if pointer:
                if not isinstance(arg, ndarray) or arg.dtype != C_TYPES[base]:
                    raise EmulatorError(
                        f"{name}: '{pname}' takes a device array of {base}, got "
                        f"{type(arg).__name__} {getattr(arg, 'dtype', '')}"
                    )
                if not arg.flags.c_contiguous:
                    raise EmulatorError(f"{name}: '{pname}' is not C-contiguous")
                holder = ctypes.c_void_p(arg.data.ptr)
                self.arrays.append(arg)
            else:
                if type(arg) is not C_TYPES[base]:
                    raise EmulatorError(
                        f"{name}: '{pname}' is {base} in CUDA, got {type(arg).__name__} "
                        "(pass the NumPy scalar type of the C parameter)"
                    )
                holder = CTYPES[base](arg.item())
            self.holders.append(holder)
            self.argv[i] = ctypes.addressof(holder)

    def __call__(self, check: bool = True) -> None:
        self.entry(self.grid, self.block, self.argv)
        self.device.launches += 1
        if check:
            self.check()

    def check(self) -> None:
        for a in self.arrays:
            self.device.check_redzones(a, self.name)


class Graph:
    def __init__(self, device: EmulatedCupy, launches: list[Launch]) -> None:
        self.device, self.launches = device, launches

    def launch(self, stream: Any = None) -> None:
        self.device.graph_launches += 1
        for launch in self.launches:
            launch(check=False)
        for launch in self.launches:  # red zones once per replay: a graph holds many launches
            launch.check()


class EmulatedCupy(types.ModuleType):
    """``cupy`` for one emulated device (compute capability 9.0)."""

    def __init__(self, build_dir: Path) -> None:
        super().__init__("cupy")
        self.__file__ = __file__
        self.ndarray = ndarray
        self.build_dir = build_dir
        self.recording: list[Launch] | None = None
        self.capture_fails = False
        self.nvrtc_fails = False
        self.compiled: dict[str, CompiledKernels] = {}
        self.reset_counters()
        self._allocations: weakref.WeakValueDictionary[int, np.ndarray] = (
            weakref.WeakValueDictionary()
        )
        self.cuda = self._cuda_namespace()

    def reset_counters(self) -> None:
        self.launches = self.graph_launches = self.captures = 0
        self.sources_loaded = self.cubins_loaded = self.nvrtc_compiles = 0

    # -- arrays --------------------------------------------------------------------------------
    def _allocate(self, shape: tuple[int, ...] | int, dtype: Any) -> ndarray:
        shape = (shape,) if isinstance(shape, int) else tuple(int(n) for n in shape)
        dtype = np.dtype(dtype)
        size = int(np.prod(shape))
        flat = np.empty(size + 2 * REDZONE, dtype=dtype)
        flat[:REDZONE] = flat[REDZONE + size :] = SENTINEL.get(dtype, -7)
        view = flat[REDZONE : REDZONE + size].reshape(shape).view(ndarray)
        self._allocations[view.data.ptr] = flat
        return view

    def check_redzones(self, array: ndarray, kernel: str) -> None:
        ptr = array.data.ptr
        flat = self._allocations.get(ptr)
        if flat is None:
            for start, buffer in list(self._allocations.items()):
                if start <= ptr < start + buffer.nbytes - 2 * REDZONE * buffer.itemsize:
                    flat = buffer
                    break
        if flat is None:
            raise EmulatorError(f"{kernel}: an argument is not a device allocation")
        sentinel = SENTINEL.get(flat.dtype, -7)
        if not (np.all(flat[:REDZONE] == sentinel) and np.all(flat[-REDZONE:] == sentinel)):
            raise EmulatorError(f"{kernel}: wrote outside a device array")

    def zeros(self, shape, dtype=np.float64) -> ndarray:
        out = self._allocate(shape, dtype)
        out[...] = 0
        return out

    def empty(self, shape, dtype=np.float64) -> ndarray:
        out = self._allocate(shape, dtype)
        out[...] = np.nan if np.dtype(dtype).kind == "f" else 0
        return out

    def asarray(self, a, dtype=None) -> ndarray:
        host = np.asarray(a, dtype=dtype)
        out = self._allocate(host.shape, host.dtype)
        out[...] = host
        return out

    def asnumpy(self, a) -> np.ndarray:
        return np.array(a).view(np.ndarray)

    def isfinite(self, a) -> np.ndarray:
        """cupy.isfinite: elementwise on the device (here, on the emulated array)."""
        return np.isfinite(np.asarray(a))

    # -- modules -------------------------------------------------------------------------------
    def _kernels(self, source: str) -> CompiledKernels:
        key = hashlib.sha256(source.encode()).hexdigest()
        if key not in self.compiled:
            self.compiled[key] = CompiledKernels(source, self.build_dir)
        return self.compiled[key]

    def RawModule(
        self, code: str | None = None, options: tuple = (), path: str | None = None, **kwargs: Any
    ) -> types.SimpleNamespace:
        if (code is None) == (path is None):
            raise EmulatorError("RawModule takes code or path")
        if path is not None:
            data = Path(path).read_bytes()
            if not data.startswith(CUBIN_MAGIC):
                raise EmulatorError(f"{path} is not a cubin this emulator wrote")
            code = data[len(CUBIN_MAGIC) :].decode()
            self.cubins_loaded += 1
        else:
            self.sources_loaded += 1
        assert code is not None
        kernels = self._kernels(code)
        device = self

        def get_function(name: str) -> Callable:
            if name not in kernels.signatures:
                raise EmulatorError(f"no kernel named '{name}' in the module")
            entry, params = kernels.entry(name), kernels.signatures[name]

            def launch(grid, block, args, **kw: Any) -> None:
                call = Launch(device, name, entry, params, grid, block, args)
                if device.recording is not None:
                    device.recording.append(call)
                else:
                    call()

            return launch

        return types.SimpleNamespace(get_function=get_function)

    # -- cuda.* --------------------------------------------------------------------------------
    def _cuda_namespace(self) -> types.SimpleNamespace:
        device = self

        class Stream:
            def __init__(self, non_blocking: bool = False, null: bool = False) -> None:
                self.ptr = 0 if null else id(self)

            def __enter__(self) -> Stream:
                return self

            def __exit__(self, *exc: Any) -> None:
                return None

            def begin_capture(self, mode: Any = None) -> None:
                if device.capture_fails:
                    raise RuntimeError("stream capture is not supported here")
                device.recording = []

            def end_capture(self) -> Graph:
                launches, device.recording = device.recording or [], None
                device.captures += 1
                return Graph(device, launches)

            def synchronize(self) -> None:
                return None

        class Device:
            compute_capability = "90"

            def __init__(self, index: int = 0) -> None:
                self.id = index

            def synchronize(self) -> None:
                return None

        null = Stream(null=True)
        programs: dict[int, dict[str, Any]] = {}

        class NVRTCError(RuntimeError):
            pass

        def create_program(src: str, name: str, headers: tuple, include_names: tuple) -> int:
            handle = len(programs) + 1
            programs[handle] = {"src": src, "log": ""}
            return handle

        def compile_program(handle: int, options: tuple) -> None:
            if device.nvrtc_fails:
                programs[handle]["log"] = "nvrtc: error: invalid value for --gpu-architecture"
                raise NVRTCError("NVRTC_ERROR_INVALID_OPTION (5)")
            arch = [o for o in options if o.startswith(("-arch=", "--gpu-architecture="))]
            if arch != ["-arch=sm_90"]:
                programs[handle]["log"] = f"expected one -arch=sm_90 among {options}"
                raise NVRTCError("NVRTC_ERROR_INVALID_OPTION (5)")
            device._kernels(programs[handle]["src"])  # compile errors surface here
            device.nvrtc_compiles += 1

        nvrtc = types.SimpleNamespace(
            NVRTCError=NVRTCError,
            getVersion=lambda: (13, 0),
            createProgram=create_program,
            compileProgram=compile_program,
            getCUBIN=lambda h: CUBIN_MAGIC + programs[h]["src"].encode(),
            getProgramLog=lambda h: programs[h]["log"],
            destroyProgram=lambda h: programs.pop(h, None),
        )
        runtime = types.SimpleNamespace(getDeviceCount=lambda: 1, getDevice=lambda: 0)
        return types.SimpleNamespace(
            runtime=runtime,
            Device=Device,
            Stream=Stream,
            get_current_stream=lambda: null,
            nvrtc=nvrtc,
        )


@contextmanager
def install(device: EmulatedCupy) -> Iterator[EmulatedCupy]:
    """``import cupy`` gives ``device`` inside the block; generated CuPy modules imported
    inside it are dropped from ``sys.modules`` on both sides, so none outlives its ``cupy``."""
    saved = sys.modules.get("cupy")

    def drop_generated() -> None:
        for name in [n for n, m in sys.modules.items() if n.startswith("ritz_gen_")]:
            if getattr(sys.modules[name], "cupy", None) is not None:
                del sys.modules[name]

    drop_generated()
    sys.modules["cupy"] = device
    try:
        yield device
    finally:
        drop_generated()
        if saved is None:
            sys.modules.pop("cupy", None)
        else:
            sys.modules["cupy"] = saved
