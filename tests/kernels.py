"""Real ipykernels for the tests, started and driven through jupyter_client."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def kernel_running(ipython_dir: Path) -> Iterator[tuple[Any, Any]]:
    """A fresh python3 kernel: its manager and a client with its channels started.

    A private IPYTHONDIR keeps the developer's own profile and extensions out.
    """
    import jupyter_client

    env = {**os.environ, "IPYTHONDIR": str(ipython_dir)}
    manager, client = jupyter_client.manager.start_new_kernel(
        kernel_name="python3", env=env, startup_timeout=60
    )
    try:
        yield manager, client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def execute(
    client: Any, code: str, timeout: float = 120, *, stop_on_error: bool = False
) -> tuple[dict, list[dict]]:
    """Execute ``code``; the reply's content and the iopub messages it caused.

    By default a cell that fails does not make the kernel abort the requests after it.
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
