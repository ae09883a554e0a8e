"""Execute a notebook in a real Jupyter kernel, headlessly, and print each cell and its output."""

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from traitlets.config import Config

#: Seconds a cell, or the kernel's start, may take: only a hang reaches it, however busy
#: the machine is.
HANG_GUARD = 600


def main(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    # The kernel talks over Unix sockets in a directory of its own, not TCP ports: a port
    # picked as free can be taken by another process before the kernel binds it.
    with tempfile.TemporaryDirectory(prefix="kernel-ipc-") as sockets:
        config = Config()
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = os.path.join(sockets, "k")
        client = NotebookClient(
            notebook,
            timeout=HANG_GUARD,
            startup_timeout=HANG_GUARD,
            kernel_name="python3",
            resources={"metadata": {"path": path.parent}},
            config=config,
        )
        client.execute()  # raises CellExecutionError, with the traceback, if a cell fails
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        print("In: " + cell.source.replace("\n", "\n    "))
        for output in cell.outputs:
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            if text:
                print("    " + text.rstrip().replace("\n", "\n    "))
        print()
    print(f"{path}: {len(notebook.cells)} cells executed in a {client.kernel_name} kernel")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
