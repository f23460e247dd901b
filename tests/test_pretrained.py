"""Pre-trained Hugging Face checkpoints across processes: a folder written by one process (the tiny LLaDA-format
model of diffusion_lm.testing, changed and saved with save_pretrained_atomic) loads in a fresh process through
trust_remote_code, with the same weights and logits. (Fine-tuning them end to end: tests/test_finetune.py.)"""
import json, os, subprocess, sys
import torch
from safetensors.torch import load_file
from conftest import ROOT
from diffusion_lm.testing import make_tiny_llada
from diffusion_lm.pretrained import load_pretrained

ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}

SAVE = """
import sys, torch
from diffusion_lm.pretrained import load_pretrained
m = load_pretrained(sys.argv[1])
with torch.no_grad(): m.hf.lm_head.weight.mul_(3)
m.save_pretrained(sys.argv[2])
"""

LOGITS = """
import sys, json, torch
from diffusion_lm.pretrained import load_pretrained
m = load_pretrained(sys.argv[1])
x = torch.arange(20).view(2, 10) + 5
with torch.no_grad(): print(json.dumps({'module': type(m.hf).__module__, 'mask_id': m.mask_id, 'logits': m(x).tolist()}))
"""


def py(code, *args):
    r = subprocess.run([sys.executable, '-c', code, *map(str, args)], cwd=ROOT, env=ENV, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]
    return r.stdout


def test_saved_folder_reloads_in_a_fresh_process(tmp_path):
    "Saved in one process, loaded in another (its code imported from the folder): the same weights and logits."
    base = make_tiny_llada(tmp_path / 'tiny')
    py(SAVE, base, tmp_path / 'saved')
    assert not [p.name for p in tmp_path.iterdir() if '.tmp-' in p.name]              # nothing temporary left
    w0, w1 = load_file(base / 'model.safetensors'), load_file(tmp_path / 'saved' / 'model.safetensors')
    assert torch.equal(w1['lm_head.weight'], 3 * w0['lm_head.weight'])
    assert all(torch.equal(w0[k], w1[k]) for k in w0 if k != 'lm_head.weight')
    got = json.loads(py(LOGITS, tmp_path / 'saved').strip().splitlines()[-1])
    assert got['module'].startswith('transformers_modules.') and got['mask_id'] == 102
    torch.set_num_threads(1)
    with torch.no_grad(): ref = load_pretrained(tmp_path / 'saved')(torch.arange(20).view(2, 10) + 5)
    assert torch.allclose(torch.tensor(got['logits']), ref, atol=1e-6, rtol=0)
