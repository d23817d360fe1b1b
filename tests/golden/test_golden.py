"""Golden files for generated code: every example's IR after the last pass, kernel plan, Numba
source and (when the CUDA backend is present) CUDA source, compared exactly.

``pytest --update-golden`` rewrites ``tests/golden/expected``; review the diff before committing
(a refactor must leave these files unchanged or say why)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest

import ritz
from ritz.compiler.driver import VERSION, CompiledArtifact, compile_pde, fd_options
from ritz.compiler.kernels import describe
from ritz.dsl import load_file
from ritz.dsl.ast import Bilevel, PdeProblem, Train

pytestmark = pytest.mark.golden

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.dsl"))
EXPECTED = Path(__file__).resolve().parent / "expected"
LAST_PASS = "flatten"
SUFFIXES = {
    "ir": ".ir.txt",
    "plan": ".plan.txt",
    "numba": ".numba.py",
    "cuda": ".cuda.cu",
    # the group of sol.vjp: the step with its discrete adjoint (or a steady problem's Newton
    # entries with the parameter vjp)
    "adjoint-numba": ".adjoint.numba.py",
    "adjoint-cuda": ".adjoint.cuda.cu",
}

# An absolute POSIX path (``/a/b``) after a boundary, or a Windows drive path (``C:\``).
ABSOLUTE_PATH = re.compile(r"(?:^|[\s'\"(=,])/[A-Za-z_.][\w.-]*/|\b[A-Za-z]:\\")


def _cuda_source():
    """``cupy_emit.cuda_source`` if the CUDA backend exists in this checkout, else None."""
    try:
        from ritz.compiler.backends import cupy_emit
    except ImportError:
        return None
    return getattr(cupy_emit, "cuda_source", None)


def _cases() -> list[tuple[Path, str]]:
    """(example file, pde name): one case per pde block of every example."""
    cases = []
    for path in EXAMPLES:
        for name, block in load_file(path).problems.items():
            if isinstance(block, PdeProblem):
                cases.append((path, name))
    return cases


def _train_cases() -> list[tuple[Path, str]]:
    """(example file, train or bilevel block name): their generated modules."""
    return [
        (path, name)
        for path in EXAMPLES
        for name, block in load_file(path).problems.items()
        if isinstance(block, Train | Bilevel) and not getattr(block, "lower_solutions", ())
    ]


def _kind(path: Path, name: str) -> str:
    """``train`` or ``bilevel``: the middle of the golden file names of a block's module."""
    return type(load_file(path).problems[name]).__name__.lower()


# sizes for the goldens of bilevel blocks whose variables are sized by their data
GOLDEN_SIZES = {"n": 50, "m": 20, "p": 10}


def _tensor_artifact(path: Path, name: str):
    handle = ritz.load(path)[name]
    if isinstance(handle.block, Train):
        return handle.compile()[0]
    data = {
        d.name: np.zeros(tuple(GOLDEN_SIZES[str(x.value)] for x in d.shape))
        for d in handle.block.data
    }
    return handle.compile(data)[0]


CASES = _cases()
TRAIN_CASES = _train_cases()


def _stem(path: Path, name: str) -> str:
    """Golden file stem: the example's name, plus the problem's when a file holds several."""
    pdes = [c for c in CASES if c[0] == path]
    return path.stem if len(pdes) == 1 else f"{path.stem}.{name}"


@cache
def _artifact(path: Path, name: str, adjoint: bool = False) -> CompiledArtifact:
    problem = load_file(path).problems[name]
    options = fd_options(problem.solves[0] if problem.solves else None, {})
    return compile_pde(problem, options, "numba", dump_after=(LAST_PASS,), adjoint=adjoint)


def kinds_of(path: Path, name: str) -> list[str]:
    return list(SUFFIXES)


def generate(path: Path, name: str, kind: str) -> str:
    """The generated text of one kind for one problem (what the golden file holds)."""
    if kind.startswith("adjoint"):
        art = _artifact(path, name, adjoint=True)
        if kind == "adjoint-numba":
            return art.source
        cuda_source = _cuda_source()
        assert cuda_source is not None
        return cuda_source(art.group, VERSION)
    art = _artifact(path, name)
    if kind == "ir":
        return art.dumps[LAST_PASS]
    if kind == "plan":
        return describe(art.group)
    if kind == "numba":
        return art.source
    cuda_source = _cuda_source()
    assert cuda_source is not None
    return cuda_source(art.group, VERSION)


def available_kinds(path: Path, name: str) -> list[str]:
    return [k for k in kinds_of(path, name) if "cuda" not in k or _cuda_source() is not None]


