"""Issue 24, fourth hostile probe: new bad inputs and faults, none of them rows of `tests/test_bad_inputs.py`, nor
cases of the second (`bench/results/probe_issue24_second.md`) or third probe (`bench/probe_issue24_third.py`).

The runner is the third probe's (imported: `Case`, the builders, `classify`, `papermill_nb`, the same verdicts): every
case runs in a fresh folder `<root>/cases/<id>/w`, with OMP_NUM_THREADS=1 and a 120 s limit (a timeout is a hang),
every file of the folder hashed before and after. New areas: checkpoints whose weights have other dtypes, shapes or
tensors (their hashes rewritten, so only the content is wrong) and files cut at other points; prepared data folders
with odd arrays; hand-edited run configurations; contradictory presets and overrides; the sampling API with tensors of
other dtypes and shapes; corpora with BOMs, other encodings, one huge line; environment variables; SLURM flag
combinations against a fake `sbatch`; odd output names.

    python bench/probe_issue24_fourth.py --out bench/results/probe_issue24_fourth_before.json [--only id1,id2]
    python bench/probe_issue24_fourth.py --table before.json after.json > bench/results/probe_issue24_fourth.md
"""
from __future__ import annotations
import argparse, json, os, shutil, sys, time, traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import probe_issue24_third as p3  # noqa: E402
from probe_issue24_third import (Case, with_run, with_llada, damaged_run, damaged_llada, with_file, both,  # noqa: E402
                                 edit_json, fake_bin, bin_path, T, TR, TC, FT, FP, P, S, A, NB, CMD, RESUMED, PAL)
import torch  # noqa: E402
import numpy as np  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from test_bad_inputs import ckpt, rehash, NB_DIR  # noqa: E402

ROOT = HERE.parent
p3.CASES = []                        # the builders append to the third probe's list: start it empty
p3.ACCEPTED_BY_DESIGN.clear(); p3.UNCLEAR.clear()
# By review: acceptance is the right answer here (the value means something, or the input is harmless).
ACCEPTED = {
    'k-train-context-length-one': 'a context of one token is a (useless but) well-defined model',
    'k-train-block-size-on-masked': "block_size=4 is the default every config carries; the user set the default",
    'k-train-threshold-null': 'threshold None is "no threshold", the default',
    'k-train-precision-bf16-cpu': 'bf16 autocast runs on CPUs',
    'k-train-preset-gpu-on-cpu': 'the preset with its sizes overridden by the tiny ones, on the CPU asked for',
    'k-train-set-value-with-spaces': "' 2 ' is the number 2", 'k-config-max-steps-float-text': '"4" reads as 4, as --set max_steps=4',
    'k-config-sample-options-null': 'null: no options', 'k-resume-weights-float16': 'float16 weights load into float32 exactly',
    'k-ft-data-empty-prompt': 'an unconditional example', 'k-ft-data-empty-response': 'an example that teaches an empty answer (EOS)',
    'k-ft-out-dir-inside-model': 'a new folder of its own; the model folder\'s files are untouched',
    'k-ft-eval-draws-zero': 'documented: 0 is no evaluation', 'k-ft-plan-without-memory': "the plan against this machine's memory",
    'k-pal-alphabet-newline': 'a newline is a character of the vocabulary', 'k-pal-alphabet-upper': 'capitals are in the vocabulary',
    'k-pal-json-into-run': "a new file; none of the run's files is replaced", 'k-pal-model-weights-float16': 'loads exactly',
    'k-pal-mode-letters-no-words': 'documented: how a palindrome is judged', 'k-slurm-time-7-00:00:00': 'seven days',
    'k-slurm-mem-16': "SLURM's unit is MB", 'k-slurm-account-a;b': 'a #SBATCH comment line executes nothing; sbatch judges it',
    'k-slurm-env-setup-': "documented: '' for none", 'k-slurm-partition-': 'no partition line, as --qos ""',
    'k-slurm-sbatch-partition-twice': 'a raw sbatch option, documented as raw; the later #SBATCH line wins',
    'k-slurm-set-twice': 'the later value wins, as in diffusion-lm-train', 'k-slurm-sample-nb-no-checkpoint': "the notebook's default checkpoint",
    'k-nb-sample-weights-float16': 'loads exactly', 'k-nb-train-max-steps-string': 'papermill -p reads 5 as the number 5',
    'k-api-preset-none': 'None: the TrainConfig defaults',
}
# One-line refusals with an OS error inside that do name the file and a fix (the runner's "[Errno" rule marks them):
WELL_BY_REVIEW = {'k-data-val-missing': 'prepare', 'k-data-metadata-format-unknown': 'prepare', 'k-data-train-a-folder': 'prepare'}
UNCLEAR = {'k-env-hf-home-finetune': 'download it again'}    # id -> a text marking its one line as unclear (by review)


# ---------------------------------------------------------------- damage helpers
def weights(step: Path, f):
    "Rewrite every safetensors file of a checkpoint step with `f(dict) -> dict`, then make meta.json agree."
    for p in sorted(step.glob('*.safetensors')):
        sd = load_file(p); sd = f(sd) or sd; save_file(sd, p)
    rehash(step)

def first_key(sd): return sorted(sd)[0]
def to_dtype(dt): return lambda sd: {k: v.to(dt) for k, v in sd.items()}
def drop_one(sd): sd.pop(first_key(sd)); return sd
def extra_one(sd): sd['bogus.weight'] = torch.zeros(3); return sd
def reshape_one(sd):
    k = next(k for k in sorted(sd) if sd[k].ndim == 2); sd[k] = sd[k][:, :-1].contiguous(); return sd
def nan_one(sd):
    k = next(k for k in sorted(sd) if sd[k].is_floating_point()); sd[k] = torch.full_like(sd[k], float('nan')); return sd

def step4_weights(f): return lambda r: weights(ckpt(r, 4), f)
def all_steps_weights(f): return lambda r: [weights(ckpt(r, s), f) for s in (2, 4)]

def cut_at(name, keep, steps=(4,)):
    def damage(r):
        for s in steps:
            p = ckpt(r, s) / name; b = p.read_bytes()
            p.write_bytes(b[:keep] if isinstance(keep, int) else b[:int(len(b) * keep)])
    return damage

