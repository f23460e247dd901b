"""The training workflow end to end, in separate processes: papermill runs of train.ipynb and sample.ipynb,
exact resume after SIGTERM, survival of SIGKILL at random moments, DDP with 2 CPU processes, init_from errors."""
import json, os, random, re, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file
from conftest import ROOT, run_papermill, until
from diffusion_lm.checkpoint import find_latest_checkpoint, load_checkpoint, list_checkpoints
from diffusion_lm.data import prepare_shakespeare, RandomBatches

TINY = dict(preset='shakespeare-llada', n_layer=1, n_embd=32, n_head=2, context_length=32, batch_size=4, warmup_steps=2,
            eval_batches=1, sample_steps=4, n_samples=2, log_interval=1, dropout=0.1)
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}


def cli(out_dir, background=False, **sets):
    "Run (or start) `python -m diffusion_lm.trainer` with TINY and `sets` overrides."
    p = {**TINY, **sets, 'out_dir': str(out_dir)}
    cmd = [sys.executable, '-m', 'diffusion_lm.trainer', '--preset', p.pop('preset'), '--no-progress', '--set']
    cmd += [f'{k}={json.dumps(v) if not isinstance(v, str) else v}' for k, v in p.items()]
    if background: return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)


def metrics(out_dir) -> list[dict]:
    p = Path(out_dir) / 'metrics.jsonl'
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()] if p.exists() else []


def samples(out_dir) -> list[dict]:
    p = Path(out_dir) / 'samples.jsonl'
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()] if p.exists() else []


def final_weights(out_dir, step):
    d = Path(out_dir) / 'checkpoints' / f'step_{step:06d}'
    return {f: load_file(d / f) for f in ('model.safetensors', 'ema.safetensors')}


def assert_same_weights(a, b):
    for f in a:
        assert sorted(a[f]) == sorted(b[f])
        for k in a[f]: assert torch.equal(a[f][k], b[f][k]), f'{f}:{k} differs'


N_STEPS = 120
LONG = dict(max_steps=N_STEPS, eval_interval=40, checkpoint_interval=40, sample_interval=40)


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    "An uninterrupted CLI run of N_STEPS steps: the run every interrupted one must reproduce bit for bit."
    out = tmp_path_factory.mktemp('ref') / 'run'
    r = cli(out, **LONG)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def test_papermill_train_then_sample(runs_dir):
    "train.ipynb then sample.ipynb through papermill: executed copies, metrics, bound, samples, JSON and GIF."
    run = runs_dir / 'run'
    nb = run_papermill('train.ipynb', runs_dir / 'train.ipynb',
                       {**TINY, 'max_steps': 6, 'eval_interval': 3, 'checkpoint_interval': 3, 'out_dir': str(run)})
    text = ''.join(''.join(o.get('text', '')) for c in json.loads(nb.read_text())['cells'] for o in c.get('outputs', []))
    assert 'validation NLL bound' in text and 'bits/char' in text and '--- sample 1' in text
    assert any(o.get('data', {}).get('image/png') for c in json.loads(nb.read_text())['cells'] for o in c.get('outputs', []))
    assert [m['step'] for m in metrics(run)] == list(range(1, 7))
    assert find_latest_checkpoint(run).name == 'step_000006'
    out_file = runs_dir / 'samples.json'
    nb2 = run_papermill('sample.ipynb', runs_dir / 'sample.ipynb',
                        {'checkpoint': str(run), 'n_samples': 3, 'steps': 8, 'eval_batches': 1, 'out_file': str(out_file), 'seed': 5})
    s = json.loads(out_file.read_text())
    chars = set((ROOT / 'data' / 'tinyshakespeare' / 'input.txt').read_text())
    assert len(s['samples']) == 3 and all(len(t) <= 32 and set(t) <= chars for t in s['samples'])   # corpus characters only
    assert out_file.with_suffix('.gif').stat().st_size > 0 and out_file.with_suffix('.txt').exists()
    assert 'validation NLL bound' in nb2.read_text()
    # a regular expression: every sample a string of it (judged by Python's re, not the library's automaton)
    pattern, out_re = "[A-Z][a-z]*( [a-z]+)*[.!?]", runs_dir / 'regex.json'
    run_papermill('sample.ipynb', runs_dir / 'regex.ipynb', {'checkpoint': str(run), 'n_samples': 4, 'steps': 8,
                  'eval_batches': 0, 'gif': False, 'regex': pattern, 'out_file': str(out_re)})
    s = json.loads(out_re.read_text())
    assert s['regex'] == pattern and len(s['samples']) == 4
    assert all(re.fullmatch(pattern, t) for t in s['samples']), s['samples']