def _params() -> list:
    params = []
    for path, name in CASES:
        for kind in kinds_of(path, name):
            marks = []
            if "cuda" in kind and _cuda_source() is None:
                marks.append(
                    pytest.mark.skip(
                        reason="CUDA backend (compiler.backends.cupy_emit.cuda_source) not present"
                    )
                )
            ident = f"{_stem(path, name)}-{kind}"
            params.append(pytest.param(path, name, kind, marks=marks, id=ident))
    return params


def test_every_example_has_a_case() -> None:
    assert EXAMPLES, "no examples found"
    assert {p for p, _ in CASES} | {p for p, _ in TRAIN_CASES} == set(EXAMPLES)


@pytest.mark.parametrize(
    ("path", "name", "suffix"),
    [(p, n, s) for p, n in TRAIN_CASES for s in (".numba.py", ".ir.txt")],
    ids=lambda v: v.stem if isinstance(v, Path) else str(v),
)
def test_golden_train(path: Path, name: str, suffix: str, update_golden: bool) -> None:
    """A train block's module (loss, loss_and_grad with the derived backward, forward, the
    training loops) and the IR of each entry, exactly."""
    art = _tensor_artifact(path, name)
    text = (
        art.source
        if suffix.endswith(".py")
        else "".join(f"# {entry}\n{dump}\n" for entry, dump in art.dumps.items())
    )
    assert not ABSOLUTE_PATH.search(text), ABSOLUTE_PATH.search(text)
    assert str(ROOT) not in text and str(Path.home()) not in text
    target = EXPECTED / f"{path.stem}.{name}.{_kind(path, name)}{suffix}"
    if update_golden:
        target.write_text(text)
    assert target.exists(), f"no golden file {target.name}: run pytest --update-golden"
    assert text == target.read_text(), f"{target.name} differs: review, then --update-golden"


@pytest.mark.parametrize(("path", "name", "kind"), _params())
def test_golden(path: Path, name: str, kind: str, update_golden: bool) -> None:
    text = generate(path, name, kind)
    assert not ABSOLUTE_PATH.search(text), ABSOLUTE_PATH.search(text)
    assert str(ROOT) not in text and str(Path.home()) not in text
    target = EXPECTED / (_stem(path, name) + SUFFIXES[kind])
    if update_golden:
        EXPECTED.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    if not target.exists():
        pytest.fail(f"missing {target.name}: run pytest --update-golden and review the diff")
    expected = target.read_text(encoding="utf-8")
    assert text == expected, (
        f"{target.name} differs from the compiler's output; if the change is intended, "
        "run pytest --update-golden and review the diff"
    )


def test_numba_header_names_the_file_by_base_name() -> None:
    path, name = CASES[0]
    text = generate(path, name, "numba")
    assert f"from {path.name} (source sha256 " in text
    assert f"# {path.name}:" in text


def test_no_stray_golden_files() -> None:
    """Every file under expected/ belongs to an example (renamed examples leave no orphans)."""
    wanted = {_stem(p, n) + SUFFIXES[k] for p, n in CASES for k in kinds_of(p, n)}
    wanted |= {
        f"{p.stem}.{n}.{_kind(p, n)}{s}" for p, n in TRAIN_CASES for s in (".numba.py", ".ir.txt")
    }
    present = {f.name for f in EXPECTED.iterdir()} if EXPECTED.exists() else set()
    assert present <= wanted, sorted(present - wanted)


_DIGESTS = """
import hashlib, json, sys
sys.path.insert(0, {here!r})
import test_golden as g
out = {{}}
for path, name in g.CASES:
    for kind in g.available_kinds(path, name):
        text = g.generate(path, name, kind)
        out[f"{{path.stem}}.{{name}}.{{kind}}"] = hashlib.sha256(text.encode()).hexdigest()
print(json.dumps(out))
"""


@pytest.mark.parametrize("seed", ["0", "12345"])
def test_generation_is_deterministic(seed: str) -> None:
    """A fresh interpreter with another hash seed prints byte-identical code (no set order,
    id() or time leaks into the output)."""
    here = str(Path(__file__).resolve().parent)
    env = {**os.environ, "PYTHONHASHSEED": seed}
    proc = subprocess.run(
        [sys.executable, "-c", _DIGESTS.format(here=here)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = {
        f"{path.stem}.{name}.{kind}": hashlib.sha256(
            generate(path, name, kind).encode()
        ).hexdigest()
        for path, name in CASES
        for kind in available_kinds(path, name)
    }
    assert theirs == ours
