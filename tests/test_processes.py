"""On-disk copies of cell modules: real files, real .pyc, real spawned processes."""

from __future__ import annotations

import concurrent.futures
import importlib.util
import inspect
import marshal
import multiprocessing
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from importlib.machinery import SourceFileLoader
from pathlib import Path

import pytest
from helpers import HANG_GUARD, define, run_python

from ipyexecmod.lasting import LastingStore
from ipyexecmod.pyc import check_source, is_sound_hash_pyc, read_header
from ipyexecmod.store import CellStore, StoreError

GEO = """\
def area(r):
    return 3 * r * r


class Point:
    def __init__(self, x):
        self.x = x

    def twice(self):
        return 2 * self.x
"""

SPAWN = multiprocessing.get_context("spawn")


def import_value(directory: str) -> subprocess.CompletedProcess:
    """``victim.VALUE``, imported from ``directory`` in a fresh interpreter."""
    code = f"import sys; sys.path.insert(0, {directory!r}); import victim; print(victim.VALUE)"
    return run_python(code)


def test_on_disk_copy_is_a_real_file_and_checked_hash_pyc(ip, unique):
    name = unique("geo")
    module = define(ip, name, GEO)
    path, pyc = Path(module.__file__), Path(module.__cached__)
    assert path.name == f"{name}.py" and path.read_text() == GEO
    assert str(path.parent) in sys.path
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for written in (path, pyc, pyc.parent):
        assert stat.S_IMODE(written.stat().st_mode) & 0o022 == 0  # not group/world-writable
    header = read_header(pyc)
    assert header.invalidation == "checked hash" and header.for_this_python
    assert str(check_source(header, str(path))) == "yes: the source's hash matches"
    namespace: dict = {}
    exec(marshal.loads(pyc.read_bytes()[16:]), namespace)
    assert namespace["area"](2) == 12
    # tracebacks name the real file: importing the .pyc, importlib gives its code the name of
    # the source beside it; here, with the version's number
    code = SourceFileLoader(name, str(path)).get_code(name)
    nested = [const for const in code.co_consts if hasattr(const, "co_filename")]
    assert nested and {code.co_filename, *(c.co_filename for c in nested)} == {str(path)}
    assert module.area.__code__.co_filename == f"{path}@1"


def test_dotted_names_become_package_directories(ip, unique):
    package = unique("pkg")
    leaf = define(ip, f"{package}.leaf", "X = 1\n")
    root = Path(leaf.__file__).parent
    assert (root / "__init__.py").read_text() == ""
    assert root.name == package and Path(leaf.__file__).name == "leaf.py"
    parent = define(ip, package, "from . import leaf\nY = leaf.X + 1\n")
    assert parent.__file__ == str(root / "__init__.py")
    assert (root / "__init__.py").read_text().startswith("from . import leaf")


def test_a_module_that_becomes_a_package_moves_on_disk(ip, unique):
    name = unique()
    module = define(ip, name, "X = 1\n")
    old = Path(module.__file__)
    define(ip, f"{name}.child", "Y = 2\n")
    assert module.__file__ == str(old.with_suffix("") / "__init__.py")
    assert not old.exists() and Path(module.__file__).read_text() == "X = 1\n"


def test_redefinition_rewrites_and_failure_leaves_the_files(ip, unique, capsys):
    name = unique("geo")
    module = define(ip, name, GEO)
    define(ip, name, GEO.replace("3 * r", "4 * r"))
    path = Path(module.__file__)
    assert "4 * r" in path.read_text()
    result = ip.run_cell(f"%%as_module {name}\nX = 1\nraise ValueError('bad edit')\n")
    assert isinstance(result.error_in_exec, ValueError)
    shown = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert "raise ValueError('bad edit')" in shown  # the failing version's lines
    assert "4 * r" in path.read_text()  # the file still holds the good version
    assert inspect.getsource(module.area) == "def area(r):\n    return 4 * r * r\n"
    assert check_source(read_header(module.__cached__), str(path)).valid is True