def test_resume_after_sigterm_is_bit_identical(reference, tmp_path):
    "SIGTERM mid-run: a final checkpoint, a clean exit; the same command resumes to the reference's exact weights and losses."
    out = tmp_path / 'run'
    p = cli(out, background=True, **LONG)
    until(lambda: len(metrics(out)) >= 10)
    p.send_signal(signal.SIGTERM)
    log, _ = p.communicate(timeout=120)
    assert p.returncode == 0, log
    stopped = json.loads((out / 'result.json').read_text())
    assert stopped['stopped_by_signal'] and not stopped['finished'] and 10 <= stopped['step'] < N_STEPS, stopped
    assert find_latest_checkpoint(out).name == f"step_{stopped['step']:06d}"
    r = cli(out, **LONG)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_same_weights(final_weights(reference, N_STEPS), final_weights(out, N_STEPS))
    assert [m['train_loss'] for m in metrics(out)] == [m['train_loss'] for m in metrics(reference)]
    assert [m.get('val_nats') for m in metrics(out)] == [m.get('val_nats') for m in metrics(reference)]
    assert [r['step'] for r in samples(reference)] == [40, 80, 120]
    assert samples(out) == samples(reference)                 # each step's samples once, the same draws
    r = cli(out, **LONG)                                      # the same command on the finished run: nothing doubles
    assert r.returncode == 0, r.stdout + r.stderr
    assert samples(out) == samples(reference) and [m['step'] for m in metrics(out)] == [m['step'] for m in metrics(reference)]


def test_sigkill_at_random_moments_leaves_a_loadable_checkpoint(reference, tmp_path):
    "kill -9 at random times while checkpoints are written every step: the newest always loads; resuming ends exact."
    out, rng = tmp_path / 'run', random.Random(0)
    sets = {**LONG, 'checkpoint_interval': 1, 'keep_last': 2}
    kills = 0
    while kills < 4:
        p = cli(out, background=True, **sets)
        start = max([m['step'] for m in metrics(out)], default=0)
        until(lambda: max([m['step'] for m in metrics(out)], default=0) >= start + 2 or p.poll() is not None)
        time.sleep(rng.uniform(0, 0.3))
        if p.poll() is not None: break
        p.kill(); p.wait(); kills += 1
        latest = find_latest_checkpoint(out)
        assert latest is not None
        info = load_checkpoint(latest)                      # sizes and sha256 verified, weights_only unpickling
        assert info['step'] >= start + 1
        assert len(list_checkpoints(out)) <= 3              # keep_last (+ one being replaced at the kill)
    assert kills >= 3, 'the run finished before it could be killed: raise N_STEPS'
    r = cli(out, **sets)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_same_weights(final_weights(reference, N_STEPS), final_weights(out, N_STEPS))
    assert [m['step'] for m in metrics(out)] == list(range(1, N_STEPS + 1))   # lines after the last checkpoint dropped
    assert [m['train_loss'] for m in metrics(out)] == [m['train_loss'] for m in metrics(reference)]
    assert samples(out) == samples(reference)                 # samples drawn after a lost checkpoint dropped


def torchrun(*args, n=2):
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={n}', '-m', 'diffusion_lm.trainer', *args]
    r = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    return r


def test_mean_over_ranks_reaches_every_rank(tmp_path):
    "Under 2 gloo processes the loss is averaged and one rank's stop flag stops both (`distributed.mean_over_ranks`)."
    script = tmp_path / 'sum.py'
    script.write_text("import json, torch, torch.distributed as dist\n"
                      "from diffusion_lm.distributed import DistInfo, mean_over_ranks\n"
                      "dist.init_process_group('gloo'); r = dist.get_rank(); d, cpu = DistInfo(r, 2, r), torch.device('cpu')\n"
                      "got = [r, mean_over_ranks(r == 1, d, cpu) > 0, mean_over_ranks(1.5 + r, d, cpu)]\n"
                      f"open(f'{tmp_path}/rank{{r}}.json', 'w').write(json.dumps(got))\n"    # one file a rank: no interleaving
                      "dist.destroy_process_group()\n")
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', str(script)]
    r = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    got = [json.loads((tmp_path / f'rank{i}.json').read_text()) for i in (0, 1)]
    assert got == [[0, True, 2.0], [1, True, 2.0]], got


