"""Real ipykernels for the tests, started and driven through jupyter_client."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from helpers import HANG_GUARD


@contextlib.contextmanager
def kernel_running(
    ipython_dir: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[Any, Any]]:
    """A fresh python3 kernel: its manager and a client with its channels started;
    ``env`` adds to its environment (``JPY_SESSION_NAME``: the notebook it runs).

    A private IPYTHONDIR keeps the developer's own profile and extensions out.  What
    other processes (another test run) could take or write at the same time is the
    kernel's own, in a private directory: it talks over Unix sockets there, not TCP ports
    (a port picked as free can be taken before the kernel binds it, and the kernel dies),
    and jedi, its completer, caches parsed files there (it writes them in place, and a
    completion that reads a half-written one finds nothing).
    """
    from jupyter_client.manager import KernelManager

    # A short path: a Unix socket's path must stay under ~100 bytes.
    with tempfile.TemporaryDirectory(prefix="test-kernel-") as sockets:
        env = {
            **os.environ,
            "IPYTHONDIR": str(ipython_dir),
            "XDG_CACHE_HOME": os.path.join(sockets, "cache"),
            **(env or {}),
        }
        manager = KernelManager(
            kernel_name="python3",
            transport="ipc",
            ip=os.path.join(sockets, "k"),
            connection_file=os.path.join(sockets, "kernel.json"),
        )
        manager.start_kernel(env=env)
        try:
            client = manager.client()
            client.start_channels()
            try:
                client.wait_for_ready(timeout=HANG_GUARD)
                yield manager, client
            finally:
                client.stop_channels()
        finally:
            # Gracefully: the kernel's exit handlers remove what it made (its private directory,
            # joblib's and loky's files in /dev/shm); a kernel that does not exit in time is killed.
            manager.shutdown_kernel()


def execute(
    client: Any, code: str, timeout: float = HANG_GUARD, *, stop_on_error: bool = False
) -> tuple[dict, list[dict]]:
    """Execute ``code``; the reply's content and the iopub messages it caused.

    ``stop_on_error=False`` (the default): after a cell that fails, ipykernel otherwise
    aborts the requests that reach it within its stop-on-error window, and on a busy
    machine the next cell's request can arrive within it (reply status 'aborted').
    """
    messages: list[dict] = []
    reply = client.execute_interactive(
        code, output_hook=messages.append, timeout=timeout, stop_on_error=stop_on_error
    )
    return reply["content"], messages


def outputs(messages: list[dict], kind: str) -> list[dict]:
    return [m["content"] for m in messages if m["msg_type"] == kind]


def stream(messages: list[dict], name: str = "stdout") -> str:
    return "".join(c["text"] for c in outputs(messages, "stream") if c["name"] == name)


def shown(messages: list[dict]) -> str:
    """What a cell showed as text, in order: streams, results' text/plain (a line each),
    and errors as ``ename: evalue``."""
    texts: list[str] = []
    for message in messages:
        content = message["content"]
        if message["msg_type"] == "stream":
            texts.append(content["text"])
        elif message["msg_type"] == "error":
            texts.append(f"{content['ename']}: {content['evalue']}")
        elif message["msg_type"] == "execute_result":
            texts.append(content["data"]["text/plain"] + "\n")
    return "".join(texts)


def execute_text(client: Any, code: str, timeout: float = 120) -> tuple[dict, str]:
    """Execute ``code``; the reply's content and what the cell showed, as :func:`shown`."""
    reply, messages = execute(client, code, timeout)
    return reply, shown(messages)


def run_and_interrupt(manager, client, code: str, delay: float) -> dict:
    """Start ``code``, and send Ctrl-C ``delay`` seconds after it begins to print.

    ``stop_on_error=False``: the interrupted cell fails, and ipykernel would otherwise
    abort the next request if it arrived within its stop-on-error window (a busy machine).
    """
    msg_id = client.execute(code, stop_on_error=False)
    while True:
        message = client.get_iopub_msg(timeout=HANG_GUARD)
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        if message["msg_type"] == "stream" and "running" in message["content"]["text"]:
            break
    time.sleep(delay)
    manager.interrupt_kernel()
    while True:
        reply = client.get_shell_msg(timeout=HANG_GUARD)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]
