"""The workflow notebooks' papermill parameters: generated from the dataclasses they feed (no hand-kept copy), parsed
by papermill line for line, and checked like `--set` before any work (a mistyped name fails in one line)."""
import ast, json, os, subprocess, sys
from pathlib import Path
import papermill as pm
import pytest
from diffusion_lm.train_config import (sync_parameter_cells, notebook_parameter_cells, TrainConfig, SampleConfig,
                                      FINETUNE_ONLY)
import dataclasses

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'
PAPERMILL = Path(sys.executable).parent / 'papermill'


def test_parameter_cells_are_generated():
    assert sync_parameter_cells(NBS) == [], ('a parameters cell differs from its dataclass: run python -c "from '
                                             'diffusion_lm.train_config import sync_parameter_cells as s; '
                                             's(\'nbs\', write=True)"')


@pytest.mark.parametrize('name,cls,lead,left_out', [('train.ipynb', TrainConfig, ['preset'], FINETUNE_ONLY),
                                                   ('sample.ipynb', SampleConfig, [], ())])
def test_every_field_is_a_parameter_papermill_reads(name, cls, lead, left_out):
    "Every field (train.ipynb pre-trains: fine-tuning's own fields, which pre-training refuses, are left out)."
    names = [t.id for n in ast.parse(notebook_parameter_cells()[name]).body for t in n.targets]
    assert set(left_out) <= {f.name for f in dataclasses.fields(cls)}          # no stale name in the list
    assert names == lead + [f.name for f in dataclasses.fields(cls) if f.name not in left_out]
    assert list(pm.inspect_notebook(str(NBS / name))) == names      # papermill parses each line (no '=' in comments)


def _papermill(nb, out, *args):
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    env.pop('IN_TEST', None)
    return subprocess.run([str(PAPERMILL), '-k', 'diffusion-lm', '--cwd', 'nbs', f'nbs/{nb}', str(out), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_mistyped_parameter_stops_before_any_work(tmp_path):
    r = _papermill('train.ipynb', tmp_path / 't.ipynb', '-p', 'max_step', '5', '-p', 'out_dir', str(tmp_path / 'run'))
    assert r.returncode != 0
    assert "this notebook has no parameter 'max_step'; did you mean max_steps" in r.stderr + r.stdout
    assert not (tmp_path / 'run').exists()                             # nothing trained, no folder made
    r = _papermill('sample.ipynb', tmp_path / 's.ipynb', '-p', 'n_sample', '4', '-p', 'checkpoint', str(tmp_path))
    assert r.returncode != 0 and "no parameter 'n_sample'; did you mean n_samples" in r.stderr + r.stdout
    r = _papermill('sample.ipynb', tmp_path / 's.ipynb', '-p', 'n_samples', 'abc', '-p', 'checkpoint', str(tmp_path))
    assert r.returncode != 0 and "SampleConfig.n_samples='abc' is not an integer" in r.stderr + r.stdout


def test_notebooks_use_the_project_kernel():
    "JupyterLab opens every notebook with the kernel `make setup` registers (the project's .venv), not `python3`."
    for p in sorted(NBS.glob('*.ipynb')):
        assert json.loads(p.read_text())['metadata']['kernelspec']['name'] == 'diffusion-lm', p.name
