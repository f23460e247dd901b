"""Shared helpers for the end-to-end tests: the project root, papermill runs with the project's kernel."""
import os, subprocess, sys, time
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


def until(cond, timeout=120, poll=0.02, what='condition'):
    "Poll `cond()` every `poll` seconds until it is truthy (returned), or raise TimeoutError after `timeout` seconds."
    t0 = time.monotonic()
    while not (r := cond()):
        if time.monotonic() - t0 > timeout: raise TimeoutError(f'{what} not reached after {timeout} s')
        time.sleep(poll)
    return r
