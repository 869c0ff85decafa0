"""The notebooks run top to bottom (small settings: ANALOGDIFF_NOTEBOOK_SMALL=1) on the shipped models."""
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHECKS = {  # text each notebook must print when it ran through
    "01_quickstart.ipynb": ["J/token", "bits_per_char", "llada-8b"],
    "02_tuning.ipynb": ["Pareto front of study", "'bits_per_char', 'energy_per_token_j'"],
    "03_accuracy_vs_power.ipynb": ["bits/char", "J per scored char"],
}


def _shipped() -> bool:
    from analogdiff.lm.checkpoint import SHIPPED, resolve

    return all(resolve(n).is_file() for n in SHIPPED)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_notebook_executes(name, tmp_path, monkeypatch):
    if not _shipped():
        pytest.skip("the shipped checkpoints are not in analogdiff/lm/checkpoints yet")
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("ANALOGDIFF_NOTEBOOK_SMALL", "1")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                 for o in c.get("outputs", []))
    for needle in CHECKS[name]:
        assert needle in text, f"{name}: expected {needle!r} in the output"
    if name != "01_quickstart.ipynb":
        assert images >= 1
