"""Fine-tuning a pre-trained Hugging Face masked-diffusion checkpoint end to end, in separate processes: the CLI
`python -m diffusion_lm.pretrained` on the tiny LLaDA-format model, reloading what it saved, determinism, DDP
under torchrun against gradient accumulation in one process, and the CLI's errors."""
import json, os, subprocess, sys
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file
from conftest import ROOT
from diffusion_lm.pretrained import make_tiny_llada, load_pretrained, encode_pairs, evaluate_sft

ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}
WORDS = ['cat', 'dog', 'sun', 'sea', 'red', 'ink', 'owl', 'fig']
PAIRS = [(f'repeat: {w}', f'{w} {w} {w}') for w in WORDS]


def cli(*args, runner=(sys.executable, '-m')):
    "Run the fine-tune CLI (optionally under torchrun) and return the completed process."
    cmd = [*runner, 'diffusion_lm.pretrained', *map(str, args)]
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)


def summary(r) -> dict:
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    "The tiny LLaDA-format model, written by the CLI itself (--make-tiny), and the JSONL pairs."
    d = tmp_path_factory.mktemp('pretrained')
    r = cli('--make-tiny', d / 'tiny')
    assert r.returncode == 0, r.stderr
    data = d / 'pairs.jsonl'
    data.write_text(''.join(json.dumps({'prompt': p, 'answer': a}) + '\n' for p, a in PAIRS))
    return d / 'tiny', data


COMMON = ['--batch-size', 4, '--lr', 1e-2, '--min-lr', 1e-3, '--warmup-steps', 5, '--weight-decay', 0, '--device', 'cpu', '--no-progress']


def test_cli_finetunes_and_the_output_reloads(tiny, tmp_path):
    "The CLI trains, lowers the fixed-draw SFT loss, and saves a folder that reloads as exactly the trained model."
    model, data = tiny
    out = tmp_path / 'ft'
    s = summary(cli('--model', model, '--data', data, '--out', out, '--steps', 100, '--eval-draws', 4, *COMMON))
    assert s['step'] == 100 and s['out_dir'] == str(out) and s['gradient_checkpointing'] is True and s['n_pairs'] == 8
    assert s['eval_after'] < 0.6 * s['eval_before']
    names = {p.name for p in out.iterdir()}
    assert {'config.json', 'model.safetensors', 'modeling_tiny_llada.py', 'configuration_tiny_llada.py', 'tokenizer.json',
            'finetune_config.json', 'finetune_metrics.jsonl'} <= names
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]            # no temporary folder left
    assert json.loads((out / 'config.json').read_text())['auto_map']['AutoModel'] == 'modeling_tiny_llada.TinyLLaDAModelLM'
    assert len((out / 'finetune_metrics.jsonl').read_text().splitlines()) == 100
    # it reloads through trust_remote_code, with the mask id from its config ...
    ft = load_pretrained(out)
    assert type(ft.hf).__module__.startswith('transformers_modules.') and ft.mask_id == 102
    # ... its weights moved away from the pre-trained ones ...
    before, after = load_file(model / 'model.safetensors'), load_file(out / 'model.safetensors')
    assert sorted(before) == sorted(after) and not all(torch.equal(before[k], after[k]) for k in before)
    # ... and it is the trained model: the same fixed-draw evaluation gives the run's eval_after
    torch.set_num_threads(1)
    ex = encode_pairs(ft.tokenizer, PAIRS)
    assert evaluate_sft(ft, ex, batch_size=4, n_draws=4) == pytest.approx(s['eval_after'], abs=1e-6)
    assert evaluate_sft(load_pretrained(model), ex, batch_size=4, n_draws=4) == pytest.approx(s['eval_before'], abs=1e-6)


def test_cli_is_deterministic(tiny, tmp_path):
    "Two runs with the same seed write identical weights; another seed writes other weights."
    model, data = tiny
    w = []
    for name, seed in (('a', 0), ('b', 0), ('c', 1)):
        summary(cli('--model', model, '--data', data, '--out', tmp_path / name, '--steps', 3, '--seed', seed, *COMMON))
        w.append(load_file(tmp_path / name / 'model.safetensors'))
    assert all(torch.equal(w[0][k], w[1][k]) for k in w[0])
    assert not all(torch.equal(w[0][k], w[2][k]) for k in w[0])


def test_ddp_two_processes_equal_accumulation_in_one(tiny, tmp_path):
    "torchrun with 2 gloo processes and grad_accum=1 trains the same weights as 1 process with grad_accum=2."
    model, data = tiny
    args = ['--model', model, '--data', data, '--steps', 3, '--batch-size', 2, '--lr', 1e-3, '--warmup-steps', 1,
            '--device', 'cpu', '--no-progress', '--no-gradient-checkpointing']
    s1 = summary(cli(*args, '--out', tmp_path / 'one', '--grad-accum', 2))
    s2 = summary(cli(*args, '--out', tmp_path / 'ddp', '--grad-accum', 1,
                     runner=(sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', '-m')))
    assert s2['world_size'] == 2 and s1['world_size'] == 1
    a, b = load_file(tmp_path / 'one' / 'model.safetensors'), load_file(tmp_path / 'ddp' / 'model.safetensors')
    assert all(torch.allclose(a[k], b[k], atol=1e-6, rtol=0) for k in a)
    assert s2['last_loss'] == pytest.approx(s1['last_loss'], abs=1e-6)
    assert not all(torch.equal(a[k], load_file(model / 'model.safetensors')[k]) for k in a)   # (it did train)


def test_cli_errors_are_clear(tiny, tmp_path):
    "A missing model folder, a wrong mask id, an existing output and a missing data file fail with a clear message."
    model, data = tiny
    r = cli('--model', tmp_path / 'nope', '--data', data, '--out', tmp_path / 'x', '--steps', 1, '--no-progress')
    assert r.returncode != 0 and 'no such folder' in r.stderr
    r = cli('--model', model, '--data', data, '--out', tmp_path / 'x', '--steps', 1, '--mask-id', 5, '--no-progress')
    assert r.returncode != 0 and 'pre-trained with mask id 102' in r.stderr
    r = cli('--model', model, '--data', tmp_path / 'none.jsonl', '--out', tmp_path / 'x', '--steps', 1, '--no-progress')
    assert r.returncode != 0 and 'no such data file' in r.stderr
    (tmp_path / 'exists').mkdir()
    r = cli('--model', model, '--data', data, '--out', tmp_path / 'exists', '--steps', 1, '--no-progress')
    assert r.returncode != 0 and '--overwrite' in r.stderr
    assert not (tmp_path / 'x').exists()
