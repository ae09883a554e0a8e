"""Task keys that change with the notebook's code (ipyexecmod.dask.tokens).

The first tests pin what the installed Dask's ``Dispatch`` does that the tokens
rely on: a Dask release that changes it fails here, by name, before anything
goes stale on a cluster.
"""

from __future__ import annotations

import contextlib
import fractions
import json
import subprocess
import sys
import types
from collections.abc import Iterator

import pytest

pytest.importorskip("distributed")

import cloudpickle
import dask.tokenize
from dask.base import normalize_token, tokenize
from dask.utils import Dispatch
from distributed import Client, LocalCluster
from helpers import HANG_GUARD

import ipyexecmod.dask
from ipyexecmod import cells
from ipyexecmod.dask.tokens import KINDS, Tokens

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def alone():
    """No shipping switched on by an earlier test: Dask's handlers as Dask made them."""
    ipyexecmod.dask.disable()
    assert normalize_token.dispatch(object) is dask.tokenize.normalize_object


@pytest.fixture
def tokens(alone):
    tokens = Tokens()
    tokens.install()
    yield tokens
    tokens.uninstall()


def in_main(source: str, name: str):
    """Object ``name`` of ``source`` run as the notebook's ``__main__`` runs cells."""
    namespace = {"__name__": "__main__"}
    exec(source, namespace)
    return namespace[name]


# -- the contract with Dask --


def test_functions_classes_and_instances_reach_the_handler_for_object(alone):
    """The one handler wrapped, in this Dask (older ones had one for functions)."""
    handler = normalize_token.dispatch(object)
    assert normalize_token.dispatch(types.FunctionType) is handler
    assert normalize_token.dispatch(type) is handler
    assert normalize_token.dispatch(type("Fresh", (), {})) is handler
    assert isinstance(normalize_token, Dispatch)


def test_dispatch_caches_a_subclass_in_the_table_of_registrations():
    """Why classes dispatched before installing are pointed at the wrapper too."""
    dispatch = Dispatch()
    first, second = object(), object()
    dispatch.register(object, first)
    assert dispatch._lookup == {object: first}
    sub = type("Sub", (), {})
    assert dispatch.dispatch(sub) is first
    assert dispatch._lookup == {object: first, sub: first}  # cached, as a registration
    dispatch.register(object, second)
    assert dispatch.dispatch(sub) is first  # the cache wins over the new registration
    dispatch.register(sub, second)
    assert dispatch.dispatch(sub) is second  # and register replaces a cached entry


# -- the count in the tokens --


def test_nothing_bumped_leaves_dasks_tokens(alone, unique):
    module = cells.define(unique("tok"), "def f(x):\n    return x\n")
    before = tokenize(module.f)
    tokens = Tokens()
    tokens.install()
    try:
        assert tokenize(module.f) == before
    finally:
        tokens.uninstall()


def test_a_bump_changes_the_tokens_of_notebook_objects_only(tokens, unique):
    module = cells.define(unique("tok"), "def f(x):\n    return x\nclass C:\n    pass\n")
    notebook = {
        "cell function": module.f,
        "cell class": module.C,
        "cell instance": module.C(),
        "__main__ function": in_main("def g():\n    return 1\n", "g"),
    }
    stdlib = {
        "stdlib function": json.dumps,
        "stdlib class": fractions.Fraction,
        "stdlib instance": fractions.Fraction(1, 3),
    }
    before = {what: tokenize(obj) for what, obj in {**notebook, **stdlib}.items()}
    tokens.bump()
    after = {what: tokenize(obj) for what, obj in {**notebook, **stdlib}.items()}
    assert {what for what in before if after[what] != before[what]} == set(notebook)
    tokens.bump()
    assert tokenize(module.f) not in (before["cell function"], after["cell function"])


def test_a_class_dispatched_before_installing_gets_the_count(alone, unique):
    module = cells.define(unique("early"), "class Early:\n    pass\n")
    instance = module.Early()
    before = tokenize(instance)  # Dask caches the handler for Early now
    tokens = Tokens()
    tokens.install()
    try:
        tokens.bump()
        assert tokenize(instance) != before
    finally:
        tokens.uninstall()
    assert tokenize(instance) == before


def test_uninstall_puts_back_every_handler(alone, unique):
    early = cells.define(unique("early"), "class Early:\n    pass\n").Early
    normalize_token.dispatch(early)
    before = dict(normalize_token._lookup)
    function = cells.define(unique("tok"), "def f():\n    return 1\n").f
    token = tokenize(function)
    tokens = Tokens()
    tokens.install()
    late = cells.define(unique("late"), "class Late:\n    pass\n").Late
    normalize_token.dispatch(late)  # first dispatched while installed
    tokens.bump()
    tokens.uninstall()
    for cls, handler in before.items():
        assert normalize_token.dispatch(cls) is handler, cls
    assert normalize_token.dispatch(late) is dask.tokenize.normalize_object
    assert not any(getattr(h, "ipyexecmod", False) for h in normalize_token._lookup.values())
    assert tokenize(function) == token


