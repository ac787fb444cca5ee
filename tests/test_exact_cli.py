"""`dmft exact CONFIG.toml` (table and CSV) and the exact t = 2 reference of
`dmft learnability --check-dmft`."""
import numpy as np
import pytest

import dmft
from dmft.cli import main

CONFIG = """[problem]
target = "He3(z1)"
p = 1
activation = "tanh"
alpha = 2.0
eta = 0.5
steps = 20
"""


def test_exact_command_table_and_csv(tmp_path, capsys):
    cfg = tmp_path / "he3.toml"
    cfg.write_text(CONFIG)
    assert main(["exact", str(cfg), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "exact first two steps" in out and "M_11" in out and "+-" in out
    data = np.genfromtxt(tmp_path / "o" / "he3_exact.csv", delimiter=",", names=True)
    assert list(data["t"]) == [0, 1, 2]
    ex = dmft.exact.two_steps(dmft.Problem("He3(z1)", activation="tanh", alpha=2.0, eta=0.5))
    np.testing.assert_allclose(data["M_11"], ex.M[:, 0, 0], rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(data["test_error_acc"], ex.accuracy["test_error"], rtol=1e-9)
    assert abs(data["M_11"][2]) > 100 * data["M_11_acc"][2]     # reuse moves M at t = 2


@pytest.mark.parametrize("text, flags, field", [
    (CONFIG.replace("p = 1", "p = 3"), [], "p"),                   # 2p + k = 7 > 6
    (CONFIG, ["--order", "0"], "order"),
    (CONFIG, ["--order", "20,20,20"], "order"),
    (CONFIG + "[solver]\nn_paths = 0\n", [], "n_paths"),           # the whole config checked
])
def test_exact_command_bad_input(tmp_path, capsys, text, flags, field):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    out = tmp_path / "o"
    assert main(["exact", str(cfg), "--out", str(out)] + flags) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dmft: error: {field}:") and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.slow
def test_check_dmft_uses_the_exact_reference_at_t2():
    res = dmft.learnability("He3(z1)", check_dmft=True, activations="tanh")
    runs = res.dmft_check["runs"]
    multi = runs["multi-pass/tanh"]["subspaces"]["reuse_step2"]
    one = runs["one-pass/tanh"]["subspaces"]["reuse_step2"]
    assert multi["exact_t2"] > 100 * multi["exact_t2_accuracy"]
    assert one["exact_t2"] <= one["exact_t2_accuracy"] + 1e-12
    # the Monte Carlo value at t = 2 agrees with the exact one within 4 error bars
    assert abs(multi["value"][1] - multi["exact_t2"]) < 4 * multi["error"][1]
    assert res.dmft_check["agrees"] and "exact t=2" in res.summary()
