"""The README's main job, the CLI and the notebooks run end to end on the real data."""
import json
import pathlib

import matplotlib
import pytest

matplotlib.use("Agg")

from sketchjax.cli import main  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.data
def test_render_command_writes_figure(data_root, tmp_path):
    out = tmp_path / "fig.png"
    assert main(["render", "--data", str(data_root), "--n", "2", "--size", "64", "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000


@pytest.mark.data
def test_render_command_reads_user_files(data_root, tmp_path):
    out = tmp_path / "fig.png"
    svg = next((data_root / "tuberlin_svg").glob("*/*.svg"))
    npz = data_root / "sketchrnn_npz" / "omniglot.npz"
    assert main(["render", str(svg), str(npz), "--n", "3", "--size", "64", "--out", str(out)]) == 0
    assert out.exists()


def test_render_command_reports_bad_input_without_traceback(tmp_path, capsys):
    bad = tmp_path / "broken.ndjson"
    bad.write_text('{"word": "cat", "drawing": [[[0, 1], [0]]]}\n')
    assert main(["render", str(bad), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "broken.ndjson" in err and "error" in err


@pytest.mark.data
@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_runs(notebook, data_root):
    cells = json.loads(notebook.read_text())["cells"]
    scope: dict = {}
    for cell in cells:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{notebook.name}", "exec"), scope)
