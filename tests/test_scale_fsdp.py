"""FSDP2 and sharded checkpoints (diffusion_lm.scale) across processes: torchrun with gloo on CPU, float32.
One step on 2 ranks equals one process on the whole batch (full fine-tuning and LoRA); a checkpoint saved on
2 ranks resumes exactly on 2 ranks and loads on 1 and 3 ranks; exports of sharded models equal the unsharded ones."""
import json, os, subprocess, sys
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file
from conftest import ROOT
from diffusion_lm.pretrained import load_pretrained
from diffusion_lm.testing import make_tiny_llada
import scale_fsdp_worker as worker

ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}
WORKER = Path(__file__).with_name('scale_fsdp_worker.py')


def run(mode: str, model: Path, out: Path, nproc: int) -> dict:
    "Run the worker under torchrun with nproc gloo processes; its JSON result."
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}',
           str(WORKER), mode, str(model), str(out)]
    r = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    return json.loads((out / f'{mode}-{nproc}.json').read_text())


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "The tiny model, and the 2-rank training run: one-step comparisons, exports, a checkpoint after step 2."
    d = tmp_path_factory.mktemp('scale_fsdp')
    model = make_tiny_llada(d / 'tiny')
    return model, d, run('train', model, d, 2)


def test_one_fsdp_step_equals_one_process(trained):
    "2 ranks, each half of the batch, FSDP2-sharded: the same weights after one step as one process on the whole batch."
    _, _, res = trained
    full, lora = res['full'], res['lora']
    assert full['changed'] == full['n'] and full['max_update'] > 1e-3      # every weight moved, visibly ...
    assert full['max_diff'] < 1e-6                                          # ... and identically up to float rounding
    assert lora['trainable'] == 28 and lora['changed'] == 28 < lora['n']   # LoRA: only the 28 adapter matrices moved
    assert lora['max_update'] > 1e-3 and lora['max_diff'] < 1e-6


def test_exports_of_sharded_models(trained):
    "export_pretrained / merge_lora of the sharded models write the same checkpoints as of the unsharded ones."
    model, d, _ = trained
    for tag in ('full', 'lora'):
        a, b = (load_file(d / f'{tag}_{k}' / 'model.safetensors') for k in ('sharded', 'single'))
        assert sorted(a) == sorted(b) == sorted(load_file(model / 'model.safetensors'))   # the base model's names
        assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
    m = load_pretrained(d / 'lora_sharded')
    assert type(m.hf).__module__.startswith('transformers_modules.')


def test_resume_on_two_ranks_is_exact(trained):
    "Steps 1-2, checkpoint, a fresh model and optimizer resume steps 3-4: bit-identical to 4 uninterrupted steps."
    model, d, _ = trained
    res = run('resume', model, d, 2)
    assert res['meta'] == {'step': 2, 'extra': {'data_position': 8}, 'world_size': 2}
    assert res['model_equal'] and res['optim_equal'] and res['n_optim'] == 3 * 21   # step, exp_avg, exp_avg_sq
    assert res['resumed_model_equal'] and res['resumed_optim_equal']


def test_load_on_one_rank(trained):
    "The 2-rank checkpoint loads into an unsharded model and optimizer in one process: the same full state."
    model, d, _ = trained
    torch.set_num_threads(1)
    m = load_pretrained(model)
    opt = worker.adamw(m)
    meta = worker.load_sharded(d / 'ckpt', m, opt)
    msd, osd = worker.full_state(m, opt)
    ref_msd, ref_osd = torch.load(d / 'full2.pt')
    assert meta['step'] == 2 and worker.equal(msd, ref_msd) and worker.equal(osd, ref_osd)
    assert not worker.equal(msd, dict(load_pretrained(model).state_dict()))   # (it is not the initial model)


def test_load_on_three_ranks(trained):
    "The 2-rank checkpoint loads into a model sharded over 3 ranks (uneven shards): the same full state."
    model, d, _ = trained
    res = run('load', model, d, 3)
    assert res['world'] == 3 and res['model_equal'] and res['optim_equal']
