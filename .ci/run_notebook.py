"""Execute a notebook in a real Jupyter kernel, headlessly, and print each cell and its output."""

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def main(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": path.parent}}
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