PREPARED = ROOT / 'data' / 'prepared' / 'shakespeare_char'
def with_prepared(damage):
    "A copy of the prepared Shakespeare data set in w/d, damaged by `damage(d)`."
    def setup(w):
        shutil.copytree(PREPARED, w / 'd'); damage(w / 'd')
    return setup

def npy(arr): return lambda d, name='train.npy': np.save(d / name, arr)


# ================================================================ diffusion-lm-train: values and combinations
T('k-train-out-dir-dot', ['out_dir=.'], setup=with_file('notes.txt', 'mine'))
T('k-train-out-dir-blank', ['out_dir=   '])
T('k-train-out-dir-root', ['out_dir=/'])
T('k-train-out-dir-tilde', ['out_dir=~nosuchuser/run'])
T('k-train-out-dir-trailing-slash', ['max_steps=6', 'out_dir={w}/run/'.replace('{w}', '')], setup=with_run)   # replaced below
p3.CASES.pop()
p3.CASES.append(Case('k-train-out-dir-trailing-slash', 'train', lambda w: p3.train_argv(str(w / 'run') + '/', 'max_steps=6'),
                     setup=with_run, ok=True, may_change=RESUMED, area='train'))
p3.CASES.append(Case('k-train-out-dir-existing-empty', 'train', lambda w: p3.train_argv(w / 'e'), setup=lambda w: (w / 'e').mkdir(),
                     ok=True, area='train'))
p3.CASES.append(Case('k-train-out-dir-in-a-checkpoint', 'train', lambda w: p3.train_argv(w / 'run' / 'checkpoints' / 'step_000004' / 'x'),
                     setup=with_run, area='train'))
p3.CASES.append(Case('k-train-out-dir-is-the-dataset', 'train', lambda w: p3.train_argv(w / 'd', f'dataset={w}/d'),
                     setup=with_prepared(lambda d: None), area='train'))
T('k-train-batch-size-true', ['batch_size=True'])
T('k-train-lr-true', ['lr=True'])
T('k-train-lr-none', ['lr=None'])
T('k-train-n-head-above-width', ['n_head=64'])
T('k-train-context-length-one', ['context_length=1'])
T('k-train-block-size-equals-context', ['method=block', 'block_size=32'], ok=True)
T('k-train-block-size-above-context', ['method=block', 'block_size=64'])
T('k-train-clip-zero-zero', ['method=block', 'clip=[0, 0]'])
T('k-train-clip-three-numbers', ['method=block', 'clip=[0.1, 0.5, 0.9]'])
T('k-train-clip-on-masked', ['clip=[0.2, 0.8]'])
T('k-train-block-size-on-masked', ['block_size=4'])
T('k-train-graph-on-masked', ['graph=uniform'])
T('k-train-sampler-confidence-on-ar', ['method=ar', 'sampler=confidence'])
T('k-train-sampler-ancestral-on-sedd', ['method=sedd', 'sampler=ancestral'])
T('k-train-threshold-null', ['sampler=confidence', 'sample_options={"threshold": null}'])
T('k-train-sample-options-nested', ['sample_options={"threshold": {"a": 1}}'])
T('k-train-temperature-zero', ['temperature=0'], ok=True)
T('k-train-sample-steps-one', ['sample_steps=1'], ok=True)
T('k-train-n-samples-zero', ['n_samples=0'], ok=True)
T('k-train-sample-steps-overflow', ['sample_steps=10**12'])
T('k-train-top-k-field', ['top_k=5'])
T('k-train-precision-fp16-cpu', ['precision=fp16', 'device=cpu'])
T('k-train-precision-bf16-cpu', ['precision=bf16', 'device=cpu'])
T('k-train-device-cpu-1', ['device=cpu:1'])
T('k-train-device-mps', ['device=mps'])
T('k-train-device-empty', ['device='])
T('k-train-device-upper', ['device=CPU'])
T('k-train-device-cuda-list', ['device=cuda:0,1'])
T('k-train-max-steps-twice', ['max_steps=3', 'max_steps=2'], ok=True)
T('k-train-keep-last-one-each-step', ['keep_last=1', 'checkpoint_interval=1'], ok=True)
T('k-train-dataset-text-file', ['dataset={w}/t.txt'.replace('{w}', '/tmp/probeK/base')], setup=None)
p3.CASES.pop()
p3.CASES.append(Case('k-train-dataset-text-file', 'train', lambda w: p3.train_argv(w / 'run', f'dataset={w}/t.txt'),
                     setup=with_file('t.txt', 'hello world\n' * 500), area='train'))
p3.CASES.append(Case('k-train-preset-twice', 'train', lambda w: ['--preset', 'shakespeare-ar', *p3.train_argv(w / 'run')],
                     ok=True, area='train'))
p3.CASES.append(Case('k-train-preset-ar-method-masked', 'train', lambda w: p3.train_argv(w / 'run', 'method=masked', preset='shakespeare-ar'),
                     ok=True, area='train'))
p3.CASES.append(Case('k-train-preset-gpu-on-cpu', 'train', lambda w: p3.train_argv(w / 'run', 'device=cpu', preset='shakespeare-block-gpu'),
                     area='train'))
p3.CASES.append(Case('k-train-set-empty-list', 'train', lambda w: [*p3.train_argv(w / 'run'), '--set'], area='train'))
p3.CASES.append(Case('k-train-set-value-with-spaces', 'train', lambda w: p3.train_argv(w / 'run', 'max_steps= 2 '), area='train'))

# ======== --config files
TC('k-config-duplicate-keys', '{"lr": 0.001, "lr": 0.002}', ok=True)
TC('k-config-preset-inside', '{"preset": "shakespeare-ar"}')
TC('k-config-out-dir-empty', '{"out_dir": ""}')
TC('k-config-max-steps-float-text', '{"max_steps": "4"}')
TC('k-config-utf16', '{"lr": 0.001}'.encode('utf-16').decode('latin-1'))
TC('k-config-trailing-comma', '{"lr": 0.001,}')
TC('k-config-comment', '// my settings\n{"lr": 0.001}')
TC('k-config-huge-int', '{"n_layer": 123456789012345678901234567890}')
TC('k-config-sample-options-null', '{"sample_options": null}')
TC('k-config-clip-string', '{"clip": "0.1,0.9"}')
p3.CASES.append(Case('k-config-dev-null', 'train', lambda w: ['--preset', 'shakespeare-llada', '--config', '/dev/null',
                                                             '--set', f'out_dir={w}/run'], area='train --config'))