def test_spawned_workers_run_the_current_definition(ip, unique):
    assert ip.run_cell("%reset -f").success  # it deletes __main__.__spec__, which spawn needs
    name = unique("geo")
    module = define(ip, name, GEO)
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=SPAWN) as pool:
        assert list(pool.map(module.area, [1, 2])) == [3, 12]
        assert pool.submit(module.Point.twice, module.Point(5)).result() == 10
    define(ip, name, GEO.replace("3 * r", "5 * r"))
    with SPAWN.Pool(2) as pool:
        assert pool.map(module.area, [1, 2]) == [5, 20]
    queue = SPAWN.Queue()
    process = SPAWN.Process(target=queue.put, args=(module.Point(7),))
    process.start()
    point = queue.get(timeout=HANG_GUARD)
    process.join(HANG_GUARD)
    assert type(point) is module.Point and point.x == 7


def test_a_module_kept_in_memory_says_why_in_other_processes(ip, unique):
    name = unique()
    module = define(ip, name, "def f():\n    return 1\n", "--no-persist")
    assert module.__file__.startswith(f"ipyexecmod:{name}@")
    stub = next(Path(p) / f"{name}.py" for p in sys.path if (Path(p) / f"{name}.py").exists())
    # What a worker does with a task: take the function (pickle must not fail), call it.
    out = run_python(
        f"import sys; sys.path.insert(0, {str(stub.parent)!r}); import {name}\nf = {name}.f\nf()"
    )
    assert out.returncode == 1
    assert re.search(
        rf"ImportError: cell module '{name}' is kept in the memory of the kernel \(pid "
        rf"{os.getpid()}\) only \(%%as_module --no-persist, or ExecModMagics.persist = False\), "
        rf"so another process cannot import it; define it again without --no-persist",
        out.stderr,
    )


KERNEL = """
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config
config = Config()
config.HistoryAccessor.enabled = False
config.ExecModMagics.persist_dir = {lasting!r}
ip = InteractiveShell.instance(config=config)
ip.run_line_magic("load_ext", "ipyexecmod")
"""


def test_a_lasting_directory_serves_later_kernels(unique, tmp_path):
    name = unique("kept")
    lasting = str(tmp_path / "lasting")
    first = run_python(
        KERNEL.format(lasting=lasting)
        + f"ip.run_cell_magic('as_module', '{name}.core', "
        + "'def f():\\n    return \"from the cell\"\\n')",
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    later = run_python(  # a kernel restarted: the first one has exited
        KERNEL.format(lasting=lasting)
        + f"""
import {name}.core
print({name}.core.f())
print(sorted((r.name, r.kind) for r in ip.run_line_magic("lsmod", "--cells")))
ip.run_cell_magic("as_module", "{name}.core", "def f():\\n    return 'redefined'\\n")
print({name}.core.f(), {name}.core.__file__)
""",
        cwd=tmp_path,
    )
    assert later.returncode == 0, later.stderr
    lines = later.stdout.splitlines()
    assert lines[0] == "from the cell"
    assert lines[1] == str(sorted([(name, "restored"), (f"{name}.core", "restored")]))
    assert lines[2] == f"redefined {os.path.join(lasting, name, 'core.py')}"


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: (3413).to_bytes(2, "little") + data[2:], id="python-3.8-magic"),
        pytest.param(lambda data: data[:10], id="truncated"),
        pytest.param(lambda data: data[:8] + bytes([data[8] ^ 1]) + data[9:], id="hash-flipped"),
        pytest.param(lambda data: data[:16] + b"\xff" * 8, id="bad-bytecode"),
    ],
)
def test_damaged_pycs_are_rewritten_and_never_loaded(tmp_path, damage):
    store = LastingStore(tmp_path / "store")
    source = "VALUE = 'right'\n"
    path, cached = store.write("victim", source, compile(source, "x", "exec"), is_package=False)
    Path(cached).write_bytes(damage(Path(cached).read_bytes()))
    out = run_python(
        f"import sys; sys.path.insert(0, {store.directory!r}); import victim; print(victim.VALUE)"
    )
    assert out.stdout.strip() == "right" or "bad marshal data" in out.stderr
    assert LastingStore(store.directory).repair() == [cached]
    assert check_source(read_header(cached), path).valid is True
    out = run_python(
        f"import sys; sys.path.insert(0, {store.directory!r}); import victim; print(victim.VALUE)"
    )
    assert out.stdout.strip() == "right"


KILLS = 30


