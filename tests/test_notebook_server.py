"""`make notebook` opens the notebooks from the project's own environment (issue 19, item 7):
the target exists and runs JupyterLab from .venv without a browser; the server started the
same way lists notebooks/ and its Python kernel imports dmft (checked through the kernel's
connection file, no browser involved)."""
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent


def test_make_notebook_target():
    # under `make test` (CI) the parent make's MAKEFLAGS make this one print "make[1]: ..."
    # directory lines: drop them and the environment's make variables
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    r = subprocess.run(["make", "-n", "notebook"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.replace("\\\n", " ").split("\n")
             if ln.strip() and not ln.startswith("make")]
    command = " ".join(lines[-1].split())
    assert command.startswith(".venv/bin/jupyter lab --no-browser"), command
    assert "--notebook-dir=notebooks" in command
    assert re.search(r'pip install -q -e "\.\[test,notebook\]"', r.stdout) or \
        (ROOT / ".venv" / ".dmft-notebook-installed").exists()
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'notebook = \[[^\]]*"jupyterlab', text)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


@pytest.mark.slow
def test_notebook_server_runs_dmft(tmp_path):
    if not (BIN / "jupyter-lab").exists():
        pytest.skip("JupyterLab is not installed in this environment (make notebook installs "
                    "the notebook extra)")
    port, token = _free_port(), "dmft-test"
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_DATA_DIR=str(tmp_path / "data"),
               PATH="/usr/bin:/bin")          # the kernel must not depend on an activated venv
    log = open(tmp_path / "server.log", "wb")
    server = subprocess.Popen(["make", "--no-print-directory", "notebook",
                               f"VENV={BIN.parent}", f"NOTEBOOK_ARGS=--port={port} "
                               f"--IdentityProvider.token={token}"], cwd=ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.time() + 120
        while True:
            try:
                _get(f"{base}/status?token={token}")
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, \
                    (tmp_path / "server.log").read_text()
                time.sleep(0.5)
        names = {c["name"] for c in _get(f"{base}/contents?token={token}")["content"]}
        assert "01_quickstart.ipynb" in names
        request = urllib.request.Request(f"{base}/kernels?token={token}", method="POST",
                                         data=json.dumps({"name": "python3"}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as r:
            kernel = json.loads(r.read())
        connection = tmp_path / "runtime" / f"kernel-{kernel['id']}.json"
        deadline = time.time() + 60
        while not connection.exists():
            assert time.time() < deadline, "no kernel connection file"
            time.sleep(0.2)
        from jupyter_client import BlockingKernelClient
        client = BlockingKernelClient(connection_file=str(connection))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=120)
            out = []
            client.execute_interactive("import sys, dmft; print(sys.executable, dmft.__file__)",
                                       timeout=120, output_hook=lambda m: out.append(
                                           m["content"]["text"] if m["content"].get("name")
                                           == "stdout" else ""))
        finally:
            client.stop_channels()
        assert len("".join(out).split()) == 2, out
        executable, module = "".join(out).split()
        assert pathlib.Path(executable).parent == BIN
        assert pathlib.Path(module).is_relative_to(ROOT / "dmft")
    finally:
        os.killpg(server.pid, signal.SIGTERM)        # make and the server it started
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