# ======== run folders: hand edits, weights with other dtypes/shapes, files cut at other points
TR('k-resume-config-edited-n-layer', [], lambda r: edit_json(r / 'config.json', lambda d: d.update(n_layer=3)))
TR('k-resume-config-edited-lr', [], lambda r: edit_json(r / 'config.json', lambda d: d.update(lr=0.5)), ok=True, may_change=RESUMED)
TR('k-resume-config-edited-unknown-key', [], lambda r: edit_json(r / 'config.json', lambda d: d.update(bogus=1)), ok=True, may_change=RESUMED)
TR('k-resume-config-edited-method', [], lambda r: edit_json(r / 'config.json', lambda d: d.update(method='sedd')))
TR('k-resume-config-empty-object', [], lambda r: (r / 'config.json').write_text('{}'), ok=True, may_change=RESUMED)
TR('k-resume-checkpoint-config-edited-width', [], lambda r: [edit_json(ckpt(r, s) / 'config.json', lambda d: d['model'].update(n_embd=64))
                                                           for s in (2, 4)] and None)
TR('k-resume-weights-float16', [], all_steps_weights(to_dtype(torch.float16)))
TR('k-resume-weights-int32', [], all_steps_weights(to_dtype(torch.int32)))
TR('k-resume-weights-tensor-missing', [], all_steps_weights(drop_one))
TR('k-resume-weights-tensor-extra', [], all_steps_weights(extra_one))
TR('k-resume-weights-shape', [], all_steps_weights(reshape_one))
TR('k-resume-newest-weights-shape', [], step4_weights(reshape_one), ok=True, may_change=RESUMED + ('run/checkpoints/step_000004',))
TR('k-resume-weights-nan-rehashed', [], all_steps_weights(nan_one))
TR('k-resume-model-cut-8-bytes', [], cut_at('model.safetensors', 8), ok=True, may_change=RESUMED + ('run/checkpoints/step_000004',))
TR('k-resume-model-cut-empty', [], cut_at('model.safetensors', 0), ok=True, may_change=RESUMED + ('run/checkpoints/step_000004',))
TR('k-resume-model-cut-last-byte', [], cut_at('model.safetensors', 0.9999), ok=True, may_change=RESUMED + ('run/checkpoints/step_000004',))
TR('k-resume-state-cut-half-every-step', [], cut_at('state.pt', 0.5, (2, 4)))
TR('k-resume-meta-cut-every-step', [], cut_at('meta.json', 0.5, (2, 4)))
TR('k-resume-latest-empty', [], lambda r: (r / 'checkpoints' / 'latest').write_text(''), ok=True, may_change=RESUMED)
TR('k-resume-latest-older', [], lambda r: (r / 'checkpoints' / 'latest').write_text('step_000002'), ok=True, may_change=RESUMED)
TR('k-resume-lock-a-folder', [], lambda r: (r / '.lock').mkdir())
TR('k-resume-metrics-future-step', [], lambda r: open(r / 'metrics.jsonl', 'a').write('{"step": 99, "loss": 1.0}\n'), ok=True,
   may_change=RESUMED)
TR('k-resume-metrics-nan-loss', [], lambda r: open(r / 'metrics.jsonl', 'a').write('{"step": 4, "loss": NaN}\n'), ok=True,
   may_change=RESUMED)
TR('k-resume-metrics-crlf', [], lambda r: (r / 'metrics.jsonl').write_bytes((r / 'metrics.jsonl').read_bytes().replace(b'\n', b'\r\n')),
   ok=True, may_change=RESUMED)
TR('k-resume-samples-a-folder', [], lambda r: ((r / 'samples.jsonl').unlink(), (r / 'samples.jsonl').mkdir()))
TR('k-resume-config-a-folder', [], lambda r: ((r / 'config.json').unlink(), (r / 'config.json').mkdir()))
TR('k-resume-step-folder-a-file', [], lambda r: (shutil.rmtree(ckpt(r, 4)), ckpt(r, 4).write_text('x')), ok=True,
   may_change=RESUMED)
TR('k-resume-checkpoints-symlink-loop', [], lambda r: (shutil.rmtree(r / 'checkpoints'), (r / 'checkpoints').symlink_to(r / 'checkpoints')))

# ======== prepared data folders with odd arrays
def TD(id, damage, **kw):
    p3.CASES.append(Case(id, 'train', lambda w: p3.train_argv(w / 'run', f'dataset={w}/d'), setup=with_prepared(damage),
                         area='train dataset=<folder>', **kw))
TD('k-data-train-float', lambda d: np.save(d / 'train.npy', np.load(d / 'train.npy').astype(np.float32)))
TD('k-data-train-2d', lambda d: np.save(d / 'train.npy', np.load(d / 'train.npy')[:4000].reshape(40, 100)))
TD('k-data-train-ids-beyond-vocab', lambda d: np.save(d / 'train.npy', np.full(5000, 60000, dtype=np.uint16)))
TD('k-data-train-object-array', lambda d: np.save(d / 'train.npy', np.array([{'a': 1}] * 10, dtype=object), allow_pickle=True))
TD('k-data-train-empty-array', lambda d: np.save(d / 'train.npy', np.zeros(0, dtype=np.uint16)))
TD('k-data-train-empty-file', lambda d: (d / 'train.npy').write_bytes(b''))
TD('k-data-val-missing', lambda d: (d / 'val.npy').unlink())
TD('k-data-vocab-missing', lambda d: (d / 'vocab.json').unlink(), ok=True)
TD('k-data-metadata-bom', lambda d: (d / 'metadata.json').write_text('\ufeff' + (d / 'metadata.json').read_text()))
TD('k-data-metadata-vocab-size-small', lambda d: edit_json(d / 'metadata.json', lambda m: m.update(vocab_size=3)))
TD('k-data-metadata-format-unknown', lambda d: edit_json(d / 'metadata.json', lambda m: m.update(format='csv')))
TD('k-data-metadata-layout-unknown', lambda d: edit_json(d / 'metadata.json', lambda m: m.update(layout='zigzag')))
TD('k-data-metadata-tokenizer-missing', lambda d: edit_json(d / 'metadata.json', lambda m: m.pop('tokenizer')))
TD('k-data-train-a-folder', lambda d: ((d / 'train.npy').unlink(), (d / 'train.npy').mkdir()))

