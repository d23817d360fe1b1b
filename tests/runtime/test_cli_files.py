"""The files the command line reads and writes: program files that are not UTF-8 text (or
start with a byte-order mark), control characters in messages, output paths checked before
anything runs, complex data, and how numbers are printed. All fast: nothing here solves."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner, Result

from ritz.dsl import RitzError, RuntimeInputError, load_file
from ritz.runtime.cli import main
from ritz.runtime.cli_nets import run_bilevel
from ritz.runtime.networks import _array

ROOT = Path(__file__).resolve().parents[2]
HEAT = ROOT / "examples" / "heat1d.dsl"


def invoke(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_diagnostic(result: Result, code: str, *parts: str) -> None:
    assert result.exit_code == 1, result.output
    assert f"error[{code}]" in result.stderr and "Traceback" not in result.output, result.output
    for part in parts:
        assert part in result.stderr, result.stderr


# -- program files ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "where"),
    [(b"\x89PNG\r\n\x1a\n\x00\x00", ":1:1:"), (b"pde a {\n  space x \xff\xfe\n}\n", ":2:11:")],
    ids=["binary", "latin1"],
)
def test_file_that_is_not_utf8(tmp_path: Path, data: bytes, where: str) -> None:
    path = tmp_path / "p.dsl"
    path.write_bytes(data)
    result = invoke("check", path)
    assert_diagnostic(result, "R126", f"{path}{where}", "not UTF-8 text", "hint:")


def test_byte_order_mark_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.dsl"
    path.write_bytes(b"\xef\xbb\xbf" + HEAT.read_bytes().replace(b"\n", b"\r\n"))
    assert list(load_file(path).problems) == ["heat1d"]
    path.write_bytes(b"\xef\xbb\xbfpde a {\r\n    oops\r\n}\r\n")  # positions as without them
    assert_diagnostic(invoke("check", path), "R100", f"{path}:2:")


def test_imported_files_are_read_alike(tmp_path: Path) -> None:
    """An imported file may start with a byte-order mark; one that is not UTF-8 is R126 at
    its own bad byte."""
    (tmp_path / "lib.dsl").write_bytes(b"\xef\xbb\xbfconst k = 2\r\n")
    main_file = tmp_path / "main.dsl"
    main_file.write_text('import "lib.dsl" as m\nconst c = 2 * m.k\n')
    assert invoke("check", main_file).exit_code == 0
    (tmp_path / "lib.dsl").write_bytes(b"const k = \xff\n")
    lib = tmp_path / "lib.dsl"
    assert_diagnostic(invoke("check", main_file), "R126", f"{lib}:1:11", "not UTF-8 text")


def test_control_characters_are_shown_escaped(tmp_path: Path) -> None:
    path = tmp_path / "nul.dsl"
    path.write_bytes(b"pde a {\n    space x in [0, 1]\x00\x1b[31m\n}\n")
    result = invoke("check", path)
    assert_diagnostic(result, "R101", "'\\x00'", f"{path}:2:22:")
    assert "\x00" not in result.stderr and "\x1b" not in result.stderr
    source, caret = result.stderr.splitlines()[1:3]
    assert source.endswith("1]??[31m") and caret.index("^") == source.index("?")
    # the Python API renders the same text: str(err) is what the command line prints
    with pytest.raises(RitzError) as err:
        load_file(path)
    assert str(err.value) == result.stderr.rstrip("\n")


# -- output paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "outdir", ["file/sub", "/proc/ritz_x", "/dev/null/x"], ids=["under_file", "proc", "dev_null"]
)
def test_build_into_an_unwritable_place(tmp_path: Path, outdir: str) -> None:
    (tmp_path / "file").write_text("")
    target = tmp_path / outdir if outdir.startswith("file") else Path(outdir)
    assert_diagnostic(invoke("build", HEAT, "-o", target), "R527", "hint:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_build_creates_missing_directories(tmp_path: Path) -> None:
    result = invoke("build", HEAT, "-o", tmp_path / "a" / "b")
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "a" / "b").iterdir()] == ["heat1d.py"]
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b"]  # no staging left behind


@pytest.mark.parametrize(
    ("option", "path", "code"),
    [
        ("--out", "/proc/x.npz", "R527"),
        ("--out", "missing/x.npz", "R527"),
        ("--out", "file/x.npz", "R527"),
        ("--out", "x.data", "R528"),
        ("--out", "prog.dsl", "R528"),
        ("--plot", "/proc/x.png", "R527"),
        ("--plot", "x.pdf", "R528"),
    ],
)
def test_run_checks_outputs_before_solving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str, path: str, code: str
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("file").write_text("")
    Path("prog.dsl").write_text("pde broken {\n")  # checked first: no R1xx for this
    assert_diagnostic(invoke("run", "prog.dsl", "--no-progress", option, path), code, option)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "prog.dsl"]


def test_run_refuses_to_overwrite_its_program(tmp_path: Path) -> None:
    program = tmp_path / "prog.npz"  # a program file may have any name
    program.write_text(HEAT.read_text())
    result = invoke("run", program, "--out", tmp_path / "." / "prog.npz")
    assert_diagnostic(result, "R528", "would be overwritten")
    assert program.read_text() == HEAT.read_text()


# -- data and printing -----------------------------------------------------------------------------


def test_complex_data_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeInputError, match="complex") as err:
        _array("x", np.ones(3, dtype=complex), "float32")
    assert err.value.code == "R533"
    np.save(tmp_path / "x.npy", np.ones((8, 1), dtype=complex))
    np.save(tmp_path / "y.npy", np.ones((8, 1)))
    fit = ROOT / "examples" / "fit_sine.dsl"
    data = [f"--data=x={tmp_path / 'x.npy'}", f"--data=y={tmp_path / 'y.npy'}"]
    assert_diagnostic(invoke("run", fit, "--no-progress", *data), "R533", "'x' holds complex")


def test_data_files_numpy_cannot_read(tmp_path: Path) -> None:
    """A --data file that is no .npy or .npz (text, empty, a damaged archive) or holds Python
    objects is R526 in ritz's words: NumPy's own message pointed at allow_pickle (which would
    run code from the file), and an empty file, an object array in an .npz file and a damaged
    zip archive were R900."""
    (tmp_path / "text.npy").write_text("garbage\n")
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04garbage")
    objects = np.array([{"a": 1}, None], dtype=object)
    np.save(tmp_path / "obj.npy", objects, allow_pickle=True)
    np.savez(tmp_path / "obj.npz", x=objects)
    np.save(tmp_path / "y.npy", np.ones((8, 1)))
    fit = ROOT / "examples" / "fit_sine.dsl"
    cases = [
        ("text.npy", "it is not a .npy or .npz file, the formats ritz reads", "numpy.loadtxt"),
        ("empty.npy", "the file is empty", "give a .npy file"),
        ("bad.npz", "a damaged .npz file", "give a .npy file"),
        ("obj.npy", "it holds an array of Python objects", "save an array of numbers"),
        ("obj.npz", "it holds an array of Python objects", "save an array of numbers"),
    ]
    for name, why, hint in cases:
        data = [f"--data=x={tmp_path / name}", f"--data=y={tmp_path / 'y.npy'}"]
        result = invoke("run", fit, "--no-progress", *data)
        assert_diagnostic(result, "R526", f"for data 'x': {why}", hint)
        assert "pickle" not in result.output, result.output


def test_bilevel_summary_prints_no_negative_zero(capsys: pytest.CaptureFixture[str]) -> None:
    res = SimpleNamespace(
        history=np.array([1.0, -0.0]),
        info={"iterations": 1, "outer": "L-BFGS-B", "lower_solves": 2},
        upper={"a": -0.0},
        lower={"b": np.float64(-0.0)},
        hypergrad={"a": -0.0},
    )
    run_bilevel(SimpleNamespace(name="blk", solve=lambda **kw: res), {}, {}, None)
    printed = capsys.readouterr().out
    assert "-0" not in printed and "objective 1 -> 0 (" in printed
    assert "upper a = 0\n" in printed and "lower b = 0\n" in printed and "d a = 0\n" in printed


def test_written_files_have_the_usual_mode(tmp_path: Path) -> None:
    """Written through a temporary file, outputs still get 0666 less the umask (a new file) or
    the mode of the file they replace, not the temporary file's private 0600."""
    import os

    from ritz.runtime.cache import write_atomic

    old = os.umask(0o022)
    try:
        new = tmp_path / "new.txt"
        write_atomic(new, "a")
        assert new.stat().st_mode & 0o777 == 0o644
        kept = tmp_path / "kept.txt"
        kept.write_text("old")
        kept.chmod(0o640)
        write_atomic(kept, "b")
        assert kept.stat().st_mode & 0o777 == 0o640 and kept.read_text() == "b"
    finally:
        os.umask(old)