def test_a_writer_killed_mid_write_never_leaves_wrong_code(tmp_path):
    directory = tmp_path / "store"
    writer = textwrap.dedent(
        f"""
        import itertools
        from ipyexecmod.lasting import LastingStore
        from ipyexecmod.store import StoreError
        store = LastingStore({str(directory)!r})
        padding = "# " + "x" * 200_000 + "\\n"
        print("writing", flush=True)
        for i in itertools.count():
            source = f"VALUE = {{i}}\\n" + padding + "END = True\\n"
            store.write("victim", source, compile(source, "victim.py", "exec"), is_package=False)
        """
    )
    kills = 0
    random.seed(1234)
    while kills < KILLS:
        process = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE)
        # Killed at a random moment of its writing, however long it took to start.
        assert process.stdout is not None and process.stdout.readline() == b"writing\n"
        time.sleep(random.uniform(0, 0.3))
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        kills += 1
        if not (directory / "victim.py").exists():
            continue  # killed before its first write ended
        source = (directory / "victim.py").read_text()
        assert source.endswith("END = True\n")  # never a torn file
        value = int(source.split("\n", 1)[0].removeprefix("VALUE = "))
        out = import_value(str(directory))
        assert out.stdout.strip() == str(value), out.stderr
    leftovers = [p for p in directory.iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) <= kills  # temporaries of killed writes, never in place of a module