# ======== diffusion-lm-finetune
FT('k-ft-data-json-array', ['data={w}/d.json'], setup=both(with_llada, with_file('d.json', json.dumps([{'prompt': 'a', 'response': 'b'}]))))
FT('k-ft-data-bom', ['data={w}/d.jsonl'], setup=both(with_llada, with_file('d.jsonl', '\ufeff' + '{"prompt": "say hi", "response": "hi"}\n' * 8)),
   ok=True, may_change=('ft/',))
FT('k-ft-data-crlf', ['data={w}/d.jsonl'], setup=both(with_llada, with_file('d.jsonl', '{"prompt": "say hi", "response": "hi"}\r\n' * 8)),
   ok=True)
FT('k-ft-data-blank-lines', ['data={w}/d.jsonl'], setup=both(with_llada, with_file('d.jsonl', '\n{"prompt": "say hi", "response": "hi"}\n\n' * 8)),
   ok=True)
FT('k-ft-data-huge-line', ['data={w}/d.jsonl'], setup=both(with_llada, with_file('d.jsonl', json.dumps({'prompt': 'x', 'response': 'y' * 2_000_000}) + '\n')))
FT('k-ft-data-empty-prompt', ['data={w}/d.jsonl'], setup=both(with_llada, with_file('d.jsonl', '{"prompt": "", "response": "hi"}\n' * 4)))
FT('k-ft-data-empty-response', ['data={w}/d.jsonl'], setup=both(with_llada, with_file('d.jsonl', '{"prompt": "hi", "response": ""}\n' * 4)))
FT('k-ft-data-only-user', ['data={w}/d.jsonl'], setup=both(with_llada, with_file('d.jsonl', '{"messages": [{"role": "user", "content": "x"}]}\n')))
FT('k-ft-data-gzip', ['data={w}/d.jsonl.gz'], setup=both(with_llada, with_file('d.jsonl.gz', b'\x1f\x8b\x08\x00' + os.urandom(60))))
FT('k-ft-data-plain-text', ['data={w}/t.txt'], setup=both(with_llada, with_file('t.txt', 'hello world\n' * 100)))
FT('k-ft-data-utf16', ['data={w}/d.jsonl'], setup=both(with_llada, with_file('d.jsonl', '{"prompt": "a", "response": "b"}\n'.encode('utf-16'))))
FT('k-ft-data-response-a-list', ['data={w}/d.jsonl'], setup=both(with_llada, with_file('d.jsonl', '{"prompt": "a", "response": ["b"]}\n')))
FT('k-ft-lora-targets-star', ['lora=True', 'lora_targets=["*"]'])
FT('k-ft-grad-accum-float', ['grad_accum=1.5'])
FT('k-ft-dtype-float16-cpu', ['dtype=float16'])
FT('k-ft-device-cuda-absent', ['device=cuda'])
FT('k-ft-out-dir-the-work-folder', ['out_dir={w}'])
FT('k-ft-out-dir-inside-model', ['out_dir={w}/m/ft'])
FT('k-ft-out-dir-the-data-file-folder', ['out_dir={w}/sub'], setup=both(with_llada, with_file('sub/keep.txt', 'mine')))
FT('k-ft-model-type-unknown', [], setup=damaged_llada(lambda m: edit_json(m / 'config.json', lambda d: d.update(model_type='nope', auto_map={}))))
FT('k-ft-config-architectures-empty', [], setup=damaged_llada(lambda m: edit_json(m / 'config.json', lambda d: d.update(architectures=[]))),
   ok=True, may_change=('ft/',))
FT('k-ft-weights-empty-file', [], setup=damaged_llada(lambda m: (m / 'model.safetensors').write_bytes(b'')))
FT('k-ft-weights-int8', [], setup=damaged_llada(lambda m: save_file({k: v.to(torch.int8) for k, v in load_file(m / 'model.safetensors').items()},
                                                                      m / 'model.safetensors')))
FT('k-ft-weights-tensor-missing', [], setup=damaged_llada(lambda m: save_file(drop_one(load_file(m / 'model.safetensors')), m / 'model.safetensors')))
FT('k-ft-weights-shape', [], setup=damaged_llada(lambda m: save_file(reshape_one(load_file(m / 'model.safetensors')), m / 'model.safetensors')))
FT('k-ft-generation-config-garbage', [], setup=damaged_llada(lambda m: (m / 'generation_config.json').write_text('{garbage')),
   ok=True, may_change=('ft/',))
FT('k-ft-tokenizer-json-binary', [], setup=damaged_llada(lambda m: (m / 'tokenizer.json').write_bytes(os.urandom(500))))
FT('k-ft-max-steps-below-warmup', ['warmup_steps=10'], ok=True)
FT('k-ft-eval-draws-zero', ['eval_draws=0'])
FT('k-ft-seed-text', ['seed=abc'])
FP('k-ft-plan-devices-zero', ['--plan', '--devices', '0', '--device-memory', '80GB', '--set', 'model={w}/m'])
FP('k-ft-plan-memory-lowercase-unit', ['--plan', '--devices', '1', '--device-memory', '80gb', '--set', 'model={w}/m'], ok=True)
FP('k-ft-plan-memory-with-space', ['--plan', '--devices', '1', '--device-memory', '80 GB', '--set', 'model={w}/m'], ok=True)
FP('k-ft-plan-without-memory', ['--plan', '--set', 'model={w}/m'])
FP('k-ft-plan-model-hf-name-unknown', ['--plan', '--devices', '1', '--device-memory', '80GB', '--set', 'model=org/nope-model'], setup=None)
FP('k-ft-set-twice-model', ['--set', 'model={w}/m', '--set', 'model={w}/nope', 'data={w}/chat.jsonl', 'out_dir={w}/ft'])

