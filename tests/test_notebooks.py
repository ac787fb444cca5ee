"""The notebooks in notebooks/: stored with their outputs (figures included, at size "full"), and
runnable end to end (executed here at DMFT_NOTEBOOK_SIZE=small, into a temporary copy: the stored
outputs are never touched).

The kernel is this interpreter, through a kernel spec written to a temporary JUPYTER_PATH for the
duration of the test (nothing is registered globally); a last cell checks that the kernel really
ran ``sys.executable``.
"""
import json
import os
import pathlib
import sys

import pytest

import nbformat  # noqa: E402  (a test dependency: missing means failure, not a skip)

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = ("01_quickstart.ipynb", "02_reuse_vs_one_pass.ipynb", "03_step_size.ipynb",
            "04_inside_the_dmft.ipynb", "05_beyond_the_paper.ipynb",
            "06_gradient_flow.ipynb")
MAX_BYTES = 1_500_000
KERNEL = "dmft-tests"


def _ids(paths):
    return [p.stem for p in paths]


def _outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _images(nb):
    return sum("image/png" in o.get("data", {}) for o in _outputs(nb))


def test_notebooks_present():
    names = {p.name for p in NOTEBOOKS}
    assert set(EXPECTED) <= names, f"missing: {sorted(set(EXPECTED) - names)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_stored_outputs(path):
    """Executed at size "full", every code cell run in order, no errors, figures stored, small."""
    assert path.stat().st_size < MAX_BYTES, f"{path.name}: {path.stat().st_size} bytes"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and "DMFT_NOTEBOOK_SIZE" in code[0].source, \
        "the first code cell must read DMFT_NOTEBOOK_SIZE"
    counts = [c.get("execution_count") for c in code]
    assert all(n is not None for n in counts), f"{path.name}: cells without stored execution"
    assert counts == sorted(counts), f"{path.name}: cells were not run top to bottom: {counts}"
    assert not [o for o in _outputs(nb) if o.output_type == "error"], f"{path.name}: error output"
    assert _images(nb) >= 1, f"{path.name}: no stored figure"
    text = "".join(o.get("text", "") for o in code[0].get("outputs", []))
    assert "size 'full'" in text, f"{path.name}: stored outputs are not from a full-size run"


@pytest.fixture(scope="module")
def kernel_spec(tmp_path_factory):
    """A kernel spec for this interpreter in a private JUPYTER_PATH (highest priority)."""
    __import__("nbclient")
    __import__("ipykernel")
    base = tmp_path_factory.mktemp("jupyter")
    spec = base / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "dmft tests", "language": "python"}))
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(base) + (os.pathsep + old if old else "")
    yield KERNEL
    if old is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = old


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs(path, kernel_spec, tmp_path):
    """Every cell runs without error at size "small" and figures are produced."""
    import nbclient

    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print('KERNEL_PYTHON=' + sys.executable)"))
    env = dict(os.environ, DMFT_NOTEBOOK_SIZE="small")
    client = nbclient.NotebookClient(nb, kernel_name=kernel_spec, timeout=600,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)                 # raises CellExecutionError on the first failing cell
    nbformat.write(nb, tmp_path / path.name)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)
    assert "size 'small'" in text, f"{path.name}: DMFT_NOTEBOOK_SIZE was not honoured"
    ran = text.split("KERNEL_PYTHON=")[-1].strip()
    assert os.path.realpath(ran) == os.path.realpath(sys.executable), \
        f"kernel ran {ran}, not {sys.executable}"
    assert _images(nb) >= 1, f"{path.name}: no figure produced"