ON_A_SMALL_FILE_SYSTEM = """
import os, subprocess, sys, warnings
mount, kind = sys.argv[1], sys.argv[2]
options = "size=256k" + (",ro" if kind == "read-only" else "")
subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", mount], check=True)
if kind == "full":
    with open(os.path.join(mount, "filler"), "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"x" * 4096)
        except OSError as exc:
            print("filled:", exc.strerror)
from ipyexecmod import cells
from ipyexecmod.lasting import lasting_store
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    geo = cells.define(
        "geo", "def area(r):\\n    return 3 * r * r\\n",
        store=lasting_store(os.path.join(mount, "cells")),
    )
print("area:", geo.area(2))
for warning in caught:
    print("warning:", warning.message)
print("left:", sorted(os.listdir(os.path.join(mount, "cells"))) if kind == "full" else [])
"""


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("read-only", "Read-only file system"), ("full", "No space left on device")],
)
def test_a_read_only_or_full_file_system_warns_and_the_module_works_in_memory(
    tmp_path, kind, reason
):
    """On a real tmpfs, mounted read-only or filled up, in a user and mount namespace of
    its own (so that no root is needed)."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a file system without root")
    command = ["unshare", "--user", "--map-root-user", "--mount", sys.executable]
    probe = subprocess.run([*command, "-c", "pass"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"user namespaces are not available here: {probe.stderr.strip()}")
    (tmp_path / "mnt").mkdir()
    out = subprocess.run(
        [*command, "-c", ON_A_SMALL_FILE_SYSTEM, str(tmp_path / "mnt"), kind],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=HANG_GUARD,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "area: 12" in lines
    (warning,) = [line for line in lines if line.startswith("warning:")]
    assert re.fullmatch(
        rf"warning: could not write 'geo' to {tmp_path}/mnt/cells: {reason}; "
        rf"module 'geo' works in this process only",
        warning,
    )
    assert lines[-1] == "left: []"  # no temporary file left in a full directory


def test_a_planted_symlink_is_replaced_not_followed(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious\n")
    private = CellStore(tmp_path / "private")
    os.mkdir(private.directory, 0o700)
    os.symlink(target, Path(private.directory) / "geo.py")
    path, _ = private.write("geo", "X = 1\n", None, is_package=False)
    assert target.read_text() == "precious\n"
    assert not Path(path).is_symlink() and Path(path).read_text() == "X = 1\n"
    lasting = LastingStore(tmp_path / "store")  # the link is not the store's: it goes aside
    os.mkdir(lasting.directory, 0o700)
    os.symlink(target, Path(lasting.directory) / "geo.py")
    with pytest.raises(StoreError, match=r"geo\.py was not written by ipyexecmod"):
        lasting.write("geo", "X = 1\n", None, is_package=False)
    path, _ = lasting.write("geo", "X = 1\n", None, is_package=False, force=True)
    assert target.read_text() == "precious\n"
    assert not Path(path).is_symlink() and Path(path).read_text() == "X = 1\n"
    assert os.readlink(f"{path}.orig") == str(target)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, tmp_path / "linked-store")
    with pytest.raises(StoreError, match=r"linked-store exists and is not a directory \(or is a"):
        CellStore(tmp_path / "linked-store").write("geo", "X = 1\n", None, is_package=False)
    assert list(elsewhere.iterdir()) == []


def test_an_unusable_directory_warns_and_the_module_works_in_memory(ip, unique, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    name = unique()
    with pytest.warns(
        RuntimeWarning, match=f"could not write '{name}'.*works in this process only"
    ):
        module = define(ip, name, "X = 1\n", f"--persist-dir {blocker / 'sub'}")
    assert module.X == 1 and sys.modules[name] is module


def test_modules_in_our_directories_are_never_refused_as_shadowing(ip, unique, tmp_path):
    lasting = tmp_path / "lasting"
    name = unique()
    define(ip, name, "X = 1\n", f"--persist-dir {lasting}")
    del sys.modules[name]
    assert importlib.util.find_spec(name) is not None
    module = define(ip, name, "X = 2\n", f"--persist-dir {lasting}")
    assert module.X == 2


def test_the_private_directory_goes_when_the_interpreter_exits():
    out = run_python(
        """
        import ipyexecmod.cells, ipyexecmod.store
        store = ipyexecmod.store.kernel_store()
        module = ipyexecmod.cells.define("leaves", "X = 1", store=store)
        print(store.directory)
        print(module.__file__)
        """
    )
    directory, file = out.stdout.split()
    assert file == os.path.join(directory, "leaves.py")
    assert not os.path.exists(directory)


def test_the_persist_trait_keeps_modules_in_memory(ip, unique):
    ip.run_line_magic("config", "ExecModMagics.persist = False")
    name = unique()
    module = define(ip, name, "X = 1\n")
    assert module.__file__.startswith(f"ipyexecmod:{name}@") and module.__cached__ is None


def test_directories_of_killed_kernels_are_removed_by_the_next(tmp_path):
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = Path(tempfile.gettempdir()) / f"ipyexecmod-{int(gone.stdout):07d}-abcdefgh"
    dead.mkdir(mode=0o700)
    (dead / "leftover.py").write_text("X = 1\n")
    alive = Path(tempfile.gettempdir()) / f"ipyexecmod-{os.getpid():07d}-abcdefgh"
    alive.mkdir(mode=0o700)
    try:
        out = run_python(
            "import ipyexecmod.store; print(ipyexecmod.store.kernel_store().directory)"
        )
        assert out.returncode == 0, out.stderr
        assert not dead.exists()
        assert alive.exists()  # this process is running
    finally:
        shutil.rmtree(alive, ignore_errors=True)


def test_running_a_cell_again_unchanged_writes_nothing(ip, unique):
    name = unique()
    module = define(ip, name, "X = 1\n")
    before = [os.stat(p).st_ino for p in (module.__file__, module.__cached__)]
    define(ip, name, "X = 1\n")
    assert [os.stat(p).st_ino for p in (module.__file__, module.__cached__)] == before
    define(ip, name, "X = 2\n")
    assert os.stat(module.__file__).st_ino != before[0]  # a changed cell is a new file


def test_a_pyc_edited_in_place_behind_our_back_is_rewritten(ip, unique):
    """Running a cell again unchanged trusts what it wrote only while the files are the
    same files: an edit in place, even with its mtime set back, is checked and repaired."""
    name = unique()
    module = define(ip, name, "X = 1\n")
    cached = module.__cached__
    good = open(cached, "rb").read()
    status = os.stat(cached)
    with open(cached, "r+b") as file:  # flip a byte of the source hash, same size
        file.seek(8)
        file.write(bytes([good[8] ^ 0xFF]))
    os.utime(cached, ns=(status.st_atime_ns, status.st_mtime_ns))
    define(ip, name, "X = 1\n")
    repaired = open(cached, "rb").read()
    # The same header; the code marshals to the same objects (marshal's reference flags may
    # differ: it sets them by how many references each object has as it writes).
    assert repaired[:16] == good[:16]
    assert is_sound_hash_pyc(cached, b"X = 1\n")
    assert marshal.loads(repaired[16:]) == marshal.loads(good[16:])