# ======== diffusion-lm-palindromes
P('k-pal-alphabet-newline', ['--alphabet', 'ab\n'])
P('k-pal-alphabet-duplicates', ['--alphabet', 'aabbcc'], ok=True)
P('k-pal-alphabet-upper', ['--alphabet', 'ABC'])
P('k-pal-length-two', ['--length', '2'], ok=True)
P('k-pal-length-list', ['--length', '4,6'])
P('k-pal-length-text', ['--length', 'long'])
P('k-pal-words-min-zipf-eight', ['--words', '--words-min-zipf', '8', '--alphabet', 'abcdefghijklmnopqrstuvwxyz '])
P('k-pal-words-length-three', ['--words', '--length', '3', '--alphabet', 'abcdefghijklmnopqrstuvwxyz '])
P('k-pal-json-empty', ['--json', ''])
P('k-pal-json-newline-name', ['--json', '{w}/a\nb.json'], ok=True)
P('k-pal-json-into-run', ['--json', '{w}/run/new.json'])
P('k-pal-model-latest-file', [], setup=with_run)
p3.CASES.pop()
p3.CASES.append(Case('k-pal-model-latest-file', 'palindromes', lambda w: ['--model', f'{w}/run/checkpoints/latest', *PAL],
                     setup=with_run, area='palindromes'))
p3.CASES.append(Case('k-pal-model-config-json', 'palindromes', lambda w: ['--model', f'{w}/run/config.json', *PAL],
                     setup=with_run, area='palindromes'))
p3.CASES.append(Case('k-pal-model-weights-float16', 'palindromes', lambda w: ['--model', f'{w}/run', *PAL],
                     setup=damaged_run(all_steps_weights(to_dtype(torch.float16))), area='palindromes'))
p3.CASES.append(Case('k-pal-model-weights-shape', 'palindromes', lambda w: ['--model', f'{w}/run', *PAL],
                     setup=damaged_run(all_steps_weights(reshape_one)), area='palindromes'))
P('k-pal-device-cpu-0', ['--device', 'cpu:0'], ok=True)
P('k-pal-seed-huge', ['--seed', str(2**70)])
P('k-pal-steps-one', ['--steps', '1'], ok=True)
P('k-pal-sampler-analytic-on-masked', ['--sampler', 'analytic'])
P('k-pal-temperature-zero', ['--temperature', '0'], ok=True)
P('k-pal-repair-with-unconstrained', ['--repair-rounds', '2', '--unconstrained'])
P('k-pal-mode-letters-no-words', ['--mode', 'letters'])
P('k-pal-judge-empty', ['--judge', ''])
CMD('k-pal-module-help-extra', ['{py}', '-m', 'diffusion_lm.palindromes', '--model'], area='palindromes')
CMD('k-pal-corpus-n-huge', ['{py}', '-m', 'diffusion_lm.palindromes.corpus', '--n', '10**12', '--out', '{w}/c.json'], area='palindromes')
CMD('k-pal-corpus-out-dir', ['{py}', '-m', 'diffusion_lm.palindromes.corpus', '--n', '5', '--out', '{w}'], area='palindromes')

# ======== diffusion-lm-slurm
DR = ['submit', '{nb}', '--dry-run']
for opt, v in [('--name', 'a b'), ('--name', 'x' * 300), ('--name', '-x'), ('--runs-root', ''), ('--nodes', '0'),
               ('--time', '00:00:30'), ('--time', '1-25:00:00'), ('--time', '7-00:00:00'), ('--mem', '16'), ('--mem', '16GiB'),
               ('--partition', ''), ('--account', 'a;b'), ('--after', '123,456'), ('--after', '123:456'), ('--env-setup', ''),
               ('--signal-seconds', '999999'), ('--gpu-type', 'a100:2'), ('--cpus-per-task', '10**9')]:
    S(f'k-slurm-{opt[2:]}-{v[:20]}', [*DR, opt, v])
S('k-slurm-gpus-zero-torchrun', [*DR, '--gpus-per-node', '0', '--launcher', 'torchrun', '--nodes', '2'])
S('k-slurm-sbatch-partition-twice', [*DR, '--partition', 'a', '--sbatch=--partition=b'])
S('k-slurm-set-twice', [*DR, '--set', 'max_steps=5', '--set', 'max_steps=6'])
S('k-slurm-set-lr-nan', [*DR, '--set', 'lr=nan'])
S('k-slurm-set-preset-and-method', [*DR, '--set', 'preset=shakespeare-ar', 'method=sedd'], ok=True)
S('k-slurm-sample-nb-no-checkpoint', ['submit', '{snb}', '--dry-run'])
S('k-slurm-finetune-notebook-set', ['submit', str(NB_DIR / 'finetune.ipynb'), '--dry-run', '--set', 'finetune_steps=-1'])
S('k-slurm-pipeline-finetune-time-bad', ['pipeline', '--dry-run', '--pretrain', '--set', 'max_steps=5', '--finetune', '--set',
                                         'max_steps=5', '--finetune-time', 'abc'])
S('k-slurm-list-job-json-empty', ['list', '--runs-root', '{w}/runs'], ok=True,
  setup=lambda w: ((w / 'runs' / 'r').mkdir(parents=True), (w / 'runs' / 'r' / 'job.json').write_text('')))
S('k-slurm-list-job-json-null', ['list', '--runs-root', '{w}/runs'], ok=True,
  setup=lambda w: ((w / 'runs' / 'r').mkdir(parents=True), (w / 'runs' / 'r' / 'job.json').write_text('null')))
S('k-slurm-list-job-json-a-folder', ['list', '--runs-root', '{w}/runs'], ok=True,
  setup=lambda w: (w / 'runs' / 'r' / 'job.json').mkdir(parents=True))
S('k-slurm-list-json-unicode-names', ['list', '--runs-root', '{w}/runs', '--json'], ok=True,
  setup=lambda w: ((w / 'runs' / 'été ☃').mkdir(parents=True), (w / 'runs' / 'été ☃' / 'job.json').write_text('{"job_id": "5", "name": "été ☃"}')))