def test_a_wrapper_left_by_an_earlier_module_object_is_replaced(alone):
    """``%reset --aggressive`` can drop the module and import it anew."""
    stale, fresh = Tokens(), Tokens()
    stale.install()
    fresh.install()
    try:
        handler = normalize_token.dispatch(object)
        assert handler._tokens is fresh
        assert handler.__wrapped__ is dask.tokenize.normalize_object
    finally:
        fresh.uninstall()
    assert normalize_token.dispatch(object) is dask.tokenize.normalize_object


# -- switched on by shipping, off by %unload_ext --


def test_importing_the_package_changes_nothing():
    script = (
        "import cloudpickle, dask.tokenize\n"
        "from dask.base import normalize_token\n"
        "from ipyexecmod import cells\n"
        "import ipyexecmod.dask\n"
        "print(normalize_token.dispatch(object) is dask.tokenize.normalize_object)\n"
        "print(cells.finder.listeners, sorted(cloudpickle.list_registry_pickle_by_value()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=HANG_GUARD
    )
    assert result.stdout == "True\n[] []\n", result.stderr


def test_a_shipment_travels_by_value(alone):
    """From a subpackage too: the workers need no ipyexecmod to apply a shipment."""
    from ipyexecmod.dask._on_worker import Entry, Shipment
    from ipyexecmod.dask.clusters import _placeholders

    entries = {
        "shipped_here": Entry(1, True, b"X = 42\n", "<f>", None, False),
        "not_here": Entry(1, False, "not shipped, sorry", "<g>", None, False),
    }
    ipyexecmod.dask.enable()
    try:
        data = cloudpickle.dumps(Shipment(entries, _placeholders(), ("no host", 0)))
    finally:
        ipyexecmod.dask.disable()
    script = (
        "import pickle, sys\n"
        "sys.modules['ipyexecmod'] = None  # not installed\n"
        "pickle.loads(sys.stdin.buffer.read()).setup()\n"
        "import shipped_here, not_here\n"
        "print(shipped_here.X)\n"
        "try:\n"
        "    not_here.f()\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], input=data, capture_output=True, timeout=HANG_GUARD
    )
    assert result.stdout == b"42\nnot shipped, sorry\n", result.stderr
    assert "ipyexecmod.dask._on_worker" not in cloudpickle.list_registry_pickle_by_value()


@contextlib.contextmanager
def shipped_from_a_shell(shell, name: str) -> Iterator[Client]:
    """``%load_ext``, cell module ``name`` (its ``f`` returns ``'v1'``) ``%ship``-ed to a
    one-worker LocalCluster through ``--client``; unloaded at the end if still loaded."""
    shell.run_line_magic("load_ext", "ipyexecmod")
    try:
        shell.run_cell_magic("as_module", name, "def f():\n    return 'v1'\n")
        with (
            LocalCluster(
                n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0"
            ) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            shell.user_ns["shipping_client"] = client
            shell.run_line_magic("ship", f"{name} --client shipping_client")
            yield client
    finally:
        shell.user_ns.pop("shipping_client", None)
        if "ipyexecmod" in shell.extension_manager.loaded:
            shell.run_line_magic("unload_ext", "ipyexecmod")


def test_unload_ext_puts_back_dasks_handlers(shell, alone, unique):
    before = {kind: normalize_token.dispatch(kind) for kind in KINDS}
    table = dict(normalize_token._lookup)
    listeners = list(cells.finder.listeners)
    name = unique("unloaded")
    with shipped_from_a_shell(shell, name) as client:
        assert normalize_token.dispatch(object) is not before[object]
        assert client.submit(shell.user_ns[name].f).result(timeout=HANG_GUARD) == "v1"
        shell.run_line_magic("unload_ext", "ipyexecmod")
    for kind, handler in before.items():
        assert normalize_token.dispatch(kind) is handler, kind
    for cls, handler in table.items():
        assert normalize_token.dispatch(cls) is handler, cls
    assert cells.finder.listeners == listeners
    assert "ipyexecmod.dask._on_worker" not in cloudpickle.list_registry_pickle_by_value()


def test_a_module_redefined_while_unloaded_is_sent_by_the_next_shipment(alone, unique):
    from ipyexecmod.store import kernel_store

    first, second = unique("kept"), unique("next")
    module = cells.define(first, "def f():\n    return 'v1'\n", store=kernel_store())
    cells.define(second, "x = 1\n", store=kernel_store())
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        ipyexecmod.dask.ship(client, first)
        ipyexecmod.dask.disable()  # what %unload_ext does
        cells.define(first, "def f():\n    return 'v2'\n", store=kernel_store())
        ipyexecmod.dask.ship(client, second)
        assert client.submit(module.f).result(timeout=HANG_GUARD) == "v2"


def test_reload_ext_goes_on_shipping_redefinitions(shell, alone, unique):
    name = unique("reloaded")
    with shipped_from_a_shell(shell, name) as client:
        shell.run_line_magic("reload_ext", "ipyexecmod")
        shell.run_cell_magic("as_module", name, "def f():\n    return 'v2'\n")
        assert client.submit(shell.user_ns[name].f).result(timeout=HANG_GUARD) == "v2"
