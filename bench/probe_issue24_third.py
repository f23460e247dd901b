"""Issue 24, third hostile probe: bad inputs and faults outside `tests/test_bad_inputs.py` and the second probe
(`bench/results/probe_issue24_second.md`), each run and classified.

Every case runs in a fresh folder `<root>/cases/<id>/w` filled by its setup (copies of a finished tiny run, the tiny
LLaDA-format model of `diffusion_lm.testing`, a chat file, ...), with OMP_NUM_THREADS=1 and a 120 s limit. Command lines
run forked from this process (the same `main(argv)` the console scripts call: `tests/test_bad_inputs.py`'s `run`), the
notebooks under papermill. Every file of the folder is hashed before and after. Verdicts:

- `well`: exit != 0 with one line `<prog>: ...` naming the problem (a notebook: one `UserError` line), nothing lost; or a
  success the case expects (`ok=True`), nothing lost;
- `unclear`: a one-line refusal whose line does not name the problem or its fix (set by review: `UNCLEAR`), a value
  accepted that means nothing (exit 0 where a refusal was due), or a failure without the one-line form;
- `traceback`: a traceback (a notebook: an error other than `UserError`);
- `hang`: killed after 120 s;
- `data lost`: a file the user had was changed or removed.

    python bench/probe_issue24_third.py --out bench/results/probe_issue24_third_after.json [--only id1,id2]
    python bench/probe_issue24_third.py --table before.json after.json > bench/results/probe_issue24_third.md
"""
from __future__ import annotations
import argparse, json, os, shutil, signal, subprocess, sys, time, traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tests'))
os.environ['OMP_NUM_THREADS'] = '1'

import torch  # noqa: E402
import test_bad_inputs as tb  # noqa: E402
from test_bad_inputs import run, api, train_argv, snapshot, cut, ckpt, Proc, NB_DIR, metrics  # noqa: E402
from conftest import kernel_name  # noqa: E402
from diffusion_lm.testing import make_tiny_llada  # noqa: E402
from diffusion_lm.sft_data import write_jsonl  # noqa: E402
from diffusion_lm.checkpoint import find_latest_checkpoint, load_checkpoint, list_checkpoints  # noqa: E402

torch.set_num_threads(1)
TIMEOUT = 120
UNCLEAR = {'ft-config-vocab-negative': "outputs (0..-"}   # id -> a text that marks its line as unclear (by review)
# By review, these cases' acceptance is the right answer (a value that means something, a resume, a documented option):
ACCEPTED_BY_DESIGN = {
    'train-eval-batches-1000000000000': 'capped by the validation split', 'train-n-layer-underscore': "Python's 1_0 is 10",
    'train-config-out-dir-number': 'a folder named 5 in the project, as --set out_dir=5',
    'resume-future-empty-step': 'an empty step folder is skipped', 'resume-lock-held-by-pid-1': 'PID 1 is not a trainer: a stale lock',
    'resume-metrics-empty': 'resumes', 'resume-checkpoint-step-mismatch': 'resumes from the renamed checkpoint',
    'ft-config-hidden-size-string': "the model code's own field, unread by the tiny model",
    'pal-alphabet-huge': 'deduplicated', 'pal-model-truncated-step': 'samples with the EMA weights, which verify',
    'pal-corpus-out-missing-folder': 'creates the folder', 'nb-sample-out-file-missing-folder': 'creates the folder',
    'nb-sample-checkpoint-truncated-step': 'samples with the EMA weights, which verify', 'slurm-qos-': 'no QOS',
    'slurm-launcher-srun-one-node': 'srun on one node', 'slurm-launcher-torchrun-no-gpus': 'torchrun on CPUs',
    'slurm-env-setup-newline': 'a multi-line set-up; the #SBATCH line after commands is a comment',
    'slurm-sbatch-wrap': 'a raw sbatch option, as documented', 'slurm-sbatch-output-redirect': 'a raw sbatch option, as documented',
    'slurm-finetune-nodes-without-gpus': 'DDP on CPU nodes', 'slurm-continue-without-run': 'submits a new run',
    'resume-step-symlinked': 'resumes from the checkpoint the link holds (step 2) and logs steps 3-6 again, as after a '
                             'damaged newest checkpoint; the link is replaced, the folder it points to kept',
}


@dataclass
class Case:
    id: str
    prog: str                       # train, finetune, palindromes, slurm, api, cmd, nb-<name>, custom
    args: Callable                  # f(w) -> argv / papermill params / the call / a custom f(w) -> (verdict, detail)
    setup: Callable | None = None   # f(w)
    ok: bool = False                # a success is the right answer
    may_change: tuple = ()          # relative paths (prefixes) a success may change
    area: str = ''
    env: Callable | None = None


# ---------------------------------------------------------------- the shared starting material
BASE: Path = Path('/tmp/probeH/base')

def make_base(root: Path):
    "A finished tiny run (4 steps, checkpoints 2 and 4), the tiny LLaDA model and a chat file, under root/base."
    global BASE
    BASE = root / 'base'
    if (BASE / 'done').exists(): return
    shutil.rmtree(BASE, ignore_errors=True); BASE.mkdir(parents=True)
    p = run('train', train_argv(BASE / 'run'), BASE, BASE / 'logs')
    assert p.code == 0, p.stderr[-3000:]
    make_tiny_llada(BASE / 'm')
    write_jsonl(BASE / 'chat.jsonl', [{'prompt': 'say hi', 'response': 'hi'}] * 8)
    (BASE / 'done').write_text('')


def with_run(w): shutil.copytree(BASE / 'run', w / 'run', symlinks=True)
def with_llada(w): shutil.copytree(BASE / 'm', w / 'm'); shutil.copy(BASE / 'chat.jsonl', w / 'chat.jsonl')
def with_all(w): with_run(w); with_llada(w)

def damaged_run(f):
    def setup(w): with_run(w); f(w / 'run')
    return setup

def damaged_llada(f):
    def setup(w): with_llada(w); f(w / 'm')
    return setup