S('k-slurm-wait-two-ids', ['wait', '123,456', '--timeout', '1'])
S('k-slurm-wait-timeout-zero', ['wait', '4242', '--timeout', '0'],
  setup=fake_bin(squeue='echo "4242 RUNNING"', sacct='echo "4242|RUNNING|0:0"'), env=bin_path)
S('k-slurm-continue-record-deleted', ['submit', '{nb}', '--runs-root', '{w}/runs', '--name', 's', '--continue', '--set', 'max_steps=5'],
  setup=both(fake_bin(sbatch='touch {w}/sbatch-called; echo 4242'), lambda w: (w / 'runs' / 's').mkdir(parents=True),
             with_file('runs/s/notes.txt', 'mine')), env=bin_path)
S('k-slurm-sbatch-cluster-suffix', ['submit', '{nb}', '--runs-root', '{w}/runs', '--name', 's', '--set', 'max_steps=5'],
  setup=fake_bin(sbatch='echo "4242;cluster1"'), env=bin_path, ok=True, may_change=('runs/',))
S('k-slurm-sbatch-id-on-stderr', ['submit', '{nb}', '--runs-root', '{w}/runs', '--name', 's', '--set', 'max_steps=5'],
  setup=fake_bin(sbatch='echo 4242 >&2'), env=bin_path)
S('k-slurm-sbatch-empty-answer', ['submit', '{nb}', '--runs-root', '{w}/runs', '--name', 's', '--set', 'max_steps=5'],
  setup=fake_bin(sbatch='exit 0'), env=bin_path)
S('k-slurm-sbatch-killed', ['submit', '{nb}', '--runs-root', '{w}/runs', '--name', 's', '--set', 'max_steps=5'],
  setup=fake_bin(sbatch='kill -9 $$'), env=bin_path)
S('k-slurm-sbatch-not-executable', ['submit', '{nb}', '--runs-root', '{w}/runs', '--name', 's', '--set', 'max_steps=5'],
  setup=lambda w: ((w / 'bin').mkdir(), (w / 'bin' / 'sbatch').write_text('#!/bin/sh\necho 1\n')), env=bin_path)
S('k-slurm-runs-root-a-file', ['submit', '{nb}', '--runs-root', '{w}/f', '--name', 's', '--set', 'max_steps=5'],
  setup=both(fake_bin(sbatch='touch {w}/sbatch-called; echo 4242'), with_file('f', 'mine')), env=bin_path)

# ======== notebooks under papermill
def weights_float16(w): with_run(w); all_steps_weights(to_dtype(torch.float16))(w / 'run')
NB('k-nb-sample-checkpoint-weights-file', 'sample', {'checkpoint': '{w}/run/checkpoints/step_000004/model.safetensors'}, ok=True,
   may_change=('run/samples/',))
NB('k-nb-sample-checkpoint-config-json', 'sample', {'checkpoint': '{w}/run/config.json'})
NB('k-nb-sample-weights-float16', 'sample', {}, setup=weights_float16)
NB('k-nb-sample-n-samples-float', 'sample', {'n_samples': 1.5})
NB('k-nb-sample-steps-overflow', 'sample', {'steps': 10**12})
NB('k-nb-sample-top-k-huge', 'sample', {'top_k': 10**9}, ok=True, may_change=('run/samples/',))
NB('k-nb-sample-temperature-inf', 'sample', {'temperature': 'inf'})
NB('k-nb-sample-out-file-empty', 'sample', {'out_file': ''})
NB('k-nb-sample-out-file-user-file', 'sample', {'out_file': '{w}/mine.json'}, setup=both(with_run, with_file('mine.json', '{"mine": 1}')))
NB('k-nb-sample-eval-text-missing', 'sample', {'eval_text': '{w}/nope.txt'})
NB('k-nb-sample-eval-text-binary', 'sample', {'eval_text': '{w}/b.txt'}, setup=both(with_run, with_file('b.txt', os.urandom(300))))
NB('k-nb-sample-threshold-zero', 'sample', {'sampler': 'confidence', 'options': {'threshold': 0}})
NB('k-nb-sample-prompt-full-context', 'sample', {'prompt': 'a' * 32})
NB('k-nb-sample-seed-float', 'sample', {'seed': 1.5})
NB('k-nb-train-out-dir-spaces', 'train', {'out_dir': '{w}/my run'}, ok=True)
NB('k-nb-train-dataset-empty', 'train', {'dataset': ''})
NB('k-nb-train-max-steps-string', 'train', {'max_steps': '5'})
NB('k-nb-train-sample-options-dict', 'train', {'sample_options': {'bogus': 1}})
NB('k-nb-finetune-context-below-answer', 'finetune', {'context_length': 8})
NB('k-nb-palindromes-out-dir-a-file', 'palindromes', {'out_dir': '{w}/f'}, setup=both(with_run, with_file('f', 'mine')))

# ======== the Python API
from diffusion_lm.train_config import config_from_preset, TrainConfig  # noqa: E402
from diffusion_lm import trainer, released, checkpoint as C, data as D  # noqa: E402
from diffusion_lm.trainer import load_newest  # noqa: E402

def sample_call(**kw):
    "method.sample on the tiny run's model with `kw` (n=1, length=8, steps=2 unless given)."
    def call(w):
        _, (model, method, tok, cfg) = load_newest(w / 'run')
        args = dict(n=1, length=8, steps=2); args.update(kw)
        return method.sample(model, **{k: (v(tok) if callable(v) else v) for k, v in args.items()})
    return call

def SA(id, ok=False, **kw): A(id, sample_call(**kw), setup=with_run, ok=ok)

