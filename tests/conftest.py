"""Shared helpers for the end-to-end tests: the project root, papermill runs with the project's kernel."""
import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
KERNEL = 'diffusion-lm'


def kernel_name() -> str:
    "The registered project kernel if present, else the current interpreter's `python3`."
    from jupyter_client.kernelspec import KernelSpecManager
    return KERNEL if KERNEL in KernelSpecManager().find_kernel_specs() else 'python3'


def run_papermill(nb: str, out: Path, params: dict, timeout: int = 900, env=None) -> Path:
    "Execute `nbs/<nb>` with papermill (cwd nbs/) into `out`, raising with the log on failure."
    cmd = [sys.executable, '-m', 'papermill', '-k', kernel_name(), '--cwd', str(ROOT / 'nbs'), str(ROOT / 'nbs' / nb), str(out)]
    for k, v in params.items(): cmd += ['-p', k, str(v)] if not isinstance(v, (bool, int, float)) else ['-y', f'{k}: {v!r}'.replace("True", "true").replace("False", "false")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    if r.returncode: raise AssertionError(f'papermill failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}')
    return out


@pytest.fixture
def runs_dir(tmp_path):
    "A scratch folder for run outputs (papermill copies, checkpoints)."
    d = tmp_path / 'runs'
    d.mkdir()
    return d