GRAD = ['--preset', 'shakespeare-llada', '--set', 'n_layer=2', 'n_embd=32', 'n_head=2', 'context_length=32', 'batch_size=3', 'grad_accum=2']


@pytest.mark.parametrize('method', ['masked', 'sedd'])
def test_ddp_gradients_match_one_process(tmp_path, method):
    "2 gloo processes through DDP (with no_sync accumulation) give the gradient of the same global batch in one process."
    args = GRAD + [f'method={method}']
    torchrun(*args, '--grad-check', str(tmp_path / 'ddp.safetensors'))
    r = subprocess.run([sys.executable, '-m', 'diffusion_lm.trainer', *args, '--grad-check', str(tmp_path / 'one.safetensors'),
                        '--simulate-ranks', '2'], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    ddp, one = load_file(tmp_path / 'ddp.safetensors'), load_file(tmp_path / 'one.safetensors')
    assert ddp['grad'].abs().max() > 0
    torch.testing.assert_close(ddp['grad'], one['grad'], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(ddp['loss'], one['loss'], rtol=1e-6, atol=0)


def test_ddp_training_checkpoints_every_rank_and_resumes(tmp_path):
    "train() under torchrun: rank 0 writes, the checkpoint records the world size and the batches drawn, resume continues."
    out = tmp_path / 'run'
    sets = ['--preset', 'shakespeare-llada', '--no-progress', '--set', 'n_layer=1', 'n_embd=32', 'n_head=2', 'context_length=32',
            'batch_size=2', 'eval_batches=1', 'sample_steps=4', 'n_samples=1', 'eval_interval=2', 'checkpoint_interval=2', 'log_interval=1',
            f'out_dir={out}']
    torchrun(*sets, 'max_steps=2')
    info = load_checkpoint(find_latest_checkpoint(out))
    assert info['step'] == 2 and info['extra'] == {'loader': {'batches_drawn': 2}, 'world_size': 2, 'method': {}}
    data = prepare_shakespeare()       # every rank draws its own batches: a function of the seed, the rank and the count
    r0, r1 = (RandomBatches.from_prepared(data, 'train', batch_size=2, context_length=32, rank=r).get_batch() for r in (0, 1))
    assert not torch.equal(r0, r1)
    torchrun(*sets, 'max_steps=4')
    assert [m['step'] for m in metrics(out)] == [1, 2, 3, 4]
    assert json.loads((out / 'result.json').read_text())['finished']


def test_init_from_mismatch_is_a_clear_error(tmp_path):
    r = cli(tmp_path / 'pre', max_steps=2, eval_interval=2, checkpoint_interval=2)
    assert r.returncode == 0, r.stderr
    bad = cli(tmp_path / 'ft', max_steps=2, n_embd=64, init_from=str(tmp_path / 'pre'))
    assert bad.returncode != 0 and 'does not fit the model' in bad.stderr and 'n_embd' in bad.stderr, bad.stderr[-2000:]
    missing = cli(tmp_path / 'ft2', max_steps=2, init_from=str(tmp_path / 'nothing'))
    assert missing.returncode != 0 and 'no checkpoint at' in missing.stderr, missing.stderr[-2000:]
    assert not (tmp_path / 'ft' / 'checkpoints').exists()          # a refused run writes no checkpoint


def test_console_script_exits_zero_and_prints_the_summary(tmp_path):
    "The installed `diffusion-lm-train` (what `pip install` puts on PATH) exits 0 and prints the run's summary as JSON."
    exe = Path(sys.executable).parent / 'diffusion-lm-train'
    assert exe.exists(), 'the console script is missing: pip install -e . registers it from settings.ini'
    r = subprocess.run([str(exe), '--preset', 'shakespeare-llada', '--no-progress', '--set', 'n_layer=1', 'n_embd=32', 'n_head=2',
                        'context_length=32', 'batch_size=2', 'max_steps=2', 'eval_batches=1', 'sample_steps=4', 'n_samples=1',
                        f'out_dir={tmp_path / "run"}'], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary['step'] == 2 and summary['finished'] and 'val_bits' in summary['last']


@pytest.mark.parametrize('name', ['masked', 'sedd'])
def test_runs_from_before_gates_load_unchanged(name, tmp_path):
    "Checkpoints written before residual gates existed (commit fbfbccc) load as they were trained, same logits."
    from diffusion_lm.trainer import load_trained, TrainConfig
    from diffusion_lm.runs import check_same_run
    from diffusion_lm.errors import UserError
    run = ROOT / 'tests' / 'fixtures' / 'runs_before_gates' / name
    ref = json.loads((run / 'reference_logits.json').read_text())
    model, method, tok, cfg = load_trained(run, which='model')
    x = torch.tensor(ref['input'])
    with torch.no_grad(): logits = model(x) if name == 'masked' else model(x, torch.tensor([ref['sigma']]))
    assert torch.equal(logits.double(), torch.tensor(ref['logits'], dtype=torch.float64))
    gated = name == 'sedd'                       # adaLN-Zero then as now; no gates without time input
    assert (model.cfg.gated, cfg.gates) == (gated, gated)
    assert 'gates' not in json.loads((run / 'config.json').read_text())
    old = json.loads((run / 'config.json').read_text())
    check_same_run(run, {**old, 'gates': gated})                # resuming it as it was: accepted
    if not gated:                                               # with today's default: refused, naming the field
        with pytest.raises(UserError, match='gates: False there, True here'):
            check_same_run(run, TrainConfig.from_dict(old).to_dict())


def test_samples_of_the_checkpoint_step_drawn_on_resume(reference, tmp_path):
    "Killed after the step-40 checkpoint but before its samples: the resumed run draws them, the same as uninterrupted."
    import shutil
    out = tmp_path / 'run'
    shutil.copytree(reference, out)
    for d in (out / 'checkpoints').iterdir():                  # keep only the step-40 checkpoint
        if d.name != 'step_000040': shutil.rmtree(d) if d.is_dir() else d.unlink()
    (out / 'checkpoints' / 'latest').write_text('step_000040')
    (out / 'samples.jsonl').write_text('')                    # the kill came before the samples of step 40
    (out / 'metrics.jsonl').write_text(''.join(json.dumps(m) + '\n' for m in metrics(reference) if m['step'] <= 40))
    r = cli(out, **LONG)
    assert r.returncode == 0, r.stdout + r.stderr
    assert samples(out) == samples(reference)


def test_a_value_is_checked_once_on_its_way_to_the_optimizer(tmp_path, monkeypatch):
    """`lr` from a dict, a preset's overrides or a prepared `Run` (what train.ipynb passes): typed and checked once
    (one `validate`, one conversion of the text), the run prepared once (data, memory check, sampling dry run), and
    the optimizer gets the float."""
    import diffusion_lm.config_values as rt, diffusion_lm.train_config as tc, diffusion_lm.trainer as tr
    calls = []
    def spy(mod, name, record):
        orig = getattr(mod, name)
        def wrapped(*a, **k):
            if (r := record(*a, **k)) is not None: calls.append(r)
            return orig(*a, **k)
        monkeypatch.setattr(mod, name, wrapped)
    spy(tc, 'validate', lambda c: 'validate')
    spy(rt, 'coerce_field', lambda cls, name, v: f'convert {v!r}' if name == 'lr' else None)
    spy(tr, 'prepare_run', lambda *a, **k: 'prepare_run')
    spy(tr, 'check_memory', lambda *a, **k: 'check_memory')
    spy(tr, '_dry_run_sampling', lambda *a, **k: 'dry_run')
    spy(tr, 'make_optimizer', lambda model, lr, *a, **k: ('optimizer', lr))
    small = dict(n_layer=1, n_embd=32, n_head=2, context_length=32, batch_size=2, max_steps=1, eval_batches=1,
                 sample_steps=2, n_samples=1, lr='3e-4')
    checked, prepared = ['validate', "convert '3e-4'"], ['check_memory', 'dry_run', ('optimizer', 3e-4)]
    assert tr.train({**small, 'out_dir': str(tmp_path / 'a')}, progress=False)['finished']
    assert calls == ['prepare_run', *checked, *prepared]          # the dict is read where the run is prepared
    calls.clear()
    cfg = tc.config_from_preset('shakespeare-llada', **small, out_dir=str(tmp_path / 'b'))
    run = tr.prepare_run(cfg)                                  # train.ipynb: show the run's estimate, then train it
    assert run.memory.total > 0 and run.cfg.lr == 3e-4
    assert tr.train(run, progress=False)['finished']
    assert calls == [*checked, 'prepare_run', *prepared]