A('k-api-preset-none', lambda w: config_from_preset(None))
A('k-api-trainconfig-lr-none', lambda w: TrainConfig(lr=None))
A('k-api-train-none', lambda w: trainer.train(None))
A('k-api-train-out-dir-empty', lambda w: trainer.train(config_from_preset('shakespeare-llada', out_dir='', max_steps=2)))
A('k-api-load-checkpoint-none', lambda w: C.load_checkpoint(None))
A('k-api-load-checkpoint-empty-string', lambda w: C.load_checkpoint(''))
A('k-api-load-newest-none', lambda w: load_newest(None))
A('k-api-load-release-none', lambda w: released.load_release(None))
A('k-api-load-newest-a-run-checkpoints', lambda w: load_newest(w / 'run' / 'checkpoints'), setup=with_run, ok=True)
A('k-api-prepare-bom', lambda w: D.prepare_shakespeare(w / 'o', source=w / 't.txt'), setup=with_file('t.txt', '\ufeff' + 'hello world ' * 50), ok=True)
A('k-api-prepare-utf16', lambda w: D.prepare_shakespeare(w / 'o', source=w / 't.txt'), setup=with_file('t.txt', ('hello world ' * 50).encode('utf-16')))
A('k-api-prepare-binary', lambda w: D.prepare_shakespeare(w / 'o', source=w / 't.txt'), setup=with_file('t.txt', os.urandom(3000)))
A('k-api-prepare-one-char', lambda w: D.prepare_shakespeare(w / 'o', source=w / 't.txt'), setup=with_file('t.txt', 'a'))
A('k-api-prepare-huge-line', lambda w: D.prepare_shakespeare(w / 'o', source=w / 't.txt'), setup=with_file('t.txt', 'ab' * 3_000_000), ok=True)
A('k-api-prepare-many-chars', lambda w: D.prepare_shakespeare(w / 'o', source=w / 't.txt'),
  setup=with_file('t.txt', ''.join(chr(i) for i in range(0x10000, 0x10000 + 70000))))
A('k-api-prepare-source-a-folder', lambda w: D.prepare_shakespeare(w / 'o', source=w))
A('k-api-prepare-twice-other-source', lambda w: (D.prepare_shakespeare(w / 'o', source=w / 't.txt'),
                                                 D.prepare_shakespeare(w / 'o', source=w / 'u.txt')),
  setup=both(with_file('t.txt', 'hello world ' * 50), with_file('u.txt', 'other words ' * 50)))
A('k-api-prepare-interrupted-cache', lambda w: D.prepare_shakespeare(w / 'o', source=w / 't.txt'),
  setup=both(with_file('t.txt', 'hello world ' * 50), with_file('o/train.npy', b'\x93NUMPY half')))
A('k-api-prepare-byte-data-empty-file', lambda w: D.prepare_byte_data(w / 'o', source=w / 't.txt'), setup=with_file('t.txt', ''))
A('k-api-prepare-train-fraction-nan', lambda w: D.prepare_shakespeare(w / 'o', train_fraction=float('nan')))
SA('k-api-sample-n-zero', n=0)
SA('k-api-sample-length-zero', length=0)
SA('k-api-sample-n-float', n=1.5)
SA('k-api-sample-steps-zero', steps=0)
SA('k-api-sample-steps-negative', steps=-3)
SA('k-api-sample-temperature-nan', temperature=float('nan'))
SA('k-api-sample-top-k-zero', top_k=0)
SA('k-api-sample-top-k-negative', top_k=-1)
SA('k-api-sample-top-p-two', top_p=2.0)
SA('k-api-sample-top-p-zero', top_p=0.0)
SA('k-api-sample-prompt-float', prompt=torch.tensor([[1.5, 2.0]]))
SA('k-api-sample-prompt-out-of-vocab', prompt=torch.tensor([[10**6]]))
SA('k-api-sample-prompt-negative-id', prompt=torch.tensor([[-1]]))
SA('k-api-sample-prompt-3d', prompt=torch.zeros(1, 1, 2, dtype=torch.long))
SA('k-api-sample-prompt-batch-mismatch', prompt=torch.zeros(3, 2, dtype=torch.long))
SA('k-api-sample-prompt-a-string', prompt='hello')
SA('k-api-sample-prompt-empty', prompt=torch.zeros(1, 0, dtype=torch.long), ok=True)
SA('k-api-sample-sampler-none', sampler=None, ok=True)
SA('k-api-sample-option-unknown', bogus=1)
SA('k-api-sample-device-text', device='gpu')
SA('k-api-sample-generator-wrong-type', generator=5)
A('k-api-loss-float-tokens', lambda w: (lambda r: r[1][1].loss(r[1][0], torch.rand(2, 8)))(load_newest(w / 'run')), setup=with_run)
A('k-api-loss-out-of-vocab', lambda w: (lambda r: r[1][1].loss(r[1][0], torch.full((2, 8), 10**6)))(load_newest(w / 'run')), setup=with_run)
A('k-api-evaluate-release-binary', lambda w: trainer.evaluate_release(w / 'run', w / 'b.txt'),
  setup=both(with_run, with_file('b.txt', os.urandom(100))))

# ======== environment variables (the real entry points, exec'd)
TRAIN_MOD = ['{py}', '-m', 'diffusion_lm.trainer', *[a if not a.startswith('out_dir=') else 'out_dir={w}/run'
                                                     for a in p3.train_argv('X')]]
def ENV(id, env, ok=True, argv=TRAIN_MOD, **kw):
    CMD(id, argv, env=lambda w, e=env: {k: v.format(w=w) for k, v in e.items()}, ok=ok, area='environment', **kw)
ENV('k-env-home-missing', {'HOME': '/nonexistent/home'})
ENV('k-env-home-a-file', {'HOME': '{w}/f'}, setup=with_file('f', 'mine'))
ENV('k-env-cuda-visible-garbage', {'CUDA_VISIBLE_DEVICES': 'garbage'})
ENV('k-env-cuda-visible-empty-device-cuda', {'CUDA_VISIBLE_DEVICES': ''}, ok=False,
    argv=[*TRAIN_MOD, '--set', 'device=cuda'])
ENV('k-env-tmpdir-missing', {'TMPDIR': '/nonexistent/tmp'})
ENV('k-env-omp-threads-garbage', {'OMP_NUM_THREADS': 'abc'})
ENV('k-env-data-dir-missing', {'DIFFUSION_LM_DATA': '{w}/nodata'}, ok=False)
ENV('k-env-data-dir-a-file', {'DIFFUSION_LM_DATA': '{w}/f'}, ok=False, setup=with_file('f', 'mine'))
ENV('k-env-hf-home-a-file', {'HF_HOME': '{w}/f'}, setup=with_file('f', 'mine'))
ENV('k-env-lang-c-unicode-out-dir', {'LANG': 'C', 'LC_ALL': 'C'},
    argv=[*TRAIN_MOD, '--set', 'out_dir={w}/été'])