def with_file(name, data):
    def setup(w):
        (w / name).parent.mkdir(parents=True, exist_ok=True)
        (w / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    return setup

def both(*fs):
    def setup(w):
        for f in fs: f(w)
    return setup

def edit_json(path: Path, f):
    d = json.loads(path.read_text()); d = f(d) or d; path.write_text(json.dumps(d))

def fake_bin(**scripts):
    "Fake programs in w/bin (sh bodies), put first on PATH by env=bin_path."
    def setup(w):
        (w / 'bin').mkdir(exist_ok=True)
        for name, body in scripts.items():
            (w / 'bin' / name).write_text('#!/bin/sh\n' + body.replace('{w}', str(w)) + '\n'); (w / 'bin' / name).chmod(0o755)
    return setup

def bin_path(w): return {'PATH': f'{w / "bin"}:{os.environ["PATH"]}'}


# ---------------------------------------------------------------- case builders
CASES: list[Case] = []

def T(id, sets, **kw):
    "diffusion-lm-train with the tiny config, out_dir w/run, then `sets`."
    CASES.append(Case(id, 'train', lambda w, s=tuple(sets): train_argv(w / 'run', *s), area='train', **kw))

def TR(id, sets, damage, **kw):
    "diffusion-lm-train resuming a copy of the finished run, damaged by `damage(run)` first."
    T(id, ['max_steps=6', *sets], setup=damaged_run(damage), **kw)

def TC(id, text, **kw):
    "diffusion-lm-train --config <a file holding `text`> (the tiny settings as --set, less the fields the file sets)."
    try: keys = set(json.loads(text)) if text.strip().startswith('{') else set()
    except ValueError: keys = set()
    def argv(w):
        sets = [f'{k}={v}' for k, v in {**tb.TINY, 'out_dir': w / 'run'}.items() if k not in keys]
        return ['--preset', 'shakespeare-llada', '--no-progress', '--config', str(w / 'cfg.json'), '--set', *sets]
    CASES.append(Case(id, 'train', argv, setup=with_file('cfg.json', text), area='train --config', **kw))

def FT(id, sets, setup=with_llada, **kw):
    "diffusion-lm-finetune on the tiny LLaDA model (2 steps, out_dir w/ft), then `sets`."
    CASES.append(Case(id, 'finetune', lambda w, s=tuple(sets): [
        '--no-progress', '--set', f'model={w}/m', f'data={w}/chat.jsonl', f'out_dir={w}/ft', 'device=cpu', 'max_steps=2',
        'context_length=64', 'batch_size=2', 'warmup_steps=1', *[x.format(w=w) for x in s]],
        setup=setup, area='finetune', **kw))

def FP(id, argv, setup=with_llada, **kw):
    "diffusion-lm-finetune --plan ..."
    CASES.append(Case(id, 'finetune', lambda w, a=tuple(argv): [x.format(w=w) for x in a], setup=setup, area='finetune --plan', **kw))

PAL = ['--alphabet', 'abcde ', '--length', '5', '--steps', '2', '--n-samples', '2']
def P(id, argv, setup=with_run, **kw):
    "diffusion-lm-palindromes on the tiny character run (a small alphabet of its characters), then `argv`."
    CASES.append(Case(id, 'palindromes', lambda w, a=tuple(argv): ['--model', f'{w}/run', *PAL, *[x.format(w=w) for x in a]],
                      setup=setup, area='palindromes', **kw))

def S(id, argv, **kw):
    "diffusion-lm-slurm `argv` ({w}, {nb}: nbs/train.ipynb, {snb}: nbs/sample.ipynb)."
    CASES.append(Case(id, 'slurm', lambda w, a=tuple(argv): [x.format(w=w, nb=NB_DIR / 'train.ipynb', snb=NB_DIR / 'sample.ipynb')
                                                              for x in a], area='slurm', **kw))

def A(id, call, **kw):
    "A call of the Python API, made as a command makes it."
    CASES.append(Case(id, 'api', lambda w, c=call: api(lambda: c(w)), area='python API', **kw))

def NB(id, nb, params, **kw):
    "A notebook under papermill: `params` ({w}) over the notebook's tiny settings."
    kw.setdefault('setup', with_run if nb == 'sample' else None)
    CASES.append(Case(id, f'nb-{nb}', lambda w, p=dict(params): {k: (v.format(w=w) if isinstance(v, str) else v)
                                                                 for k, v in p.items()}, area=f'{nb}.ipynb', **kw))

def CMD(id, argv, **kw):
    "A real program: `argv` ({w}, {py}: this interpreter)."
    CASES.append(Case(id, 'cmd', lambda w, a=tuple(argv): [x.format(w=w, py=sys.executable) for x in a], **kw))

def CUSTOM(id, f, **kw):
    CASES.append(Case(id, 'custom', f, **kw))


RESUMED = ('run/metrics.jsonl', 'run/result.json', 'run/samples.jsonl', 'run/checkpoints/latest', 'run/.diffusion_lm.json',
           'run/config.json')

# ======== diffusion-lm-train: every numeric option with NaN, inf, huge, negative values; wrong types
for name, vals in {
    'beta1': ['nan', '1', '-0.1'], 'beta2': ['inf', '1.5'], 'grad_clip': ['nan', '-1', 'inf'], 'dropout': ['nan', '-0.1'],
    'ema_decay': ['nan', '-0.5'], 'temperature': ['nan', 'inf'], 'eval_batches': ['0', '-1', '1000000000000'],
    'n_samples': ['-1'], 'sample_steps': ['0', 'nan'], 'batch_size': ['0', '-4'], 'n_layer': ['0'], 'n_head': ['0'],
    'n_embd': ['-32'], 'context_length': ['-5', 'nan'], 'keep_last': ['nan'], 'checkpoint_interval': ['nan'],
    'log_interval': ['inf'], 'eval_interval': ['1e400'], 'warmup_steps': ['nan'], 'epochs': ['nan', '-1'],
    'lr': ['1e-400', '0x10'], 'min_lr': ['-1'], 'weight_decay': ['-0.1', 'nan'], 'seed': ['nan', '1.5'],
    'max_steps': ['nan', 'inf', '-1', '0'], 'sample_interval': ['nan', '1e30'],
}.items():
    for v in vals: T(f'train-{name.replace("_", "-")}-{v}', [f'{name}={v}'])
T('train-block-size-zero', ['method=block', 'block_size=0'])
T('train-block-size-negative', ['method=block', 'block_size=-4'])
T('train-cond-dim-negative', ['method=sedd', 'cond_dim=-1'])
T('train-lr-schedule-unknown', ['lr_schedule=exp'])
T('train-init-unknown', ['init=xavier'])
T('train-gates-maybe', ['gates=maybe'])
T('train-compile-yes', ['compile=yes'])
T('train-estimator-unknown', ['estimator=nope'])
T('train-importance-sampling-2', ['importance_sampling=2'])
T('train-graph-unknown', ['method=sedd', 'graph=nope'])
T('train-noise-unknown', ['method=sedd', 'noise=nope'])
T('train-clip-reversed', ['method=block', 'clip=[0.9, 0.1]'])
T('train-clip-nan', ['method=block', 'clip=[nan, 1]'])
T('train-sample-options-not-json', ['sample_options=notjson'])
T('train-sample-options-threshold-2', ['sampler=confidence', 'sample_options={"threshold": 2}'])
T('train-resume-maybe', ['resume=maybe'])
T('train-device-cuda-abc', ['device=cuda:abc'])
T('train-device-cuda-negative', ['device=cuda:-1'])
T('train-precision-fp8', ['precision=fp8'])
T('train-n-layer-underscore', ['n_layer=1_0'])
T('train-max-steps-2e0', ['max_steps=2e0'])
T('train-lr-expression', ['lr=1/0'])
T('train-set-unicode-key', ['lé=1'])
T('train-dataset-missing-folder', ['dataset=/nonexistent/folder'])
T('train-dataset-a-file', ['dataset={w}/cfg.json'.replace('{w}', '/tmp/probeH/base/chat.jsonl')])
T('train-dataset-empty-folder', ['dataset=/tmp/probeH/empty'], setup=lambda w: Path('/tmp/probeH/empty').mkdir(exist_ok=True))
CASES.append(Case('train-init-from-random-bytes', 'train', lambda w: train_argv(w / 'run', f'init_from={w}/x.bin'),
                  setup=with_file('x.bin', os.urandom(4096)), area='train'))
CASES.append(Case('train-init-from-empty-folder', 'train', lambda w: train_argv(w / 'run', f'init_from={w}/e'),
                  setup=lambda w: (w / 'e').mkdir(), area='train'))
CASES.append(Case('train-init-from-truncated-step', 'train',
                  lambda w: train_argv(w / 'ft', f'init_from={w}/run/checkpoints/step_000004'),
                  setup=damaged_run(lambda r: cut(ckpt(r, 4) / 'ema.safetensors' if (ckpt(r, 4) / 'ema.safetensors').exists()
                                                  else ckpt(r, 4) / 'model.safetensors')), area='train'))
CASES.append(Case('train-init-from-fine-tuning-run', 'train', lambda w: train_argv(w / 'x', f'init_from={w}/ft'),
                  setup=lambda w: ((w / 'ft').mkdir(), (w / 'ft' / 'finetune_config.json').write_text('{}')), area='train'))
# out_dir: unicode, symlinks, devices, loops
CASES.append(Case('train-out-dir-unicode', 'train', lambda w: train_argv(w / 'été ☃ run'), ok=True, area='train'))
CASES.append(Case('train-out-dir-newline', 'train', lambda w: train_argv(w / 'a\nb'), ok=True, area='train'))
CASES.append(Case('train-out-dir-symlink-to-run', 'train', lambda w: train_argv(w / 'link', 'max_steps=6'), ok=True,
                  setup=lambda w: (with_run(w), (w / 'link').symlink_to(w / 'run')), may_change=RESUMED, area='train'))
CASES.append(Case('train-out-dir-dangling-symlink', 'train', lambda w: train_argv(w / 'link'),
                  setup=lambda w: (w / 'link').symlink_to(w / 'nowhere'), area='train'))
CASES.append(Case('train-out-dir-symlink-loop', 'train', lambda w: train_argv(w / 'loop'),
                  setup=lambda w: (w / 'loop').symlink_to(w / 'loop'), area='train'))
CASES.append(Case('train-out-dir-dev-null', 'train', lambda w: train_argv(Path('/dev/null')), area='train'))
CASES.append(Case('train-out-dir-proc', 'train', lambda w: train_argv(Path('/proc/run')), area='train'))
# --config files
TC('train-config-yaml', 'lr: 0.001\nmax_steps: 2\n')
TC('train-config-lr-text', '{"lr": "fast"}')
TC('train-config-max-steps-null', '{"max_steps": null}', ok=True)
TC('train-config-max-steps-true', '{"max_steps": true}')
TC('train-config-n-layer-list', '{"n_layer": [1]}')
TC('train-config-sample-options-string', '{"sample_options": "x"}')
TC('train-config-out-dir-number', '{"out_dir": 5}')
TC('train-config-dataset-null', '{"dataset": null}', ok=True)
TC('train-config-empty-file', '')
TC('train-config-bom', '\ufeff{"lr": 0.001}')
TC('train-config-lr-1e999', '{"lr": 1e999}')
TC('train-config-lr-nan-literal', '{"lr": NaN}')
TC('train-config-nested', '{"config": {"lr": 0.001}}')
TC('train-config-unknown-key', '{"learning_rate": 0.001}')
TC('train-config-seed-float', '{"seed": 1.5}')
CASES.append(Case('train-preset-empty', 'train', lambda w: ['--preset', '', '--set', f'out_dir={w}/run'], area='train'))
# run folders: damaged files, resumed with changed settings
TR('resume-checkpoints-deleted', [], lambda r: shutil.rmtree(r / 'checkpoints'))
TR('resume-config-json-deleted', [], lambda r: (r / 'config.json').unlink(), ok=True, may_change=RESUMED)
TR('resume-metrics-a-folder', [], lambda r: ((r / 'metrics.jsonl').unlink(), (r / 'metrics.jsonl').mkdir()))
TR('resume-result-a-folder', [], lambda r: ((r / 'result.json').unlink(), (r / 'result.json').mkdir()))
TR('resume-samples-garbage-middle', [], lambda r: (r / 'samples.jsonl').write_text('garbage\n' + (r / 'samples.jsonl').read_text()))
TR('resume-latest-a-folder', [], lambda r: ((r / 'checkpoints' / 'latest').unlink(), (r / 'checkpoints' / 'latest').mkdir()),
   ok=True, may_change=RESUMED)
TR('resume-future-empty-step', [], lambda r: (r / 'checkpoints' / 'step_999999').mkdir())
TR('resume-step-symlinked', [], lambda r: (shutil.rmtree(ckpt(r, 4)), ckpt(r, 4).symlink_to(ckpt(r, 2))))
CASES[-1].may_change = ('run/metrics.jsonl', 'run/samples.jsonl', 'run/checkpoints/step_000004')   # see the table's note
TR('resume-state-deleted', [], lambda r: (ckpt(r, 4) / 'state.pt').unlink(), ok=True, may_change=RESUMED + ('run/checkpoints/step_000004',))
TR('resume-ema-deleted', [], lambda r: [p.unlink() for p in ckpt(r, 4).glob('ema*')], ok=True, may_change=RESUMED + ('run/checkpoints/step_000004',))
TR('resume-checkpoint-config-deleted', [], lambda r: (ckpt(r, 4) / 'config.json').unlink(), ok=True, may_change=RESUMED + ('run/checkpoints/step_000004',))
TR('resume-changed-lr', ['lr=0.01'], lambda r: None, ok=True, may_change=RESUMED)
TR('resume-changed-batch-size', ['batch_size=8'], lambda r: None, ok=True, may_change=RESUMED)
TR('resume-changed-dataset', ['dataset=wiki-bytes'], lambda r: None)
TR('resume-changed-context', ['context_length=16'], lambda r: None)
TR('resume-changed-n-head', ['n_head=4'], lambda r: None)
TR('resume-changed-seed', ['seed=7'], lambda r: None, ok=True, may_change=RESUMED)
TR('resume-lock-held-by-pid-1', [], lambda r: (r / '.lock').write_text(json.dumps({'pid': 1, 'host': os.uname().nodename,
                                                                                   'started': '2026'})))
TR('resume-lock-garbage', [], lambda r: (r / '.lock').write_text('garbage'), ok=True, may_change=RESUMED)
TR('resume-pid-file-garbage', [], lambda r: (r / 'train.pid').write_text('garbage'), ok=True, may_change=RESUMED + ('run/train.pid',))
TR('resume-metrics-empty', [], lambda r: (r / 'metrics.jsonl').write_text(''))
TR('resume-metrics-binary', [], lambda r: (r / 'metrics.jsonl').write_bytes(os.urandom(300)))
TR('resume-marker-a-folder', [], lambda r: ((r / '.diffusion_lm.json').unlink(), (r / '.diffusion_lm.json').mkdir()))
TR('resume-config-json-a-list', [], lambda r: (r / 'config.json').write_text('[]'), ok=True, may_change=RESUMED)
TR('resume-meta-json-a-list', [], lambda r: [(ckpt(r, s) / 'meta.json').write_text('[]') for s in (2, 4)])
TR('resume-checkpoint-step-mismatch', [], lambda r: ckpt(r, 4).rename(ckpt(r, 8)))
TR('resume-other-preset', [], lambda r: None)     # placeholder replaced below
CASES[-1] = Case('resume-other-preset', 'train', lambda w: train_argv(w / 'run', preset='shakespeare-ar'), setup=with_run, area='train')

# ======== diffusion-lm-finetune
FT('ft-context-length-nan', ['context_length=nan'])
FT('ft-batch-size-zero', ['batch_size=0'])
FT('ft-grad-accum-negative', ['grad_accum=-1'])
FT('ft-lora-maybe', ['lora=maybe'])
FT('ft-lora-alpha-nan', ['lora=True', 'lora_alpha=nan'])
FT('ft-lora-alpha-negative', ['lora=True', 'lora_alpha=-1'])
FT('ft-lora-targets-empty', ['lora=True', 'lora_targets=[]'])
FT('ft-lora-targets-string', ['lora=True', 'lora_targets=q_proj'])
FT('ft-lora-dropout-one', ['lora=True', 'lora_dropout=1'])
FT('ft-warmup-negative', ['warmup_steps=-1'])
FT('ft-log-interval-zero', ['log_interval=0'])
FT('ft-keep-last-zero', ['keep_last=0'])
FT('ft-min-mask-rate-nan', ['min_mask_rate=nan'])
FT('ft-min-mask-rate-one', ['min_mask_rate=1'])
FT('ft-truncate-maybe', ['truncate=maybe'])
FT('ft-dtype-unknown', ['dtype=fp8'])
FT('ft-eval-examples-negative', ['eval_examples=-1'])
FT('ft-data-not-utf8', ['data={w}/bad.jsonl'], setup=both(with_llada, with_file('bad.jsonl', 'café'.encode('latin-1') + b'\n')))
FT('ft-data-binary', ['data={w}/bad.jsonl'], setup=both(with_llada, with_file('bad.jsonl', os.urandom(200))))
FT('ft-data-no-response', ['data={w}/bad.jsonl'], setup=both(with_llada, with_file('bad.jsonl', '{"prompt": "x"}\n')))
FT('ft-data-unknown-role', ['data={w}/bad.jsonl'], setup=both(with_llada, with_file(
    'bad.jsonl', '{"messages": [{"role": "wizard", "content": "x"}, {"role": "assistant", "content": "y"}]}\n')))
FT('ft-data-empty-messages', ['data={w}/bad.jsonl'], setup=both(with_llada, with_file('bad.jsonl', '{"messages": []}\n')))
FT('ft-data-content-number', ['data={w}/bad.jsonl'], setup=both(with_llada, with_file(
    'bad.jsonl', '{"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": 6}]}\n')))
FT('ft-data-parquet', ['data={w}/d.parquet'], setup=both(with_llada, with_file('d.parquet', b'PAR1\x00\x00PAR1')))
FT('ft-val-data-garbage', ['val_data={w}/v.jsonl', 'eval_draws=1'], setup=both(with_llada, with_file('v.jsonl', '{garbage\n')))
FT('ft-data-missing', ['data={w}/nope.jsonl'])
FT('ft-model-empty-folder', ['model={w}/e'], setup=both(with_llada, lambda w: (w / 'e').mkdir()))
FT('ft-model-a-file', ['model={w}/chat.jsonl'])
FT('ft-model-config-missing', [], setup=damaged_llada(lambda m: (m / 'config.json').unlink()))
FT('ft-model-only-config', ['model={w}/c'], setup=both(with_llada, lambda w: ((w / 'c').mkdir(), shutil.copy(w / 'm' / 'config.json', w / 'c'))))
FT('ft-model-symlink-loop', ['model={w}/loop'], setup=both(with_llada, lambda w: (w / 'loop').symlink_to(w / 'loop')))
FT('ft-tokenizer-config-truncated', [], setup=damaged_llada(lambda m: cut(m / 'tokenizer_config.json')))
FT('ft-special-tokens-map-garbage', [], setup=damaged_llada(lambda m: (m / 'special_tokens_map.json').write_text('{x')))
FT('ft-config-vocab-negative', [], setup=damaged_llada(lambda m: edit_json(m / 'config.json', lambda d: d.update(vocab_size=-1))))
FT('ft-config-mask-id-beyond-vocab', [], setup=damaged_llada(lambda m: edit_json(m / 'config.json', lambda d: d.update(mask_token_id=10**9))))
FT('ft-config-hidden-size-string', [], setup=damaged_llada(lambda m: edit_json(m / 'config.json', lambda d: d.update(hidden_size='big'))))
FT('ft-weights-deleted', [], setup=damaged_llada(lambda m: (m / 'model.safetensors').unlink()))
FT('ft-out-dir-unicode', ['out_dir={w}/ft été'], ok=True)
FT('ft-out-dir-dangling-symlink', ['out_dir={w}/link'], setup=both(with_llada, lambda w: (w / 'link').symlink_to(w / 'nowhere')))
FT('ft-run-model-other-tokenizer', ['model={w}/run', 'data=wiki-bytes', 'context_length=32'], setup=with_all)
FT('ft-run-model-data-unknown', ['model={w}/run', 'data=nope-data', 'context_length=32'], setup=with_all)
FT('ft-run-model-context-too-long', ['model={w}/run', 'data=shakespeare-char', 'context_length=64'], setup=with_all)
FT('ft-resume-changed-lora-rank', ['lora=True', 'lora_rank=4'], setup=with_llada)   # replaced below: a run to resume
CASES[-1] = Case('ft-resume-changed-lora', 'custom', None, area='finetune')        # filled in later (needs two runs)
CASES.pop()
CASES.append(Case('ft-config-yaml', 'finetune', lambda w: ['--config', f'{w}/c.yaml'], setup=with_file('c.yaml', 'lr: 1\n'),
                  area='finetune'))
CASES.append(Case('ft-config-lr-string', 'finetune', lambda w: ['--config', f'{w}/c.json', '--set', f'model={w}/nothing'],
                  setup=with_file('c.json', '{"lr": "fast"}'), area='finetune'))
CASES.append(Case('ft-config-missing', 'finetune', lambda w: ['--config', f'{w}/c.json'], area='finetune'))
FP('ft-plan-devices-negative', ['--plan', '--devices', '-1', '--device-memory', '80GB', '--set', 'model={w}/m'])
FP('ft-plan-devices-text', ['--plan', '--devices', 'nan', '--device-memory', '80GB', '--set', 'model={w}/m'])
FP('ft-plan-memory-negative', ['--plan', '--devices', '1', '--device-memory', '-5GB', '--set', 'model={w}/m'])
FP('ft-plan-memory-zero', ['--plan', '--devices', '1', '--device-memory', '0', '--set', 'model={w}/m'])
FP('ft-plan-memory-nan', ['--plan', '--devices', '1', '--device-memory', 'nanGB', '--set', 'model={w}/m'])
FP('ft-plan-memory-unit-unknown', ['--plan', '--devices', '1', '--device-memory', '80XB', '--set', 'model={w}/m'])
FP('ft-plan-config-missing', ['--plan', '--devices', '1', '--device-memory', '80GB', '--set', 'model={w}/m'],
   setup=damaged_llada(lambda m: (m / 'config.json').unlink()))
FP('ft-plan-run-folder', ['--plan', '--devices', '1', '--device-memory', '80GB', '--set', 'model={w}/run'], setup=with_run, ok=True)
FP('ft-plan-unknown-name', ['--plan', '--devices', '1', '--device-memory', '80GB', '--set', 'model=gpt5'], setup=None)
FP('ft-plan-context-nan', ['--plan', '--devices', '1', '--device-memory', '80GB', '--set', 'model={w}/m', 'context_length=nan'])
FP('ft-plan-without-model', ['--plan', '--devices', '1', '--device-memory', '80GB'], setup=None)
FP('ft-no-arguments', [], setup=None)

# ======== diffusion-lm-palindromes
for opt, v in [('--steps', '0'), ('--steps', '-5'), ('--n-samples', '-1'), ('--length', 'nan'), ('--length', '1e3'),
               ('--length', '-1'), ('--repair-candidates', '0'), ('--repair-candidates', '1000000000'),
               ('--two-letter-weight', 'nan'), ('--one-letter-weight', 'inf'), ('--words-min-zipf', '-1'),
               ('--words-min-zipf', 'nan'), ('--min-zipf', '-1'), ('--sampler', 'nope'), ('--sampler', 'euler'),
               ('--temperature', '-1'), ('--seed', 'nan'), ('--repair-rounds', '1000000000'), ('--device', 'cuda:abc')]:
    P(f'pal-{opt[2:]}-{v}', [opt, v] + (['--words'] if 'weight' in opt or 'words-' in opt else []))
P('pal-judge-unknown', ['--judge', 'nope'])
P('pal-judge-a-file', ['--judge', '{w}/run/metrics.jsonl'])
P('pal-json-unicode', ['--json', '{w}/été ☃.json'], ok=True)
P('pal-json-dev-full', ['--json', '/dev/full'])
P('pal-json-dangling-symlink', ['--json', '{w}/link.json'], setup=both(with_run, lambda w: (w / 'link.json').symlink_to(w / 'x' / 'y')))
P('pal-alphabet-space-only', ['--alphabet', ' '])
P('pal-alphabet-huge', ['--alphabet', 'ab' * 500000])
P('pal-words-alphabet', ['--words', '--alphabet', 'xyz'])
CASES.append(Case('pal-model-truncated-step', 'palindromes', lambda w: ['--model', f'{w}/run/checkpoints/step_000004', *PAL],
                  setup=damaged_run(lambda r: cut(ckpt(r, 4) / 'model.safetensors')), area='palindromes'))
CASES.append(Case('pal-model-empty-folder', 'palindromes', lambda w: ['--model', f'{w}/e', *PAL], setup=lambda w: (w / 'e').mkdir(),
                  area='palindromes'))
CASES.append(Case('pal-model-random-bytes', 'palindromes', lambda w: ['--model', f'{w}/x.safetensors', *PAL],
                  setup=with_file('x.safetensors', os.urandom(1000)), area='palindromes'))
CASES.append(Case('pal-model-checkpoints-folder', 'palindromes', lambda w: ['--model', f'{w}/run/checkpoints', *PAL],
                  setup=with_run, area='palindromes', ok=True))
CMD('pal-eval-module-n-samples-zero', ['{py}', '-m', 'diffusion_lm.palindromes.eval', '--model', '{w}/run', '--n-samples', '0'],
    setup=with_run, area='palindromes')
CMD('pal-corpus-n-zero', ['{py}', '-m', 'diffusion_lm.palindromes.corpus', '--n', '0', '--out', '{w}/c.json'], area='palindromes')
CMD('pal-corpus-out-exists', ['{py}', '-m', 'diffusion_lm.palindromes.corpus', '--n', '5', '--out', '{w}/c.json'],
    setup=with_file('c.json', '["keep me"]'), area='palindromes')
CMD('pal-corpus-out-missing-folder', ['{py}', '-m', 'diffusion_lm.palindromes.corpus', '--n', '5', '--out', '{w}/no/c.json'],
    area='palindromes')
CMD('pal-corpus-figure-over-file', ['{py}', '-m', 'diffusion_lm.palindromes.corpus', '--n', '5', '--out', '{w}/c.json',
                                    '--figure', '{w}/keep.png'], setup=with_file('keep.png', b'PNG keep'), area='palindromes')
CMD('pal-corpus-seed-negative', ['{py}', '-m', 'diffusion_lm.palindromes.corpus', '--n', '5', '--seed', '-1', '--out', '{w}/c.json'],
    area='palindromes')

# ======== diffusion-lm-slurm
DR = ['submit', '{nb}', '--dry-run']
for opt, v in [('--nodes', '-1'), ('--gpus-per-node', 'nan'), ('--cpus-per-task', '0'), ('--procs-per-node', '0'),
               ('--procs-per-node', '-1'), ('--mem', '-5G'), ('--mem', '1e9T'), ('--time', '-5'), ('--time', 'nan'),
               ('--time', '1:99:00'), ('--signal-seconds', 'nan'), ('--kernel', 'no-such-kernel'), ('--after', '0'),
               ('--name', 'été'), ('--name', '..'), ('--name', 'a/b'), ('--gpu-type', 'a100 x'), ('--qos', '')]:
    S(f'slurm-{opt[2:]}-{v}', [*DR, opt, v])
S('slurm-launcher-srun-one-node', [*DR, '--launcher', 'srun', '--nodes', '1'])
S('slurm-launcher-torchrun-no-gpus', [*DR, '--launcher', 'torchrun', '--procs-per-node', '1'])
S('slurm-env-setup-newline', [*DR, '--env-setup', 'source x\n#SBATCH --wrap=id'])
S('slurm-sbatch-wrap', [*DR, '--sbatch=--wrap=id'])
S('slurm-sbatch-output-redirect', [*DR, '--sbatch=--output=/etc/passwd'])
S('slurm-runs-root-unicode', [*DR, '--runs-root', '{w}/été', '--name', 'ok'], ok=True)
S('slurm-sample-nb-unknown-param', ['submit', '{snb}', '--dry-run', '--set', 'preset=x'])
S('slurm-sample-nb-n-samples-text', ['submit', '{snb}', '--dry-run', '--set', 'n_samples=abc'])
S('slurm-submit-a-py-file', ['submit', str(ROOT / 'diffusion_lm' / 'cli.py'), '--dry-run'])
S('slurm-submit-nb-no-parameters', ['submit', '{w}/x.ipynb', '--dry-run'], setup=lambda w: (w / 'x.ipynb').write_text(json.dumps(
    {'cells': [{'cell_type': 'code', 'source': 'print(1)', 'metadata': {}, 'outputs': [], 'execution_count': None}],
     'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5})))
S('slurm-finetune-model-empty', ['finetune', '--dry-run', '--set', 'model='])
S('slurm-finetune-nodes-without-gpus', ['finetune', '--dry-run', '--nodes', '2', '--set', 'model=x', 'data=y'])
S('slurm-pipeline-without-pretrain', ['pipeline', '--dry-run', '--finetune', '--set', 'max_steps=5'])
S('slurm-pipeline-name-empty', ['pipeline', '--dry-run', '--name', '', '--pretrain', '--finetune'])
S('slurm-list-record-without-job-id', ['list', '--runs-root', '{w}/runs'], ok=True,
  setup=lambda w: ((w / 'runs' / 'r').mkdir(parents=True), (w / 'runs' / 'r' / 'job.json').write_text('{"name": "r"}')))
S('slurm-list-record-huge-number', ['list', '--runs-root', '{w}/runs'], ok=True,
  setup=lambda w: ((w / 'runs' / 'r').mkdir(parents=True), (w / 'runs' / 'r' / 'job.json').write_text('{"job_id": 1e999}')))
S('slurm-list-record-binary', ['list', '--runs-root', '{w}/runs'], ok=True,
  setup=lambda w: ((w / 'runs' / 'r').mkdir(parents=True), (w / 'runs' / 'r' / 'job.json').write_bytes(os.urandom(100))))
S('slurm-list-runs-root-missing', ['list', '--runs-root', '{w}/nope'])
S('slurm-wait-timeout-overflow', ['wait', '4242', '--timeout', '1e400'])
S('slurm-wait-job-zero', ['wait', '0'])
S('slurm-wait-job-negative', ['wait', '--', '-1'])
S('slurm-wait-job-huge', ['wait', '99999999999999999999'])
S('slurm-continue-without-run', ['submit', '{nb}', '--runs-root', '{w}/runs', '--name', 'new', '--continue', '--set', 'max_steps=5'],
  setup=fake_bin(sbatch='touch {w}/sbatch-called; echo 4242'), env=bin_path)
S('slurm-sbatch-fails', ['submit', '{nb}', '--runs-root', '{w}/runs', '--name', 's', '--set', 'max_steps=5'],
  setup=fake_bin(sbatch='echo "sbatch: error: Batch job submission failed: Invalid account" >&2; exit 1'), env=bin_path)
S('slurm-sbatch-garbage-answer', ['submit', '{nb}', '--runs-root', '{w}/runs', '--name', 's', '--set', 'max_steps=5'],
  setup=fake_bin(sbatch='echo "Submitted to the moon"'), env=bin_path)
S('slurm-submit-twice-same-name', ['submit', '{nb}', '--runs-root', '{w}/runs', '--name', 's', '--set', 'max_steps=5'],
  setup=both(fake_bin(sbatch='echo 4242'), lambda w: None), env=bin_path)   # second submission: custom below
CASES.pop()

# ======== notebooks under papermill
for k, v in [('n_samples', 0), ('n_samples', -1), ('steps', 0), ('steps', 'nan'), ('temperature', 'nan'), ('temperature', -1),
             ('top_k', 0), ('top_k', -5), ('top_p', 0), ('top_p', 1.5), ('top_p', 'nan'), ('length', 0), ('length', -1),
             ('seed', -1), ('eval_batches', -1), ('gif', 'maybe')]:
    NB(f'nb-sample-{k.replace("_", "-")}-{v}', 'sample', {k: v})
NB('nb-sample-options-a-list', 'sample', {'options': [1, 2]})
NB('nb-sample-options-not-json', 'sample', {'options': 'not json'})
NB('nb-sample-out-file-missing-folder', 'sample', {'out_file': '{w}/no/where/s.json'})
NB('nb-sample-out-file-a-folder', 'sample', {'out_file': '{w}/run'})
NB('nb-sample-eval-text-on-a-run', 'sample', {'eval_text': '{w}/t.txt'}, setup=both(with_run, with_file('t.txt', 'hello')))
NB('nb-sample-checkpoint-truncated-step', 'sample', {'checkpoint': '{w}/run/checkpoints/step_000004'},
   setup=damaged_run(lambda r: cut(ckpt(r, 4) / 'model.safetensors')))
NB('nb-sample-checkpoint-hugging-face', 'sample', {'checkpoint': '{w}/m'}, setup=with_all)
NB('nb-sample-sampler-of-ar', 'sample', {'sampler': 'ancestral'})
NB('nb-sample-device-cuda', 'sample', {'device': 'cuda'})
NB('nb-sample-prompt-nul', 'sample', {'prompt': 'a\x01b'})
NB('nb-train-preset-empty', 'train', {'preset': ''})
NB('nb-train-lr-nan', 'train', {'lr': 'nan'})
NB('nb-train-out-dir-empty', 'train', {'out_dir': ''})
NB('nb-train-sample-options-text', 'train', {'sample_options': 'x'})
NB('nb-train-resume-maybe', 'train', {'resume': 'maybe'})
NB('nb-train-max-steps-list', 'train', {'max_steps': [1]})
NB('nb-train-dataset-missing', 'train', {'dataset': '/nonexistent'})
NB('nb-finetune-steps-zero', 'finetune', {'finetune_steps': 0})
NB('nb-finetune-d-model-negative', 'finetune', {'d_model': -1})
NB('nb-finetune-out-root-empty', 'finetune', {'out_root': ''})
NB('nb-finetune-heads-not-dividing', 'finetune', {'n_heads': 3})
NB('nb-finetune-lora-rank-nan', 'finetune', {'lora_rank': 'nan'})
NB('nb-palindromes-no-checkpoints', 'palindromes', {'checkpoints': []})
NB('nb-palindromes-length-zero', 'palindromes', {'lengths': [0]}, setup=with_run)
NB('nb-palindromes-n-samples-zero', 'palindromes', {'n_samples': 0}, setup=with_run)
NB('nb-palindromes-mode-unknown', 'palindromes', {'modes': ['nope']}, setup=with_run)
NB('nb-palindromes-checkpoint-missing', 'palindromes', {'checkpoints': ['/nonexistent/run']})

# ======== the Python API
from diffusion_lm.train_config import config_from_preset, TrainConfig  # noqa: E402
from diffusion_lm import trainer, released, checkpoint as C, data as D  # noqa: E402
A('api-preset-unknown', lambda w: config_from_preset('nope'))
A('api-preset-bogus-field', lambda w: config_from_preset('shakespeare-llada', bogus=1))
A('api-train-a-string', lambda w: trainer.train('shakespeare-llada'))
A('api-train-dict-unknown-key', lambda w: trainer.train({'max_step': 2, 'out_dir': str(w / 'r')}))
A('api-trainconfig-lr-text', lambda w: TrainConfig(lr='x'))
A('api-trainconfig-positional', lambda w: TrainConfig('masked', 'x'))
A('api-load-checkpoint-missing', lambda w: C.load_checkpoint(w / 'nope'))
A('api-load-checkpoint-a-text-file', lambda w: C.load_checkpoint(w / 't.txt'), setup=with_file('t.txt', 'hello'))
A('api-load-release-empty-folder', lambda w: released.load_release(w / 'e'), setup=lambda w: (w / 'e').mkdir())
A('api-load-release-a-file', lambda w: released.load_release(w / 't.txt'), setup=with_file('t.txt', 'hello'))
A('api-load-release-llada-folder', lambda w: released.load_release(w / 'm'), setup=with_llada)
A('api-find-latest-of-a-file', lambda w: C.find_latest_checkpoint(w / 't.txt'), setup=with_file('t.txt', 'hello'), ok=True)
A('api-prepare-shakespeare-out-a-file', lambda w: D.prepare_shakespeare(w / 't.txt'), setup=with_file('t.txt', 'hello'))
A('api-prepare-shakespeare-empty-source', lambda w: D.prepare_shakespeare(w / 'o', source=w / 't.txt'), setup=with_file('t.txt', ''))
A('api-save-checkpoint-negative-step', lambda w: C.save_checkpoint(w / 'r', -1, torch.nn.Linear(2, 2)))
A('api-save-checkpoint-keep-last-zero', lambda w: C.save_checkpoint(w / 'r', 1, torch.nn.Linear(2, 2), keep_last=0))
A('api-evaluate-release-empty-text', lambda w: trainer.evaluate_release(w / 'run', ''), setup=with_run)


# ======== timed and custom scenarios
def _bg_train(w, out, *sets, logs=None):
    return run('train', train_argv(out, *sets), w, logs or w.parent / 'logs', background=True)

def live_reader(w):
    "Load the newest checkpoint 40 times while a run writes one every step with keep_last=1."
    p = _bg_train(w, w / 'live', 'max_steps=400', 'checkpoint_interval=1', 'keep_last=1', 'eval_interval=1000')
    fails, ok = [], 0
    try:
        tb.until(lambda: find_latest_checkpoint(w / 'live') is not None or p.poll() is not None, timeout=100)
        for _ in range(40):
            try: load_checkpoint(w / 'live'); ok += 1
            except Exception as e: fails.append(f'{type(e).__name__}: {str(e)[:100]}')
    finally:
        p.send_signal(signal.SIGTERM); p.wait(120)
    return ('well', f'{ok}/40 loads') if not fails else ('traceback', f'{len(fails)}/40 failed: {fails[0]}')

def concurrent_new(w):
    "Two trainings started at once on the same new folder: one runs, the other is refused in one line."
    a = _bg_train(w, w / 'run'); b = _bg_train(w, w / 'run')
    ca, cb = a.wait(TIMEOUT), b.wait(TIMEOUT)
    codes = sorted([ca, cb])
    refused = a if ca else b
    if codes == [0, 0]: return 'well', 'both finished (one after the other)'
    if codes == [0, 2] and 'is in use by process' in refused.stderr and 'Traceback' not in refused.stderr:
        return 'well', refused.stderr.strip().splitlines()[-1][:160]
    return 'traceback' if 'Traceback' in a.stderr + b.stderr else 'unclear', f'exits {ca}, {cb}: {(a.stderr + b.stderr)[-300:]}'

def sigterm_at_start(w):
    "SIGTERM 1 s after the start (before the first step), then the same command again: it finishes, every step once."
    p = _bg_train(w, w / 'run'); time.sleep(1.0); p.send_signal(signal.SIGTERM); code = p.wait(TIMEOUT)
    q = run('train', train_argv(w / 'run'), w, w.parent / 'logs', timeout=TIMEOUT)
    steps = [m['step'] for m in metrics(w / 'run')]
    if q.code == 0 and steps == [1, 2, 3, 4]: return 'well', f'first exit {code}, then finished'
    return 'unclear', f'first exit {code}, second {q.code}, steps {steps}: {q.stderr[-300:]}'

def sigint_twice_at_start(w):
    "Ctrl-C twice right after the start: exit 130 in one line; the same command again finishes."
    p = _bg_train(w, w / 'run'); time.sleep(0.5); p.send_signal(signal.SIGINT); time.sleep(0.05); p.send_signal(signal.SIGINT)
    code = p.wait(TIMEOUT)
    tb_ = 'Traceback' in p.stderr
    q = run('train', train_argv(w / 'run'), w, w.parent / 'logs', timeout=TIMEOUT)
    steps = [m['step'] for m in metrics(w / 'run')]
    if q.code == 0 and steps == [1, 2, 3, 4] and not tb_: return 'well', f'first exit {code}, then finished'
    return ('traceback' if tb_ else 'unclear'), f'first exit {code}, second {q.code}, steps {steps}: {p.stderr[-300:]}'

def killed_before_first_checkpoint(w):
    "SIGKILL after the first logged step of a run that checkpoints only at its end; the same folder then trains cleanly."
    p = _bg_train(w, w / 'run', 'max_steps=100000', 'checkpoint_interval=100000', 'eval_interval=100000')
    tb.until(lambda: tb.last_step(w / 'run') >= 1 or p.poll() is not None, timeout=100)
    p.send_signal(signal.SIGKILL); p.wait(60)
    assert not list_checkpoints(w / 'run')
    q = run('train', train_argv(w / 'run'), w, w.parent / 'logs', timeout=TIMEOUT)
    steps = [m['step'] for m in metrics(w / 'run')]
    if q.code == 0 and steps == [1, 2, 3, 4]: return 'well', 'restarted from step 0 and finished'
    return 'unclear', f'exit {q.code}, steps {steps}: {q.stderr.strip()[-300:]}'

def full_disk_new_run(w):
    "A new run on a 400 KB tmpfs: refused in one line naming the folder; nothing half-written left."
    mnt = w / 'disk'; mnt.mkdir()
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=400k', 'tmpfs', str(mnt)], capture_output=True, text=True)
    if r.returncode: return 'well', f'skipped: {r.stderr.strip()}'
    try:
        q = run('train', train_argv(mnt / 'run'), w, w.parent / 'logs', timeout=TIMEOUT)
        line = (q.stderr.strip().splitlines() or [''])[-1]
        if q.code == 2 and 'Traceback' not in q.stderr and 'no space left' in line: return 'well', line[:200]
        return ('traceback' if 'Traceback' in q.stderr else 'unclear'), f'exit {q.code}: {q.stderr[-400:]}'
    finally: subprocess.run(['umount', str(mnt)], capture_output=True)

def full_disk_palindromes_json(w):
    "palindromes --json onto a full 64 KB tmpfs: one line; the run untouched."
    with_run(w); mnt = w / 'disk'; mnt.mkdir()
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', str(mnt)], capture_output=True, text=True)
    if r.returncode: return 'well', f'skipped: {r.stderr.strip()}'
    try:
        (mnt / 'fill').write_bytes(b'\0' * 60000) if True else None
    except OSError: pass
    try:
        before = snapshot(w / 'run')
        q = run('palindromes', ['--model', str(w / 'run'), *PAL, '--json', str(mnt / 'out.json')], w, w.parent / 'logs', timeout=TIMEOUT)
        lost = snapshot(w / 'run') != before
        if lost: return 'data lost', 'the run changed'
        if q.code == 0: return 'well', 'fit'
        if q.code == 2 and 'Traceback' not in q.stderr: return 'well', q.stderr.strip().splitlines()[-1][:200]
        return ('traceback' if 'Traceback' in q.stderr else 'unclear'), q.stderr[-400:]
    finally: subprocess.run(['umount', str(mnt)], capture_output=True)

def ft_resume_changed_lora(w):
    "A finished 2-step fine-tune resumed with lora_rank changed: refused in one line, its files kept."
    with_llada(w)
    base = ['--no-progress', '--set', f'model={w}/m', f'data={w}/chat.jsonl', f'out_dir={w}/ft', 'device=cpu', 'max_steps=2',
            'context_length=64', 'batch_size=2', 'warmup_steps=1', 'lora=True', 'lora_rank=2', 'checkpoint_interval=1']
    q = run('finetune', base, w, w.parent / 'logs', timeout=TIMEOUT)
    if q.code: return 'unclear', f'first fine-tune failed {q.code}: {q.stderr[-300:]}'
    before = snapshot(w / 'ft')
    q = run('finetune', [*base, 'lora_rank=4', 'max_steps=4'], w, w.parent / 'logs', timeout=TIMEOUT)
    if snapshot(w / 'ft') != before: return 'data lost', 'the fine-tune folder changed'
    if q.code == 2 and 'Traceback' not in q.stderr: return 'well', q.stderr.strip().splitlines()[-1][:200]
    return ('traceback' if 'Traceback' in q.stderr else 'unclear'), f'exit {q.code}: {q.stderr[-300:]}'

def slurm_submit_twice(w):
    "The same submit twice (fake sbatch): the second is refused in one line, the first record untouched, sbatch called once."
    fake_bin(sbatch='echo x >> {w}/calls; echo 4242')(w)
    argv = ['submit', str(NB_DIR / 'train.ipynb'), '--runs-root', str(w / 'runs'), '--name', 's', '--set', 'max_steps=5']
    q = run('slurm', argv, w, w.parent / 'logs', env=bin_path(w), timeout=TIMEOUT)
    if q.code: return 'unclear', f'first submit failed {q.code}: {q.stderr[-300:]}'
    before = snapshot(w / 'runs')
    q = run('slurm', argv, w, w.parent / 'logs', env=bin_path(w), timeout=TIMEOUT)
    calls = (w / 'calls').read_text().count('x')
    if snapshot(w / 'runs') != before: return 'data lost', 'the first run directory changed'
    if q.code == 2 and calls == 1 and 'Traceback' not in q.stderr: return 'well', q.stderr.strip().splitlines()[-1][:200]
    return ('traceback' if 'Traceback' in q.stderr else 'unclear'), f'exit {q.code}, sbatch calls {calls}: {q.stderr[-300:]}'

def sample_nb_on_live_run(w):
    "sample.ipynb on a run that is training with keep_last=1: samples from a complete checkpoint."
    p = _bg_train(w, w / 'run', 'max_steps=100000', 'checkpoint_interval=1', 'keep_last=1', 'eval_interval=100000')
    try:
        tb.until(lambda: find_latest_checkpoint(w / 'run') is not None or p.poll() is not None, timeout=100)
        q = papermill_nb('sample', w, {}, w.parent / 'logs')
    finally:
        p.send_signal(signal.SIGTERM); p.wait(120)
    if q.code == 0: return 'well', 'sampled'
    errs = tb.notebook_errors(q.notebook) if q.notebook.exists() else []
    return 'traceback', f'{errs}'[:300]

for f in (live_reader, concurrent_new, sigterm_at_start, sigint_twice_at_start, killed_before_first_checkpoint,
          full_disk_new_run, full_disk_palindromes_json, ft_resume_changed_lora, slurm_submit_twice, sample_nb_on_live_run):
    CUSTOM(f.__name__.replace('_', '-'), f, area='faults in time')


# ---------------------------------------------------------------- running
NB_BASE = {
    'train': lambda w: {**tb.TINY, 'out_dir': str(w / 'run')},
    'sample': lambda w: {'checkpoint': str(w / 'run'), 'n_samples': 1, 'steps': 2, 'eval_batches': 1, 'gif': False},
    'finetune': lambda w: {'out_root': str(w / 'fx'), 'd_model': 32, 'n_layers': 1, 'n_heads': 2, 'mlp_hidden_size': 64,
                           'context': 32, 'pretrain_steps': 2, 'pretrain_batch': 2, 'finetune_steps': 2, 'finetune_batch': 2,
                           'eval_examples': 2, 'eval_draws': 1, 'n_samples': 1, 'answer_length': 16, 'context_length': 64,
                           'lora_rank': 2},
    'palindromes': lambda w: {'checkpoints': [str(w / 'run')], 'lengths': [5], 'n_samples': 2, 'steps': 2,
                              'modes': ['exact'], 'repair_rounds': 0, 'judge_data': None, 'out_dir': str(w / 'pal')},
}

def papermill_nb(nb, w, params, logs) -> Proc:
    args = []
    for k, v in {**NB_BASE[nb](w), **params}.items():
        if isinstance(v, str): args += ['-p', k, v]
        else: args += ['-y', json.dumps({k: v})]
    logs.mkdir(parents=True, exist_ok=True)
    out = logs / f'{nb}.ipynb'
    cmd = [sys.executable, '-m', 'papermill', '-k', kernel_name(), '--cwd', str(NB_DIR), str(NB_DIR / f'{nb}.ipynb'), str(out), *args]
    p = Proc(logs, w, cmd=cmd, env={'PYTHONPATH': str(ROOT)})
    p.notebook = out
    p.wait(TIMEOUT)
    return p


def one_line(prog: str, err: str) -> str | None:
    "The one `prog: ...` line a refusal ends with, or None."
    lines = [l for l in err.splitlines() if l.strip()]
    if not lines: return None
    names = {'train': 'diffusion-lm-train', 'finetune': 'diffusion-lm-finetune', 'palindromes': 'diffusion-lm-palindromes',
             'slurm': 'diffusion-lm-slurm', 'api': 'diffusion_lm'}
    pre = names.get(prog)
    last = lines[-1]
    if pre is None: return last if ': ' in last and 'Error' not in last.split(':')[0] else None
    return last if last.startswith(pre) else None


BOOKKEEPING = ('result.json', 'config.json', 'checkpoints/latest', '.diffusion_lm.json', 'train.pid')   # a resumed run rewrites them

def appended(path: Path, old: bytes) -> bool:
    "An append-only log (metrics, samples) kept its old lines: they are a prefix of what it holds now."
    return path.is_file() and path.read_bytes().startswith(old)


def classify(case: Case, w: Path, logs: Path) -> tuple[str, str]:
    if case.prog == 'custom':
        return case.args(w)
    if case.setup: case.setup(w)
    before = snapshot(w)
    before_bytes = {f: (w / f).read_bytes() for f in before if f.endswith('.jsonl')}
    try:
        if case.prog.startswith('nb-'):
            p = papermill_nb(case.prog[3:], w, case.args(w), logs)
        elif case.prog == 'cmd':
            p = Proc(logs, w, cmd=case.args(w), env={'PYTHONPATH': str(ROOT), **(case.env(w) if case.env else {})}); p.wait(TIMEOUT)
        else:
            p = run(case.prog, case.args(w), w, logs, env=case.env(w) if case.env else None, timeout=TIMEOUT)
    except TimeoutError as e: return 'hang', str(e)[:200]
    after = snapshot(w)
    lost = [f for f in before if after.get(f) != before[f] and not any(f.startswith(m) for m in case.may_change)
            and not (f.endswith('.jsonl') and f in after and appended(w / f, before_bytes[f]))
            and not (f in after and f.startswith('run/') and f.split('/', 1)[-1] in BOOKKEEPING)]
    if (w / 'sbatch-called').exists() and not case.ok and case.id not in ACCEPTED_BY_DESIGN: lost.append('(sbatch called)')
    if lost: return 'data lost', f'changed or removed: {lost[:5]}'
    if case.prog.startswith('nb-'):
        if p.code == 0: return ('well', 'ran') if case.ok or case.id in ACCEPTED_BY_DESIGN else ('unclear', 'accepted (the notebook ran)')
        errs = tb.notebook_errors(p.notebook) if p.notebook.exists() else []
        if not errs:
            line = (p.stderr.strip().splitlines() or [''])[-1]
            return 'unclear', f'papermill failed before the notebook ran: {line[:200]}'
        name, msg = errs[-1]
        if name == 'UserError' and '\n' not in msg: return 'well', msg[:400]
        return 'traceback', f'{name}: {msg[:300]}'
    err = p.stderr
    if 'Traceback' in err: return 'traceback', err.strip().splitlines()[-1][:300]
    if p.code == 0:
        if case.ok or case.id in ACCEPTED_BY_DESIGN: return 'well', 'ran' + (f' ({ACCEPTED_BY_DESIGN[case.id]})' if case.id in ACCEPTED_BY_DESIGN else '')
        return 'unclear', 'accepted: ' + (p.stdout.strip().splitlines() or [''])[-1][:200]
    line = one_line(case.prog, err)
    if line is None: return 'unclear', f'exit {p.code}, no one-line error: {err.strip()[-300:]}'
    if case.id in UNCLEAR and UNCLEAR[case.id] in line: return 'unclear', line[:400]
    if '[Errno' in line and 'give' not in line and 'choose' not in line: return 'unclear', line[:400]   # a bare OS error
    return 'well', line[:400]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--root', default='/tmp/probeH')
    ap.add_argument('--out', help='JSON file of the verdicts')
    ap.add_argument('--only', help='comma-separated case ids (prefixes)')
    ap.add_argument('--rejudge', metavar='FILE', help='apply the review (ACCEPTED_BY_DESIGN, UNCLEAR, bare OS errors) to a results file')
    ap.add_argument('--table', nargs=2, metavar=('BEFORE', 'AFTER'), help='print the Markdown table of two result files')
    a = ap.parse_args(argv)
    if a.table: return print_table(*a.table)
    if a.rejudge: return rejudge(Path(a.rejudge))
    root = Path(a.root); make_base(root)
    cases = [c for c in CASES if not a.only or any(c.id.startswith(o) for o in a.only.split(','))]
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    res = {}
    for c in cases:
        w = root / 'cases' / c.id / 'w'
        shutil.rmtree(w.parent, ignore_errors=True); w.mkdir(parents=True)
        t0 = time.time()
        stray = ROOT / '5' if c.id == 'train-config-out-dir-number' and not (ROOT / '5').exists() else None
        try: verdict, detail = classify(c, w, w.parent / 'logs')
        except Exception as e: verdict, detail = 'probe error', f'{type(e).__name__}: {e} {traceback.format_exc()[-300:]}'
        if stray is not None: shutil.rmtree(stray, ignore_errors=True)     # the run that case puts in the project folder
        res[c.id] = {'verdict': verdict, 'detail': detail, 'area': c.area, 'seconds': round(time.time() - t0, 1)}
        print(f'{c.id:50s} {verdict:10s} {detail[:150]!r}', flush=True)
        if a.out: Path(a.out).write_text(json.dumps(res, indent=1, ensure_ascii=False))
    counts = {}
    for r in res.values(): counts[r['verdict']] = counts.get(r['verdict'], 0) + 1
    print(len(res), 'cases:', counts)


def rejudge(path: Path):
    "Apply the review to the verdicts of `path` (a run made before the review was written), in place."
    res = json.loads(path.read_text())
    for k, r in res.items():
        if r['verdict'] == 'unclear' and r['detail'].startswith('accepted') and k in ACCEPTED_BY_DESIGN:
            r.update(verdict='well', detail=f'ran ({ACCEPTED_BY_DESIGN[k]})')
        elif r['verdict'] == 'well' and ((k in UNCLEAR and UNCLEAR[k] in r['detail']) or
                                         ('[Errno' in r['detail'] and 'give' not in r['detail'] and 'choose' not in r['detail'])):
            r['verdict'] = 'unclear'
        elif r['verdict'] == 'data lost' and r['detail'] == "changed or removed: ['(sbatch called)']" and k in ACCEPTED_BY_DESIGN:
            r.update(verdict='well', detail=f'ran ({ACCEPTED_BY_DESIGN[k]})')
    path.write_text(json.dumps(res, indent=1, ensure_ascii=False))


def print_table(before: str, after: str):
    b, a = json.loads(Path(before).read_text()), json.loads(Path(after).read_text())
    def count(d): 
        c = {}
        for r in d.values(): c[r['verdict']] = c.get(r['verdict'], 0) + 1
        return ', '.join(f'{v} {k}' for k, v in sorted(c.items(), key=lambda x: -x[1]))
    print(f'Before: {len(b)} cases: {count(b)}.  \nAfter: {len(a)} cases: {count(a)}.\n')
    print('| # | case | area | before | after |\n|---|---|---|---|---|')
    import re
    esc = lambda s: re.sub(r'/tmp/probeH/[^/]+/cases/[^/]+/w/', '', s).replace('/tmp/probeH/orig', '<repo>') \
        .replace('|', '\\|').replace('\n', ' ')
    for i, (k, r) in enumerate(a.items(), 1):
        rb = b.get(k, {'verdict': '-', 'detail': ''})
        bt = f"**{rb['verdict']}**: {esc(rb['detail'])[:160]}" if rb['verdict'] != 'well' else f"well: {esc(rb['detail'])[:160]}"
        at = 'same' if rb == r or (rb['verdict'] == r['verdict'] == 'well' and rb['detail'][:80] == r['detail'][:80]) else \
            f"{r['verdict']}: {esc(r['detail'])[:220]}"
        print(f"| {i} | `{k}` | {r['area']} | {bt} | {at} |")


if __name__ == '__main__':
    main()
