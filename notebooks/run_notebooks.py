"""Execute the notebooks in this folder and store their outputs in place.

    python notebooks/run_notebooks.py                  # every notebook, size "full" (the stored one)
    python notebooks/run_notebooks.py 02_reuse_vs_one_pass.ipynb
    python notebooks/run_notebooks.py --size small --out /tmp/nb   # quick run, copies elsewhere

Each notebook reads DMFT_NOTEBOOK_SIZE in its first code cell ("small": seconds, used by
tests/test_notebooks.py; "full": what the stored outputs show, a few minutes each on 2 cores).
The kernel is the "python3" kernel of the interpreter running this script (ipykernel installed in
the same environment), started in this folder.  Needs nbformat, nbclient and ipykernel.
"""
import argparse
import os
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent


def execute(path, size="full", out=None, timeout=1800):
    """Run one notebook with DMFT_NOTEBOOK_SIZE=size; write it to ``out`` (default: in place)."""
    import nbclient
    import nbformat

    path = pathlib.Path(path)
    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ, DMFT_NOTEBOOK_SIZE=size)
    env.pop("MPLBACKEND", None)               # the notebooks select the inline backend themselves
    t0 = time.perf_counter()
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=timeout,
                                     resources={"metadata": {"path": str(HERE)}},
                                     record_timing=False)
    client.execute(env=env)
    wall = time.perf_counter() - t0
    target = pathlib.Path(out) / path.name if out else path
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return wall, target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="default: every *.ipynb in notebooks/")
    parser.add_argument("--size", choices=("small", "full"), default="full")
    parser.add_argument("--out", help="write the executed copies here instead of in place")
    args = parser.parse_args(argv)
    paths = [pathlib.Path(p) if os.path.exists(p) else HERE / p for p in args.notebooks] \
        or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        wall, target = execute(path, args.size, args.out)
        print(f"{path.name:30s} {wall:6.1f} s  {target.stat().st_size / 1024:7.0f} KiB  -> {target}",
              flush=True)


if __name__ == "__main__":
    sys.exit(main())