ENV('k-env-columns-garbage-progress', {'COLUMNS': 'abc', 'TERM': 'dumb'},
    argv=[a for a in TRAIN_MOD if a != '--no-progress'])
ENV('k-env-hf-home-finetune', {'HF_HOME': '/dev/null'}, argv=['{py}', '-m', 'diffusion_lm.finetune', '--no-progress', '--set',
    'model={w}/m', 'data={w}/chat.jsonl', 'out_dir={w}/ft', 'device=cpu', 'max_steps=1', 'context_length=64', 'batch_size=2',
    'warmup_steps=1'], setup=with_llada, may_change=('ft/',))

CASES = p3.CASES


# ---------------------------------------------------------------- running
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--root', default='/tmp/probeK')
    ap.add_argument('--out', help='JSON file of the verdicts')
    ap.add_argument('--only', help='comma-separated case ids (prefixes)')
    ap.add_argument('--list', action='store_true', help='print the case ids')
    ap.add_argument('--rejudge', metavar='FILE', help='apply the review (ACCEPTED, WELL_BY_REVIEW, UNCLEAR) to a results file')
    ap.add_argument('--table', nargs='+', metavar='FILE', help='print the Markdown table of the first pass (and the rerun)')
    a = ap.parse_args(argv)
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    if a.list: return print('\n'.join(ids), f'\n{len(ids)} cases')
    if a.table: return print_table(*a.table)
    if a.rejudge: return rejudge(Path(a.rejudge))
    p3.ACCEPTED_BY_DESIGN.update(ACCEPTED); p3.UNCLEAR.update(UNCLEAR)
    root = Path(a.root); p3.make_base(root)
    shutil.copy(p3.BASE / 'run' / 'config.json', root / 'run-config.json')
    cases = [c for c in CASES if not a.only or any(c.id.startswith(o) for o in a.only.split(','))]
    res = json.loads(Path(a.out).read_text()) if a.out and a.only and Path(a.out).exists() else {}
    for c in cases:
        w = root / 'cases' / c.id / 'w'
        shutil.rmtree(w.parent, ignore_errors=True); w.mkdir(parents=True)
        t0 = time.time()
        try: verdict, detail = p3.classify(c, w, w.parent / 'logs')
        except Exception as e: verdict, detail = 'probe error', f'{type(e).__name__}: {e} {traceback.format_exc()[-300:]}'
        res[c.id] = {'verdict': verdict, 'detail': detail, 'area': c.area, 'seconds': round(time.time() - t0, 1)}
        print(f'{c.id:50s} {verdict:10s} {detail[:150]!r}', flush=True)
        if a.out: Path(a.out).write_text(json.dumps(res, indent=1, ensure_ascii=False))
    if a.out: return rejudge(Path(a.out))
    counts = {}
    for r in res.values(): counts[r['verdict']] = counts.get(r['verdict'], 0) + 1
    print(len(res), 'cases:', counts)


def print_table(before: str, after: str | None = None):
    "The bad cases of the first pass, each with its line, and (given a rerun) the verdict after the fixes."
    import re
    b = json.loads(Path(before).read_text()); a = {**b, **json.loads(Path(after).read_text())} if after else None
    def count(d):
        c = {}
        for r in d.values(): c[r['verdict']] = c.get(r['verdict'], 0) + 1
        return ', '.join(f'{v} {k}' for k, v in sorted(c.items(), key=lambda x: -x[1]))
    esc = lambda s: re.sub(r'/tmp/probeK/cases/[^/]+/w/?', '<w>/', s).replace('|', '\\|').replace('\n', ' ')
    print(f'First pass (the code as merged): {len(b)} cases: {count(b)}, 0 hang.  ')
    if a: print(f'After the fixes: {len(a)} cases: {count(a)}.')
    print('\n| # | case | area | first pass | ' + ('after |' if a else '') + '\n|---|---|---|---|' + ('---|' if a else ''))
    bad = [k for k, r in b.items() if r['verdict'] != 'well']
    for i, k in enumerate(bad, 1):
        r = b[k]; row = f"| {i} | `{k}` | {r['area']} | **{r['verdict']}**: {esc(r['detail'])[:230]} |"
        if a: row += f" {a[k]['verdict']}: {esc(a[k]['detail'])[:230]} |"
        print(row)
    if a:
        worse = [k for k in b if b[k]['verdict'] == 'well' and a[k]['verdict'] != 'well']
        print(f'\nCases handled well in the first pass and not after the fixes: {len(worse)}' + ''.join(
            f"\n- `{k}`: {a[k]['verdict']}: {esc(a[k]['detail'])[:230]}" for k in worse))
    print(f'\nThe {len(b) - len(bad)} cases handled well in the first pass, by area: ' + ', '.join(
        f'{ar or "other"} {n}' for ar, n in sorted(__import__('collections').Counter(r['area'] for r in b.values()
                                                                                     if r['verdict'] == 'well').items())))


def rejudge(path: Path):
    "Apply the review to the verdicts of `path`, in place."
    res = json.loads(path.read_text())
    for k, r in res.items():
        if r['verdict'] == 'unclear' and r['detail'].startswith('accepted') and k in ACCEPTED:
            r.update(verdict='well', detail=f'ran ({ACCEPTED[k]})')
        elif r['verdict'] == 'unclear' and k in WELL_BY_REVIEW and WELL_BY_REVIEW[k] in r['detail']:
            r['verdict'] = 'well'
        elif r['verdict'] == 'well' and k in UNCLEAR and UNCLEAR[k] in r['detail']:
            r['verdict'] = 'unclear'
    path.write_text(json.dumps(res, indent=1, ensure_ascii=False))
    counts = {}
    for r in res.values(): counts[r['verdict']] = counts.get(r['verdict'], 0) + 1
    print(len(res), 'cases:', counts)


if __name__ == '__main__':
    main()
