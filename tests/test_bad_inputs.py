"""Bad inputs and faults at every entry point, as one table (`CASES`) and a few timed fault scenarios.

Each row runs one command in a scratch folder that its `setup` filled: the trainer (`diffusion-lm-train`), the
SLURM and palindrome command lines, the papermill notebooks (`nbs/train.ipynb`, `nbs/sample.ipynb`), or a call
into the data and checkpoint code made the way a command line makes it (`cli.run_cli`). It asserts the
exit code (2 for a user error), ONE line on stderr naming the problem (no traceback), and that every file that
existed before is byte-identical afterwards (sha256 of the whole scratch tree; the run lock `.lock`, which every
start takes and every end deletes, aside) and that no checkpoint appeared -- unless the row's `after` says which files may change
and checks them itself.

Command lines run in processes of their own: forked from this test process once the library is imported and
calling the same `main(argv)` the console scripts call (a fork costs milliseconds where a fresh interpreter
spends seconds importing torch on a busy 2-core machine); rows marked `exec` start the real entry points
(`python -m diffusion_lm.trainer`, the console scripts) instead. Under papermill the exit code is papermill's
(1) and its stderr carries the cell's traceback, so a notebook row asserts the error the notebook raised (its
type and one-line message) and that nothing was written.

The timed scenarios: SIGINT/SIGTERM at random moments of a run (each stop checkpoints, every checkpoint
verifies, the resumed run logs every step once), a double Ctrl-C (exit 130), a second run on a folder in use
(refused, naming the holder), and a full disk (a real 1.2 MB tmpfs when running as root).
"""
from __future__ import annotations
import hashlib, json, os, pickle, random, re, shutil, signal, socket, subprocess, sys, time, traceback, warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
import pytest, torch
from conftest import ROOT, kernel_name, until
from diffusion_lm import trainer, slurm, slurm_script, palindromes, finetune
from diffusion_lm.cli import run_cli
from diffusion_lm.optim import make_optimizer, make_ema
from diffusion_lm.files import TEMP_RE
from diffusion_lm.checkpoint import load_checkpoint, list_checkpoints, find_latest_checkpoint, save_checkpoint, load_weights
from diffusion_lm.data import prepare_shakespeare
from diffusion_lm.palindromes.data import prepare_palindromes
from diffusion_lm.testing import make_tiny_llada
from diffusion_lm.sft_data import write_jsonl
from safetensors.torch import load_file, save_file
import numpy as np

torch.set_num_threads(1)          # the forked children inherit it: one thread each, as OMP_NUM_THREADS=1 asks
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}
NB_DIR = ROOT / 'nbs'
DEAD_PID = 2**22 + 17             # above Linux's PID_MAX_LIMIT: never a live process
TINY = dict(n_layer=1, n_embd=32, n_head=2, context_length=32, batch_size=4, warmup_steps=2, eval_batches=1, sample_steps=8,
            n_samples=2, log_interval=1, max_steps=4, checkpoint_interval=2, eval_interval=2, keep_last=5)
PROGRAMS = {'train': 'diffusion-lm-train', 'slurm': 'diffusion-lm-slurm', 'palindromes': 'diffusion-lm-palindromes',
            'finetune': 'diffusion-lm-finetune', 'api': 'diffusion_lm'}
MAINS = {'train': trainer.main, 'slurm': slurm.main, 'palindromes': palindromes.main, 'finetune': finetune.main}
MODULES = {'train': 'diffusion_lm.trainer', 'palindromes': 'diffusion_lm.palindromes', 'finetune': 'diffusion_lm.finetune'}


# ---------------------------------------------------------------- processes
def _child(main, argv, out: Path, err: Path, cwd: Path, env: dict):
    "The forked side: stdout/stderr to files, default signal handling, `main(argv)`, then exit with its code."
    code = 1
    try:
        for fd, path in ((1, out), (2, err)):
            f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644); os.dup2(f, fd); os.close(f)
        sys.stdout, sys.stderr = open(1, 'w', buffering=1, closefd=False), open(2, 'w', buffering=1, closefd=False)
        sys.stdin = open(os.devnull)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        warnings.resetwarnings()                                  # pytest records warnings; a command prints them
        warnings.simplefilter('default'); warnings.simplefilter('ignore', DeprecationWarning)
        warnings._showwarnmsg_impl = lambda m: sys.stderr.write(
            warnings.formatwarning(m.message, m.category, m.filename, m.lineno, m.line))
        for s in (signal.SIGTERM, signal.SIGUSR1): signal.signal(s, signal.SIG_DFL)
        os.chdir(cwd); os.environ.clear(); os.environ.update(env)
        code = main(list(argv))
    except SystemExit as e: code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException: traceback.print_exc(); code = 1        # what an uncaught exception does in an interpreter
    finally:
        try: sys.stdout.flush(); sys.stderr.flush()
        finally: os._exit(code if isinstance(code, int) else 1)


class Proc:
    "One command in a process of its own: `main(argv)` in a fork of this process, or `cmd` exec'd; output to files."
    def __init__(self, logs: Path, cwd: Path, main=None, argv=(), cmd=None, env=None):
        logs.mkdir(parents=True, exist_ok=True)
        n = len(list(logs.glob('*.err')))
        self.out_file, self.err_file, self.code = logs / f'{n}.out', logs / f'{n}.err', None
        env = {**ENV, **(env or {})}
        if cmd is not None:
            with open(self.out_file, 'w') as o, open(self.err_file, 'w') as e:
                self.popen = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
            self.pid = self.popen.pid
            return
        self.popen, self.pid = None, os.fork()
        if self.pid == 0: _child(main, argv, self.out_file, self.err_file, cwd, env)

    def poll(self) -> int | None:
        if self.code is None:
            if self.popen is not None: self.code = self.popen.poll()
            else:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid: self.code = os.waitstatus_to_exitcode(status)
        return self.code

    def wait(self, timeout: float = 300) -> int:
        t0 = time.monotonic()
        while self.poll() is None:
            if time.monotonic() - t0 > timeout:
                os.kill(self.pid, signal.SIGKILL); self.wait(30)
                raise TimeoutError(f'the command hung (killed after {timeout} s): {self.stderr[-2000:]}')
            time.sleep(0.02)
        return self.code

    def send_signal(self, sig): os.kill(self.pid, sig)
    @property
    def stdout(self) -> str: return self.out_file.read_text(errors='replace')
    @property
    def stderr(self) -> str: return self.err_file.read_text(errors='replace')


def run(prog: str, argv, cwd: Path, logs: Path, env=None, exec_: str | None = None, background=False, timeout=300) -> Proc:
    "Run program `prog` with `argv`: forked, or exec'd as 'module' (`python -m`) or 'script' (the console script)."
    if exec_ == 'module': p = Proc(logs, cwd, cmd=[sys.executable, '-m', MODULES[prog], *argv], env=env)
    elif exec_ == 'script': p = Proc(logs, cwd, cmd=[str(Path(sys.executable).parent / PROGRAMS[prog]), *argv], env=env)
    elif prog == 'api': p = Proc(logs, cwd, main=argv, env=env)              # `argv` is the call, made a main by `api`
    else: p = Proc(logs, cwd, main=MAINS[prog], argv=argv, env=env)
    if not background: p.wait(timeout)
    return p


def api(call) -> Callable:
    "A `main(argv)` that makes `call()` the way the command lines run their work (one-line errors, exit code 2)."
    return lambda argv: run_cli(PROGRAMS['api'], lambda a: call(), argv)


def train_argv(out, *sets: str, preset: str = 'shakespeare-llada') -> list[str]:
    "The trainer's command line: the tiny config, `out_dir=out`, then `sets` (later values win)."
    return ['--preset', preset, '--no-progress', '--set', *(f'{k}={v}' for k, v in TINY.items()), f'out_dir={out}',
            *(['--set', *sets] if sets else [])]


def assert_one_line(prog: str, err: str, message: str | None):
    "No traceback; with `message`, the last line is `prog: ...` holding it and is the only such line."
    assert 'Traceback' not in err, err[-4000:]
    lines = [l for l in err.splitlines() if l.strip()]
    ours = [l for l in lines if re.match(rf'{re.escape(PROGRAMS[prog])}( [a-z]+)?: ', l)]   # `prog` or `prog subcommand`
    if message is None:
        assert ours == [], err[-4000:]
        return
    assert lines and ours == [lines[-1]], err[-4000:]
    assert message in lines[-1], f'{message!r} not in {lines[-1]!r}'


# ---------------------------------------------------------------- files
def sha(p: Path) -> str: return hashlib.sha256(p.read_bytes()).hexdigest()

def snapshot(root: Path) -> dict[str, str]:
    "sha256 of every file under `root` by relative path (the run lock aside: every start rewrites its holder)."
    return {str(p.relative_to(root)): sha(p) for p in sorted(root.rglob('*'))
            if p.is_file() and not p.is_symlink() and p.name != '.lock'}

def assert_kept(before: dict, after: dict, under: str = ''):
    "Every file of `before` (under the relative folder `under`) is in `after` with the same bytes."
    changed = [f for f in before if f.startswith(under) and after.get(f) != before[f]]
    assert changed == [], f'changed or removed: {changed}'

def metrics(run: Path) -> list[dict]:
    p = run / 'metrics.jsonl'
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()] if p.exists() else []

def last_step(run: Path) -> int:
    try: return max([m['step'] for m in metrics(run)], default=0)
    except ValueError: return 0      # a line being written

def rehash(step_dir: Path):
    "Make meta.json agree with the files of a tampered checkpoint (sizes and sha256), so that only the content is wrong."
    meta = json.loads((step_dir / 'meta.json').read_text())
    for n in meta['files']:
        b = (step_dir / n).read_bytes()
        meta['files'][n] = {'bytes': len(b), 'sha256': hashlib.sha256(b).hexdigest()}
    (step_dir / 'meta.json').write_text(json.dumps(meta))

def cut(path: Path, keep: float = 0.5):
    "Truncate a file to `keep` of its size."
    b = path.read_bytes(); path.write_bytes(b[:int(len(b) * keep)])

class Payload:
    "Unpickling this runs `touch <path>`: the proof that a planted pickle was never unpickled is that `path` is absent."
    def __init__(self, path): self.path = str(path)
    def __reduce__(self): return (os.system, (f'touch {self.path}',))


# ---------------------------------------------------------------- the run every row starts from
@pytest.fixture(scope='module')
def trained(tmp_path_factory) -> Path:
    "A finished tiny run (4 steps, checkpoints at 2 and 4), copied by the rows that need a run folder."
    d = tmp_path_factory.mktemp('trained')
    p = run('train', train_argv(d / 'run'), d, d / 'logs')
    assert p.code == 0, p.stderr[-3000:]
    assert [c.name for c in list_checkpoints(d / 'run')] == ['step_000002', 'step_000004']
    return d / 'run'


@pytest.fixture(scope='module', autouse=True)
def warm():
    "Import here what the commands import on first use (torch._dynamo and sympy, papermill: seconds), once, not in every fork."
    m = torch.nn.Linear(2, 2); opt = make_optimizer(m, 1e-3)
    m(torch.zeros(1, 2)).sum().backward(); opt.step(); make_ema(m, 0.9).update_parameters(m)
    slurm.validate_job(slurm.SlurmJob(notebook=str(NB_DIR / 'train.ipynb')), '/r'); slurm_script._default_kernel()   # papermill


@pytest.fixture(scope='module', autouse=True)
def shared_data_untouched():
    "The prepared data every row reads (data/prepared/) is the same after the whole catalogue."
    shake = prepare_shakespeare(); pal = prepare_palindromes()
    before = {d: snapshot(d) for d in (shake, pal)}
    yield
    for d, snap in before.items(): assert snapshot(d) == snap, f'{d} changed'


# ---------------------------------------------------------------- setups
def with_run(w, t): shutil.copytree(t, w / 'run')

def with_config(text):
    def setup(w, t): (w / 'cfg.json').write_text(text)
    return setup

def with_data(name, damage):
    "A copy of the prepared data set `name` in w/data, damaged by `damage(folder)`."
    def setup(w, t):
        src = prepare_shakespeare() if name == 'shakespeare' else prepare_palindromes()
        shutil.copytree(src, w / 'data'); damage(w / 'data')
    return setup

def with_damaged_run(damage):
    "A copy of the trained run, then `damage(run folder)`."
    def setup(w, t):
        with_run(w, t); damage(w / 'run')
    return setup

def ckpt(run: Path, step: int) -> Path: return run / 'checkpoints' / f'step_{step:06d}'

def plant_state_pickle(run: Path):
    "state.pt of the newest checkpoint replaced by a pickle (torch.save zip format) that would run a command."
    torch.save({'step': 4, 'x': Payload(run.parent / 'pwned')}, ckpt(run, 4) / 'state.pt'); rehash(ckpt(run, 4))

def plant_weights_pickle(run: Path):
    "model.safetensors of the newest checkpoint replaced by a plain pickle that would run a command."
    (ckpt(run, 4) / 'model.safetensors').write_bytes(pickle.dumps({'w': Payload(run.parent / 'pwned')})); rehash(ckpt(run, 4))

def with_evil_pt(w, t): torch.save({'model': Payload(w / 'pwned')}, w / 'evil.pt')

def with_photo_and_hf_folders(w, t):
    "A folder of neither format (a photo) and a folder that looks like a Hugging Face model (a config.json)."
    (w / 'photos').mkdir(); (w / 'photos' / 'cat.jpg').write_bytes(b'')
    (w / 'hf').mkdir(); (w / 'hf' / 'config.json').write_text('{}')

def with_fake_slurm(w, t):
    "scontrol and sacct that know no job (what a cluster answers for a wrong id)."
    (w / 'bin').mkdir()
    for c in ('scontrol', 'sacct'):
        (w / 'bin' / c).write_text('#!/bin/sh\necho "slurm_load_jobs error: Invalid job id specified" >&2\nexit 1\n')
        (w / 'bin' / c).chmod(0o755)

def with_empty_bin(w, t): (w / 'bin').mkdir()

def with_slurm_run(w, t):
    "A run directory that already holds a submitted run (job.json)."
    (w / 'runs' / 'taken').mkdir(parents=True); (w / 'runs' / 'taken' / 'job.json').write_text('{"job_id": "7"}')

def with_stale_leftovers(run: Path):
    "What killed writers leave: a prune's trash folder, a save's temporary folder and a temporary `latest`."
    cks = run / 'checkpoints'
    shutil.copytree(ckpt(run, 2), cks / f'step_000002.trash-{DEAD_PID}-abcd1234')
    shutil.copytree(ckpt(run, 4), cks / f'step_000006.tmp-{DEAD_PID}-00ff00ff')
    (cks / f'latest.tmp-{DEAD_PID}-12345678').write_text('step_000006\n')


# ---------------------------------------------------------------- checks of rows that may change files
def no_run_folder(w, before, p):
    assert not (w / 'ft').exists(), 'a run folder was created for a run that was refused'

def no_pwned(w, before, p):
    assert not list(w.rglob('pwned*')), 'a planted pickle was unpickled'

def resumed_to(step, keep_steps=(2, 4)):
    "The run continued to `step` from its checkpoints: earlier checkpoints byte-identical, every step logged once."
    def after(w, before, p):
        now = snapshot(w)
        for s in keep_steps: assert_kept(before, now, f'run/checkpoints/step_{s:06d}/')
        assert [m['step'] for m in metrics(w / 'run')] == list(range(1, step + 1))
        assert json.loads((w / 'run' / 'result.json').read_text())['finished']
    return after

def half_line_repaired(w, before, p):
    resumed_to(6)(w, before, p)
    assert 'dropped a half-written last line' in p.stderr
    old = [l for l in (w / 'before-metrics.jsonl').read_text().splitlines()]
    assert (w / 'run' / 'metrics.jsonl').read_text().splitlines()[:len(old)] == old     # the whole lines, untouched

def stale_lock_taken(w, before, p):
    "The dead process's lock was taken over (else the run was refused), and the finished run left no lock nor PID file."
    resumed_to(6)(w, before, p)
    assert not (w / 'run' / '.lock').exists() and not (w / 'run' / 'train.pid').exists()

def leftovers_swept(w, before, p):
    resumed_to(6)(w, before, p)
    assert [q.name for q in (w / 'run' / 'checkpoints').iterdir() if TEMP_RE.match(q.name)] == []

def fell_back_to_step_2(w, before, p):
    "A damaged newest checkpoint: the run resumes from the one before, with a warning naming both."
    resumed_to(6, keep_steps=(2,))(w, before, p)
    assert 'points to step_000004, which is missing or incomplete' in p.stderr and 'step_000002' in p.stderr

def dry_run_script(w, before, p):
    "A hostile value is accepted: printed in a script bash parses, nothing written, nothing run."
    assert p.stdout.startswith('#!/bin/bash') and subprocess.run(['bash', '-n'], input=p.stdout, text=True).returncode == 0
    assert not (w / 'runs').exists() and not list(w.rglob('pwned*'))

def unsubmitted(w, before, p):
    "sbatch missing: the run directory is written, but no job.json claims it was submitted."
    assert (w / 'runs' / 's' / 'job.sbatch').exists() and not (w / 'runs' / 's' / 'job.json').exists()

# ---------------------------------------------------------------- issue 24, items 4-5: setups of the rows at the end of CASES
def with_llada(damage=None):
    "The tiny LLaDA-format model of diffusion_lm.testing in w/m and a chat file w/chat.jsonl, then `damage(folder)`."
    def setup(w, t):
        make_tiny_llada(w / 'm')
        write_jsonl(w / 'chat.jsonl', [{'prompt': 'say hi', 'response': 'hi'}] * 4)
        if damage: damage(w / 'm')
    return setup

def as_shard(m: Path):
    "The weights of model folder `m` as a one-shard download: model.safetensors.index.json naming the shard."
    names = list(load_file(m / 'model.safetensors'))
    (m / 'model.safetensors').rename(m / 'model-00001-of-00001.safetensors')
    (m / 'model.safetensors.index.json').write_text(json.dumps(
        {'metadata': {}, 'weight_map': dict.fromkeys(names, 'model-00001-of-00001.safetensors')}))

def with_finetune_marker(w, t):
    "A folder that carries the marker of a fine-tuning run (its finetune_config.json), and the trained run beside it."
    with_run(w, t); (w / 'ft').mkdir(); (w / 'ft' / 'finetune_config.json').write_text('{}')

def with_run_and_llada(w, t): with_run(w, t); with_llada()(w, t)

def with_finetune_run(damage):
    """The tiny model, a chat file and a fine-tuning run folder of the same settings as the FR rows (finetune_config.json,
    a metrics line, a checkpoint folder of step 2 that is not complete), then `damage(run folder)`."""
    def setup(w, t):
        with_llada()(w, t)
        cfg = finetune.FinetuneConfig(model=str(w / 'm'), data=str(w / 'chat.jsonl'), out_dir=str(w / 'ft'), device='cpu')
        (w / 'ft' / 'checkpoints' / 'step_000002').mkdir(parents=True)
        (w / 'ft' / 'checkpoints' / 'step_000002' / 'meta.json').write_text('[]')
        (w / 'ft' / 'finetune_config.json').write_text(json.dumps(cfg.to_dict(), indent=1))
        (w / 'ft' / 'metrics.jsonl').write_text('{"step": 1, "loss": 5.0}\n{"step": 2, "loss": 4.0}\n')
        damage(w / 'ft')
    return setup


# ---------------------------------------------------------------- the table
@dataclass
class Case:
    id: str
    prog: str                               # 'train', 'slurm', 'palindromes', 'api', 'nb-train', 'nb-sample'
    args: Callable                          # f(w) -> argv (papermill: a dict of -p values; api: the call)
    message: str | None                     # what the one line must hold (None: a success, no such line)
    setup: Callable | None = None           # f(w, trained run): the files the command starts from
    code: int = 2
    after: Callable | None = None           # f(w, snapshot before, proc): checks of a row that may change files
    exec: str | None = None                 # 'module' or 'script': the real entry point instead of a fork
    env: Callable | None = None             # f(w) -> extra environment variables
    error: str = 'UserError'                # notebooks: the type of the error the notebook raises
    timeout: float = 300


def T(id, sets, message, **kw) -> Case:
    "A trainer row: the tiny config with `sets`, out_dir w/run."
    return Case(id, 'train', lambda w, s=tuple(sets): train_argv(w / 'run', *s), message, **kw)

def S(id, argv, message, **kw) -> Case:
    "A diffusion-lm-slurm row; `argv` may use {w} and {nb}."
    return Case(id, 'slurm', lambda w, a=tuple(argv): [x.format(w=w, nb=NB_DIR / 'train.ipynb') for x in a], message, **kw)

def P(id, argv, message, **kw) -> Case:
    "A diffusion-lm-palindromes row on the trained (character-level Shakespeare) run; `argv` may use {w}."
    kw.setdefault('setup', with_run)
    return Case(id, 'palindromes', lambda w, a=tuple(argv): [x.format(w=w) for x in a], message, **kw)

def F(id, sets, message, **kw) -> Case:
    "A diffusion-lm-finetune row: a model folder that does not exist, `sets` after it (values are checked before the model is read)."
    return Case(id, 'finetune', lambda w, s=tuple(sets): ['--set', f'model={w}/nothing', f'data={w}/chat.jsonl', f'out_dir={w}/ft', *s],
                message, after=no_run_folder, **kw)

def FM(id, sets, message, damage=None, **kw) -> Case:
    "A diffusion-lm-finetune row on the tiny LLaDA-format model in w/m, damaged by `damage(folder)`: refused before any run folder."
    return Case(id, 'finetune', lambda w, s=tuple(sets): ['--no-progress', '--set', f'model={w}/m', f'data={w}/chat.jsonl',
                                                         f'out_dir={w}/ft', 'device=cpu', *s],
                message, setup=with_llada(damage), **{'after': no_run_folder, **kw})

def FR(id, damage, message, **kw) -> Case:
    "A diffusion-lm-finetune row on the fine-tuning run folder of `with_finetune_run(damage)`: refused, every file kept."
    return Case(id, 'finetune', lambda w: ['--no-progress', '--set', f'model={w}/m', f'data={w}/chat.jsonl', f'out_dir={w}/ft',
                                           'device=cpu'], message, setup=with_finetune_run(damage), **kw)

def A(id, call, message, **kw) -> Case:
    "A call into the library, run as a command (`run_cli`): `call(w)`."
    return Case(id, 'api', lambda w, c=call: api(lambda: c(w)), message, **kw)

HOSTILE = 'x"; rm -rf ~ #\n$(touch pwned)`touch pwned2`\' ; $HOME'
LONG = ['max_steps=6']

CASES = [
    # ---- diffusion-lm-train: types, ranges, names, how fields fit together (refused before any work)
    T('lr-not-a-number', ['lr=abc'], "TrainConfig.lr='abc' is not a number; give e.g. lr=0.001", exec='module'),
    T('batch-size-not-an-integer', ['batch_size=abc'], "TrainConfig.batch_size='abc' is not an integer", exec='script'),
    T('max-steps-fractional', ['max_steps=2.5'], 'TrainConfig.max_steps=2.5 is not an integer'),
    T('n-layer-bool-text', ['n_layer=True'], 'TrainConfig.n_layer=True is not an integer'),
    T('lr-zero', ['lr=0'], 'TrainConfig.lr=0.0 is out of range (0, 1]'),
    T('lr-negative', ['lr=-1e-3'], 'TrainConfig.lr=-0.001 is out of range (0, 1]'),
    T('lr-infinite', ['lr=inf'], 'TrainConfig.lr=inf is out of range'),
    T('min-lr-nan', ['min_lr=nan'], 'TrainConfig.min_lr=nan is out of range'),
    T('min-lr-infinite', ['min_lr=inf'], 'TrainConfig.min_lr=inf is out of range'),
    T('min-lr-above-lr', ['lr=1e-3', 'min_lr=1e-2'], 'min_lr is where the schedule ends: between 0 and lr=0.001'),
    T('warmup-negative', ['warmup_steps=-1'], 'TrainConfig.warmup_steps=-1 is out of range [0, inf]'),
    T('eval-interval-zero', ['eval_interval=0'], 'TrainConfig.eval_interval=0 is out of range [1, inf]'),
    T('log-interval-zero', ['log_interval=0'], 'TrainConfig.log_interval=0 is out of range [1, inf]'),
    T('checkpoint-interval-zero', ['checkpoint_interval=0'], 'TrainConfig.checkpoint_interval=0 is out of range [1, inf]'),
    T('sample-interval-negative', ['sample_interval=-5'], 'TrainConfig.sample_interval=-5 is out of range [0, inf]'),
    T('keep-last-zero', ['keep_last=0'], 'TrainConfig.keep_last=0 is out of range [1, inf]'),
    T('grad-accum-zero', ['grad_accum=0'], 'TrainConfig.grad_accum=0 is out of range [1, inf]'),
    T('dropout-one', ['dropout=1'], 'TrainConfig.dropout=1.0 is out of range [0, 1)'),
    T('ema-decay-one', ['ema_decay=1'], 'TrainConfig.ema_decay=1.0 is out of range [0, 1)'),
    T('temperature-negative', ['temperature=-1'], 'TrainConfig.temperature=-1.0 is out of range [0, inf]'),
    T('epochs-zero', ['epochs=0'], 'TrainConfig.epochs=0.0 is out of range (0, 1000000.0]'),
    T('unknown-key', ['max_step=10'], "TrainConfig has no field 'max_step'; did you mean max_steps"),
    T('set-without-equals', ['lr'], "--set expects KEY=VALUE, got 'lr'"),
    Case('unknown-preset', 'train', lambda w: ['--preset', 'gpt2', '--set', f'out_dir={w}/run'], 'unknown preset'),
    Case('config-file-missing', 'train', lambda w: [*train_argv(w / 'run'), '--config', str(w / 'nope.json')],
         'nope.json', ),
    Case('config-file-garbage', 'train', lambda w: [*train_argv(w / 'run'), '--config', str(w / 'cfg.json')],
         'give a JSON file of TrainConfig fields', setup=with_config('{lr: 3e-4')),
    Case('unknown-option', 'train', lambda w: [*train_argv(w / 'run'), '--lr', '1'], 'unrecognized arguments: --lr 1'),
    T('method-unknown', ['method=gpt'], "TrainConfig.method='gpt': choose one of ar, masked, sedd, block"),
    T('precision-unknown', ['precision=fp16'], "TrainConfig.precision='fp16': choose one of auto, fp32, bf16"),
    T('device-cuda-absent', ['device=cuda'], "device='cuda' but no CUDA device is available here"),
    T('clip-one-number', ['clip=[0.5]'], 'TrainConfig.clip=[0.5]: give [lo, hi]'),
    T('block-size-not-dividing', ['method=block', 'block_size=5'], 'TrainConfig.block_size=5 must divide context_length=32'),
    T('uniform-sedd-without-time', ['method=sedd', 'graph=uniform', 'cond_dim=0'], 'SEDD on the uniform graph needs time'),
    T('sampler-unknown', ['sampler=nope'], "TrainConfig.sampler='nope': masked samples with confidence"),
    T('sample-option-unknown', ['sample_options={"bogus": 1}'], "TrainConfig.sample_options has ['bogus']"),
    T('sample-option-bad-value', ['sampler=confidence', 'sample_options={"remask": "bogus"}'],
      'the sampling settings fail before training starts: remask must be one of'),
    T('sample-option-wrong-sampler', ['sample_options={"threshold": 0.9}'],
      'the sampling settings fail before training starts: threshold and factor compare probabilities'),
    # ---- data: what the data set can give, and the memory a step needs, checked up front
    T('context-longer-than-data', ['context_length=100000000'], 'context_length=100000000 is longer than the train split'),
    T('context-longer-than-val-split', ['context_length=200000'], 'context_length=200000 is longer than the val split'),
    T('memory-exceeds-free', ['context_length=100000', 'batch_size=512'], 'a training step needs about'),
    T('batch-exceeds-memory', ['batch_size=10000000'], 'a training step needs about'),
    T('dataset-unknown', ['dataset=nope'], "unknown data set 'nope'"),
    Case('dataset-metadata-garbage', 'train', lambda w: train_argv(w / 'run', f'dataset={w}/data'),
         'metadata.json is unreadable (JSONDecodeError', setup=with_data('shakespeare', lambda d: (d / 'metadata.json').write_text('{"na'))),
    Case('dataset-split-truncated', 'train', lambda w: train_argv(w / 'run', f'dataset={w}/data'),
         'train.npy is unreadable', setup=with_data('shakespeare', lambda d: cut(d / 'train.npy'))),
    Case('dataset-rows-cut-short', 'train', lambda w: train_argv(w / 'run', f'dataset={w}/data'),
         'train.bin holds', setup=with_data('palindromes', lambda d: cut(d / 'train.bin', 0.25))),
    # ---- run folders: another run, corrupt and tampered checkpoints, planted pickles, logs, locks, leftovers
    T('another-run-in-out-dir', ['n_embd=64'], 'holds another run (n_embd: 32 there, 64 here)', setup=with_run),
    T('another-method-in-out-dir', ['method=ar'], "holds another run (method: 'masked' there, 'ar' here)", setup=with_run),
    T('resume-never-on-a-run', ['resume=never'], "resume='never' would mix a new run into it", setup=with_run),
    T('resume-must-without-checkpoint', ['resume=must'], "resume='must' but"),
    T('run-config-garbage', LONG, 'config.json is not a readable run config',
      setup=with_damaged_run(lambda r: (shutil.rmtree(r / 'checkpoints'), (r / 'config.json').write_text('garbage{')))),
    T('metrics-half-written-line', LONG, None, code=0, after=half_line_repaired,
      setup=with_damaged_run(lambda r: (shutil.copy(r / 'metrics.jsonl', r.parent / 'before-metrics.jsonl'),
                                         open(r / 'metrics.jsonl', 'a').write('{"step": 5, "train_lo')))),
    T('metrics-garbage-middle-line', LONG, 'metrics.jsonl has unreadable lines [2]',
      setup=with_damaged_run(lambda r: (r / 'metrics.jsonl').write_text(
          '\n'.join(l if i != 1 else 'garbage' for i, l in enumerate((r / 'metrics.jsonl').read_text().splitlines())) + '\n'))),
    T('newest-checkpoint-truncated', LONG, None, code=0, after=fell_back_to_step_2,
      setup=with_damaged_run(lambda r: cut(ckpt(r, 4) / 'model.safetensors'))),
    T('every-checkpoint-truncated', LONG, 'but none is complete (truncated or corrupt files)',
      setup=with_damaged_run(lambda r: [cut(ckpt(r, s) / 'model.safetensors') for s in (2, 4)])),
    T('checkpoint-config-garbage', LONG, 'config.json is corrupt or truncated (sha256 mismatch',
      setup=with_damaged_run(lambda r: (ckpt(r, 4) / 'config.json').write_text(
          'x' * len((ckpt(r, 4) / 'config.json').read_bytes())))),
    T('checkpoint-hash-tampered', LONG, 'model.safetensors is corrupt or truncated (sha256 mismatch against meta.json): '
      'use an earlier checkpoint', setup=with_damaged_run(lambda r: (ckpt(r, 4) / 'model.safetensors').write_bytes(
          (ckpt(r, 4) / 'model.safetensors').read_bytes()[:-8] + b'\x7f' * 8))),
    T('checkpoint-meta-garbage-everywhere', LONG, 'but none is complete',
      setup=with_damaged_run(lambda r: [(ckpt(r, s) / 'meta.json').write_text('{') for s in (2, 4)])),
    T('pickle-planted-as-state', LONG, 'GLOBAL posix.system whose module posix is blocked.), so nothing in it was run', after=no_pwned,
      setup=with_damaged_run(plant_state_pickle)),
    T('pickle-planted-as-weights', LONG, 'model.safetensors is corrupt or truncated', after=no_pwned,
      setup=with_damaged_run(plant_weights_pickle)),
    Case('init-from-pickle-file', 'train', lambda w: train_argv(w / 'run', f'init_from={w}/evil.pt'),
         'evil.pt is a file, not a checkpoint', setup=with_evil_pt, after=no_pwned),
    Case('init-from-missing', 'train', lambda w: train_argv(w / 'ft', f'init_from={w}/nothing'), 'no checkpoint at'),
    Case('init-from-no-format', 'train', lambda w: train_argv(w / 'ft', f'init_from={w}/photos'),
         'it holds cat.jpg); the formats are: run: ', setup=with_photo_and_hf_folders),
    Case('init-from-hf-folder', 'train', lambda w: train_argv(w / 'ft', f'init_from={w}/hf'),
         'is a Hugging Face LLaDA-format folder: training starts from', setup=with_photo_and_hf_folders),
    Case('init-from-other-shape', 'train', lambda w: train_argv(w / 'ft', 'n_embd=64', f'init_from={w}/run'),
         'does not fit the model being trained', setup=with_run),
    T('stale-lock-of-a-dead-process', LONG, None, code=0, after=stale_lock_taken,
      setup=with_damaged_run(lambda r: (r / '.lock').write_text(json.dumps({'pid': DEAD_PID, 'host': 'gone', 'started': '2020'})))),
    T('killed-pruning-leftovers', LONG, None, code=0, after=leftovers_swept, setup=with_damaged_run(with_stale_leftovers)),
    # ---- the checkpoint and data code, called as a command calls it
    A('checkpoint-into-wrong-model', lambda w: load_checkpoint(w / 'run', model=torch.nn.Linear(3, 3)),
      'do not fit the model', setup=with_run),
    A('nan-weights-never-saved', lambda w: save_checkpoint(w / 'run', 6, {'w': torch.tensor([float('nan')])}),
      "weight 'w' holds NaN or inf", setup=with_run),
    A('load-weights-of-a-pickle', lambda w: load_weights(w / 'evil.pt'), 'evil.pt is a file, not a checkpoint',
      setup=with_evil_pt, after=no_pwned),
    A('load-state-pickle-refused', lambda w: load_checkpoint(ckpt(w / 'run', 4)), 'nothing in it was run',
      setup=with_damaged_run(plant_state_pickle), after=no_pwned),
    A('corpus-not-utf8', lambda w: prepare_shakespeare(w / 'out', source=w / 'cfg.json'), 'is not UTF-8 text',
      setup=lambda w, t: (w / 'cfg.json').write_bytes('café'.encode('latin-1'))),
    A('palindromes-not-strings', lambda w: prepare_palindromes(w / 'out', source=w / 'cfg.json'), 'JSON list of strings',
      setup=with_config('["abba", 3]')),
    A('row-width-too-small', lambda w: prepare_palindromes(w / 'out', row_width=2), 'row_width must be an integer >= 3'),
    A('prepared-folder-other-options', lambda w: prepare_palindromes(w / 'p', row_width=16), 'pass overwrite=True',
      setup=lambda w, t: prepare_palindromes(w / 'p')),
    # ---- diffusion-lm-slurm: hostile values, bad resources, waiting that gives up
    S('slurm-unknown-parameter-hostile', ['submit', '{nb}', '--dry-run', '--runs-root', '{w}/runs', '--set', 'job_name=x; rm -rf ~'],
      "takes no parameter ['job_name']"),
    S('slurm-name-hostile', ['submit', '{nb}', '--dry-run', '--runs-root', '{w}/runs', '--name', 'x; rm -rf ~'],
      "name='x; rm -rf ~': use letters, digits", exec='script'),
    S('slurm-newline-in-sbatch-option', ['submit', '{nb}', '--dry-run', '--runs-root', '{w}/runs', '--partition', 'a\n#SBATCH --wrap=id'],
      'holds a space or "#"'),
    S('slurm-command-substitution-in-option', ['submit', '{nb}', '--dry-run', '--runs-root', '{w}/runs', '--account', '$(touch pwned) x'],
      'holds a space or "#"'),
    S('slurm-space-in-runs-root', ['submit', '{nb}', '--dry-run', '--runs-root', '{w}/my runs'], '#SBATCH lines cannot carry'),
    S('slurm-hostile-value-accepted-verbatim', ['submit', '{nb}', '--dry-run', '--runs-root', '{w}/runs', '--name', 'ok',
                                                '--set', f'dataset={HOSTILE}'], None, code=0, after=dry_run_script),
    S('slurm-time-limit', ['submit', '{nb}', '--dry-run', '--time', '5h'], 'not a SLURM time limit'),
    S('slurm-memory', ['submit', '{nb}', '--dry-run', '--mem', 'lots'], "mem='lots'"),
    S('slurm-gpus-negative', ['submit', '{nb}', '--dry-run', '--gpus-per-node', '-1'], 'gpus_per_node=-1'),
    S('slurm-signal-after-limit', ['submit', '{nb}', '--dry-run', '--time', '10', '--signal-seconds', '9999'],
      'signal_seconds=9999 must be an int between 0 and the time limit (600 s)'),
    S('slurm-extra-option-not-an-option', ['submit', '{nb}', '--dry-run', '--sbatch', 'exclusive'], "extra_sbatch entry 'exclusive'"),
    S('slurm-train-config-type', ['submit', '{nb}', '--dry-run', '--set', 'lr=abc'], "TrainConfig.lr='abc' is not a number"),
    S('slurm-unknown-preset', ['submit', '{nb}', '--dry-run', '--set', 'preset=no-such-preset'], "unknown preset 'no-such-preset'"),
    S('slurm-out-dir-set', ['submit', '{nb}', '--dry-run', '--set', 'out_dir=/tmp/x'], 'leave out_dir out'),
    S('slurm-set-without-equals', ['submit', '{nb}', '--set', 'max_steps'], '--set expects NAME=VALUE'),
    S('slurm-notebook-missing', ['submit', '{w}/missing.ipynb', '--runs-root', '{w}/runs'], 'missing.ipynb not found'),
    S('slurm-run-dir-taken', ['submit', '{nb}', '--runs-root', '{w}/runs', '--name', 'taken'], 'already holds a run',
      setup=with_slurm_run),
    S('slurm-pipeline-init-from', ['pipeline', '--runs-root', '{w}/runs', '--finetune', '--set', 'init_from=x'],
      'finetune_params sets init_from'),
    S('slurm-submit-without-sbatch', ['submit', '{nb}', '--runs-root', '{w}/runs', '--name', 's', '--set', 'max_steps=5'],
      'SLURM is not installed here: sbatch not found', setup=with_empty_bin, env=lambda w: {'PATH': str(w / 'bin')},
      after=unsubmitted),
    S('slurm-wait-not-a-number', ['wait', '12x'], "job id '12x' is not a number"),
    S('slurm-wait-without-client', ['wait', '4242'], 'cannot wait: no SLURM client here', setup=with_empty_bin,
      env=lambda w: {'PATH': str(w / 'bin')}),
    S('slurm-wait-unknown-job-gives-up', ['wait', '4242'], 'job 4242 is not known to SLURM', setup=with_fake_slurm,
      env=lambda w: {'PATH': f'{w / "bin"}:{os.environ["PATH"]}'}, timeout=120),
    # ---- diffusion-lm-palindromes
    P('palindromes-model-missing', ['--model', '{w}/nothing'], 'no such checkpoint or run folder', exec='script'),
    P('palindromes-model-pickle', ['--model', '{w}/evil.pt'], 'evil.pt is a file, not a checkpoint', setup=with_evil_pt,
      after=no_pwned),
    P('palindromes-alphabet-not-in-vocabulary', ['--model', '{w}/run', '--alphabet', 'abé', '--length', '5', '--steps', '2'],
      "alphabet character 'é' is not in the vocabulary"),
    P('palindromes-default-alphabet-digits', ['--model', '{w}/run', '--length', '5', '--steps', '2'],
      "alphabet character '0' is not in the vocabulary", exec='module'),
    P('palindromes-count-not-a-number', ['--model', '{w}/run', '--n-samples', 'abc'], "invalid int value: 'abc'"),
    P('palindromes-no-samples', ['--model', '{w}/run', '--n-samples', '0'], 'must be >= 1'),
    P('palindromes-length-too-long', ['--model', '{w}/run', '--length', '999'], 'give a text length in 1..30'),
    P('palindromes-mode-unknown', ['--model', '{w}/run', '--mode', 'fuzzy'], "invalid choice: 'fuzzy'"),
    P('palindromes-device-cuda', ['--model', '{w}/run', '--device', 'cuda'], "device='cuda' but no CUDA device"),
    # ---- diffusion-lm-finetune (a real LLaDA-format model: tests/test_finetune.py)
    F('finetune-lr-text', ['lr=abc'], "TrainConfig.lr='abc' is not a number", exec='script'),
    F('finetune-lr-negative', ['lr=-1'], 'TrainConfig.lr=-1.0 is out of range (0, 1]'),
    F('finetune-max-steps-fractional', ['max_steps=2.5'], 'TrainConfig.max_steps=2.5 is not an integer'),
    F('finetune-lora-rank-zero', ['lora_rank=0'], 'TrainConfig.lora_rank=0 is out of range [1, inf]'),
    F('finetune-unknown-field', ['bogus=1'], "TrainConfig has no field 'bogus'", exec='module'),
    F('finetune-model-missing', [], 'no such folder'),
    # ---- the notebooks under papermill (-p values typed by papermill, as a user types them)
    Case('nb-train-lr-text', 'nb-train', lambda w: {'lr': 'abc'}, "TrainConfig.lr='abc' is not a number"),
    Case('nb-train-batch-size-text', 'nb-train', lambda w: {'batch_size': 'abc'}, "TrainConfig.batch_size='abc' is not an integer"),
    Case('nb-train-max-steps-fractional', 'nb-train', lambda w: {'max_steps': '2.5'}, 'TrainConfig.max_steps=2.5 is not an integer'),
    Case('nb-sample-n-samples-text', 'nb-sample', lambda w: {'n_samples': 'abc'}, "SampleConfig.n_samples='abc' is not an integer",
         setup=with_run),
    Case('nb-sample-checkpoint-pickle', 'nb-sample', lambda w: {'checkpoint': str(w / 'evil.pt')}, 'evil.pt is a file, not a checkpoint',
         setup=with_evil_pt, after=no_pwned),
    # ======== issue 24, items 4-5: numbers finite and in range, files named with their fix, model folders (helper E)
    # ---- diffusion-lm-train: overflow, negative and meaningless values, --config files that are not objects
    T('e-lr-overflow', ['lr=1e308'], 'TrainConfig.lr=1e+308 is out of range (0, 1]; an AdamW step moves each weight'),
    T('e-weight-decay-overflow', ['weight_decay=1e308'], 'TrainConfig.weight_decay=1e+308 is out of range [0, 500.0]; each step multiplies'),
    T('e-seed-negative', ['seed=-1'], 'TrainConfig.seed=-1 is out of range [0, 4294967295]'),
    T('e-seed-overflow', ['seed=99999999999999999999999'], 'TrainConfig.seed=99999999999999999999999 is out of range',
      exec='script'),
    T('e-epochs-overflow', ['epochs=1e308'], 'TrainConfig.epochs=1e+308 is out of range (0, 1000000.0]'),
    T('e-sample-steps-overflow', ['sample_steps=10000000000'], 'TrainConfig.sample_steps=10000000000 is out of range [1, 1000000]'),
    T('e-device-meta', ['device=meta'], "TrainConfig.device='meta': use 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    T('e-clip-not-numbers', ['method=block', 'clip=["a", "b"]'], "TrainConfig.clip=['a', 'b']: give [lo, hi] with 0 <= lo < hi <= 1"),
    T('e-out-dir-empty', ['out_dir='], "TrainConfig.out_dir='' is empty: give the run's folder"),
    T('e-memory-advice-names-the-model', ['n_embd=1000000', 'n_head=1'],       # ~200 TiB, nearly all parameters and their states
      'M parameters (weights, gradients, optimizer state, EMA) of n_layer=1, n_embd=1000000: make the model smaller'),
    T('e-memory-advice-names-cond-dim', ['method=sedd', 'cond_dim=100000000000'], 'M parameters (weights, gradients, optimizer '
      'state, EMA) of cond_dim=100000000000: make the model smaller'),
    T('e-samples-checked-before-training', ['n_samples=100000000000'], 'TrainConfig.n_samples=100000000000: 100000000000 '
      'samples of 32 tokens need about'),
    T('e-grad-accum-overflow', ['grad_accum=100000000000'], 'TrainConfig.grad_accum=100000000000 is out of range [1, 1048576]'),
    Case('e-config-file-list', 'train', lambda w: [*train_argv(w / 'run'), '--config', str(w / 'cfg.json')],
         'cfg.json holds a JSON list; give a JSON object of TrainConfig fields', setup=with_config('[{"lr": 0.001}]')),
    Case('e-config-file-number', 'train', lambda w: [*train_argv(w / 'run'), '--config', str(w / 'cfg.json')],
         'cfg.json holds a JSON number; give a JSON object', setup=with_config('3'), exec='module'),
    Case('e-config-file-unterminated', 'train', lambda w: [*train_argv(w / 'run'), '--config', str(w / 'cfg.json')],
         'cfg.json: Unterminated string starting at', setup=with_config('{"lr": "3e-4')),
    # ---- data: a damaged prepared folder named with a command that repairs it
    A('e-prepared-folder-metadata-garbage', lambda w: prepare_shakespeare(w / 'out'),
      'with the prepare_* function that made it (overwrite=True), or delete it (rm -r ', setup=lambda w, t: ((w / 'out').mkdir(), (w / 'out' / 'metadata.json').write_text('{"na'))),
    # ---- diffusion-lm-finetune: each file of a Hugging Face model folder damaged, named in one line (before any load)
    FM('e-hf-config-truncated', [], 'm/config.json is truncated or damaged (JSONDecodeError', lambda m: cut(m / 'config.json')),
    FM('e-hf-config-a-list', [], 'm/config.json is truncated or damaged (it holds a JSON list, not the model settings)',
       lambda m: (m / 'config.json').write_text('[1]'), exec='script'),
    FM('e-hf-weights-truncated', [], 'm/model.safetensors is truncated or damaged (', lambda m: cut(m / 'model.safetensors')),
    FM('e-hf-weights-garbage', [], 'm/model.safetensors is truncated or damaged (', lambda m: (m / 'model.safetensors').write_bytes(b'x' * 64)),
    FM('e-hf-index-garbage', [], 'm/model.safetensors.index.json is truncated or damaged (JSONDecodeError',
       lambda m: (as_shard(m), (m / 'model.safetensors.index.json').write_text('{"weight_'))),
    FM('e-hf-index-without-weight-map', [], 'model.safetensors.index.json is truncated or damaged (no "weight_map"',
       lambda m: (as_shard(m), (m / 'model.safetensors.index.json').write_text('{"metadata": {}}'))),
    FM('e-hf-shard-truncated', [], 'm/model-00001-of-00001.safetensors is truncated or damaged',
       lambda m: (as_shard(m), cut(m / 'model-00001-of-00001.safetensors'))),
    FM('e-hf-model-code-missing', [], 'has no modeling_tiny_llada.py, the model code config.json names (auto_map)',
       lambda m: (m / 'modeling_tiny_llada.py').unlink()),
    FM('e-hf-model-code-truncated', [], 'm/modeling_tiny_llada.py is truncated or damaged (not valid Python',
       lambda m: cut(m / 'modeling_tiny_llada.py')),
    FM('e-hf-tokenizer-truncated', [], 'm/tokenizer.json is truncated or damaged (JSONDecodeError', lambda m: cut(m / 'tokenizer.json')),
    FM('e-hf-tokenizer-json-missing', [], 'loading the tokenizer failed', lambda m: (m / 'tokenizer.json').unlink()),
    FM('e-hf-untrusted-code', ['trust_remote_code=False'], 'set trust_remote_code=True if you trust the folder'),
    # ---- diffusion-lm-finetune: values and options
    FM('e-ft-lora-rank-wider-than-layers', ['lora=True', 'lora_rank=64'],
       'LoRA rank 64 is larger than the narrowest adapted layer (32): use a rank <= 32'),
       # checked once the model is loaded, after the run folder was made: the folder made for it is removed again
    F('e-ft-examples-per-step-overflow', ['batch_size=100000000000'], 'TrainConfig.batch_size x grad_accum = 100000000000 x 1'),
    F('e-ft-lr-overflow', ['lr=1e308'], 'TrainConfig.lr=1e+308 is out of range (0, 1]'),
    F('e-ft-seed-negative', ['seed=-1'], 'TrainConfig.seed=-1 is out of range [0, 4294967295]'),
    F('e-ft-epochs-overflow', ['epochs=1e308'], 'TrainConfig.epochs=1e+308 is out of range'),
    F('e-ft-eval-draws-overflow', ['eval_draws=1000000000000'], 'TrainConfig.eval_draws=1000000000000 is out of range [0, 10000]'),
    F('e-ft-device-meta', ['device=meta'], "TrainConfig.device='meta': use 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    Case('e-ft-plan-devices-overflow', 'finetune', lambda w: ['--plan', '--devices', '1000000000000', '--device-memory', '80GB',
                                                            '--set', f'model={w}/nothing'], '--devices 1000000000000: give 1 .. 1048576'),
    Case('e-ft-plan-memory-overflow', 'finetune', lambda w: ['--plan', '--devices', '2', '--device-memory', '9' * 400 + 'TB',
                                                           '--set', f'model={w}/nothing'], 'give a size such as 80GB'),
    Case('e-ft-device-memory-without-plan', 'finetune', lambda w: ['--device-memory', '80GB', '--set', f'model={w}/nothing',
                                                                 f'data={w}/chat.jsonl', f'out_dir={w}/ft'],
         '--devices and --device-memory describe the devices of a --plan', after=no_run_folder),
    Case('e-ft-plan-config-truncated', 'finetune', lambda w: ['--plan', '--set', f'model={w}/m'],
         'm/config.json is not a JSON object of model settings (JSONDecodeError', setup=with_llada(lambda m: cut(m / 'config.json'))),
    Case('e-ft-config-file-list', 'finetune', lambda w: ['--config', str(w / 'cfg.json')],
         'a JSON object of TrainConfig fields is expected', setup=with_config('[1]')),
    # ---- diffusion-lm-finetune: the files of its own run folder, damaged
    FR('e-ft-run-config-garbage', lambda r: (r / 'finetune_config.json').write_text('{"mod'),
       'ft/finetune_config.json is not a readable fine-tuning config (JSONDecodeError'),
    FR('e-ft-run-config-a-list', lambda r: (r / 'finetune_config.json').write_text('[]'),
       'ft/finetune_config.json is not a readable fine-tuning config (not a JSON object with model and data)'),
    FR('e-ft-run-no-complete-checkpoint', lambda r: None, 'ft holds checkpoints step_000002 but none is complete', exec='script'),
    FR('e-ft-run-metrics-garbage', lambda r: (shutil.rmtree(r / 'checkpoints'), (r / 'metrics.jsonl').write_text('garbage\n{"step": 1}\n')),
       'ft/metrics.jsonl has unreadable lines [1]'),
    # ---- diffusion-lm-palindromes (and python -m diffusion_lm.palindromes)
    P('e-pal-temperature-nan', ['--model', '{w}/run', '--temperature', 'nan'], '--temperature nan: give a number >= 0'),
    P('e-pal-temperature-inf', ['--model', '{w}/run', '--temperature', 'inf'], '--temperature inf: give a number >= 0'),
    P('e-pal-min-zipf-nan', ['--model', '{w}/run', '--min-zipf', 'nan'], '--min-zipf nan: give a Zipf frequency in 0..8'),
    P('e-pal-steps-overflow', ['--model', '{w}/run', '--steps', '100000000000'], 'at most 1000000 network calls per sample'),
    P('e-pal-seed-negative', ['--model', '{w}/run', '--seed', '-1'], '--seed -1: give 0 .. 4294967295', exec='module'),
    P('e-pal-n-samples-overflow', ['--model', '{w}/run', '--n-samples', '100000000000'], '--n-samples 100000000000: at most 100000'),
    P('e-pal-device-meta', ['--model', '{w}/run', '--device', 'meta'], "device='meta': use 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    P('e-pal-fine-tuning-run', ['--model', '{w}/ft'], 'ft is a fine-tuning run (diffusion-lm-finetune), not a run of train(): '
      'its model is the Hugging Face folder', setup=with_finetune_marker),
    P('e-pal-hugging-face-folder', ['--model', '{w}/m'], 'm is a Hugging Face model folder, not a run of train(): load it with',
      setup=with_run_and_llada),
    # ---- diffusion-lm-slurm: its numeric options, and config values checked at submission
    S('e-slurm-nodes-overflow', ['submit', '{nb}', '--dry-run', '--nodes', '100000000000000'],
      'nodes=100000000000000: use an int in 1..2147483647'),
    S('e-slurm-cpus-overflow', ['submit', '{nb}', '--dry-run', '--cpus-per-task', '100000000000000'],
      'cpus_per_task=100000000000000: use an int in 1..2147483647'),
    S('e-slurm-time-overflow', ['submit', '{nb}', '--dry-run', '--time', '99999999999999'], 'is beyond what SLURM can hold'),
    S('e-slurm-device-meta', ['submit', '{nb}', '--dry-run', '--set', 'device=meta'], "TrainConfig.device='meta'"),
    S('e-slurm-finetune-lr-overflow', ['finetune', '--dry-run', '--set', 'model=x', 'lr=1e308'],
      'TrainConfig.lr=1e+308 is out of range (0, 1]'),
    # ---- the notebooks
    Case('e-nb-sample-prompt-longer-than-context', 'nb-sample', lambda w: {'prompt': 'x' * 40},
         'the prompt is 40 tokens but the model holds 32 positions: shorten the prompt to at most 31 tokens', setup=with_run),
    Case('e-nb-sample-fine-tuning-run', 'nb-sample', lambda w: {'checkpoint': str(w / 'ft')},
         'is a fine-tuning run (diffusion-lm-finetune), not a run of train()', setup=with_finetune_marker),
    Case('e-nb-sample-device-meta', 'nb-sample', lambda w: {'device': 'meta'}, "SampleConfig.device='meta'", setup=with_run),
    Case('e-nb-train-lr-overflow', 'nb-train', lambda w: {'lr': '1e308'}, 'TrainConfig.lr=1e+308 is out of range (0, 1]'),
    # ======== end of helper E's rows
]


# ================================================================ issue 24, items 1-3 (ownership of folders and files,
# records before side effects, readers of live runs): their own block, appended to the table
def with_foreign_folder(name):
    "A folder diffusion_lm did not write (a Hugging Face model folder's files) at w/<name>."
    def setup(w, t):
        (w / name).mkdir(parents=True)
        (w / name / 'config.json').write_text('{"model_type": "llada", "architectures": ["LLaDAModelLM"]}')
        (w / name / 'model.safetensors').write_bytes(b'\0' * 64)
    return setup

def with_tiny_llada(w, t):
    "A tiny LLaDA-format model (w/model, a Hugging Face folder) and a chat data file (w/chat.jsonl)."
    from diffusion_lm.testing import make_tiny_llada
    from diffusion_lm.sft_data import write_jsonl
    make_tiny_llada(w / 'model')
    write_jsonl(w / 'chat.jsonl', [{'messages': [{'role': 'user', 'content': 'repeat: cat'},
                                                  {'role': 'assistant', 'content': 'cat cat'}]}] * 4)

def with_sbatch_spy(w, t):
    "An sbatch that records that it was called (w/sbatch-called) and answers a job id."
    (w / 'bin').mkdir(exist_ok=True)
    (w / 'bin' / 'sbatch').write_text(f'#!/bin/sh\ntouch {w}/sbatch-called\necho 4242\n'); (w / 'bin' / 'sbatch').chmod(0o755)

def with_slurm_record(text):
    "A submitted run's directory (runs/taken) whose job.json holds `text`, and the sbatch spy."
    def setup(w, t):
        (w / 'runs' / 'taken').mkdir(parents=True); (w / 'runs' / 'taken' / 'job.json').write_text(text)
        with_sbatch_spy(w, t)
    return setup

def sbatch_not_called(w, before, p):
    assert not (w / 'sbatch-called').exists(), 'sbatch was called although the record was refused'
    assert_kept(before, snapshot(w))

def spy_path(w): return {'PATH': f'{w / "bin"}:{os.environ["PATH"]}'}

def lists_damaged(w, before, p):
    "The damaged record is listed as such, with a warning naming the file and the repair; nothing changed."
    assert 'DAMAGED job.json' in p.stdout and 'taken' in p.stdout, p.stdout
    assert "job.json is damaged (a JSON list, not an object)" in p.stderr and 'mv ' in p.stderr, p.stderr
    assert_kept(before, snapshot(w))

def markers_literal(w, before, p):
    "A --set value holding the job-script filler's markers reaches the script as typed."
    assert 'x@MODE@y' in p.stdout and "'@RUN_DIR@'" not in p.stdout.split('_run_dir=')[0], p.stdout[-2000:]
    assert not (w / 'runs').exists()

def without_optimizer_state(run: Path):
    "state.pt of the newest checkpoint re-saved without optimizer state (a weights-only save), meta.json agreeing."
    st = torch.load(ckpt(run, 4) / 'state.pt', weights_only=True); st['optimizer'] = None
    torch.save(st, ckpt(run, 4) / 'state.pt'); rehash(ckpt(run, 4))

def nan_weights(run: Path):
    "The newest checkpoint's weights hold a NaN (saved by an older version, or copied in), meta.json agreeing."
    from safetensors.torch import load_file, save_file
    sd = load_file(ckpt(run, 4) / 'model.safetensors'); k = next(iter(sd)); sd[k].view(-1)[0] = float('nan')
    save_file(sd, ckpt(run, 4) / 'model.safetensors', metadata={'format': 'pt'}); rehash(ckpt(run, 4))

def names_finite(w, before, p):
    "The advice names the checkpoint before the NaN one, and how to resume from it; nothing changed."
    assert f"the newest finite checkpoint is {ckpt(w / 'run', 2)}" in p.stderr.strip().splitlines()[-1], p.stderr[-2000:]
    assert_kept(before, snapshot(w))

def with_marker(text):
    def setup(w, t): with_run(w, t); (w / 'run' / '.diffusion_lm.json').write_text(text)
    return setup

def with_finetune_folder(w, t):
    (w / 'ft').mkdir(); (w / 'ft' / '.diffusion_lm.json').write_text('{"kind": "finetune"}')

CASES += [
    # ---- 1. a command writes only into a folder it made or that carries its marker
    Case('own-out-dir-hugging-face-folder', 'train', lambda w: train_argv(w / 'hf'),
         'holds files that diffusion_lm did not write (config.json, model.safetensors)', setup=with_foreign_folder('hf')),
    T('own-out-dir-empty', ['out_dir='], "TrainConfig.out_dir='' is empty: give the run's folder"),
    Case('own-out-dir-a-file', 'train', lambda w: train_argv(w / 'cfg.json'), 'is a file, not a folder',
         setup=with_config('{}')),
    Case('own-out-dir-slurm-run-directory', 'train', lambda w: train_argv(w / 'runs' / 'taken'),
         'is a SLURM run directory, not a training run', setup=with_slurm_run),
    Case('own-out-dir-finetune-folder', 'train', lambda w: train_argv(w / 'ft'), 'is a fine-tuning run, not a training run',
         setup=with_finetune_folder, exec='module'),
    T('own-marker-damaged', LONG, '.diffusion_lm.json is not a readable folder marker', setup=with_marker('{"kind": ')),
    T('own-marker-unknown-kind', LONG, 'is not a readable folder marker', setup=with_marker('{"kind": "photos"}')),
    Case('own-finetune-into-its-model-folder', 'finetune',
         lambda w: ['--set', f'model={w}/model', f'data={w}/chat.jsonl', f'out_dir={w}/model', 'device=cpu'],
         'holds files that diffusion_lm did not write', setup=with_tiny_llada),
    Case('own-finetune-into-a-training-run', 'finetune',
         lambda w: ['--set', f'model={w}/model', f'data={w}/chat.jsonl', f'out_dir={w}/run', 'device=cpu'],
         'is a training run, not a fine-tuning run', setup=lambda w, t: (with_tiny_llada(w, t), with_run(w, t))),
    P('own-palindromes-json-over-metrics', ['--model', '{w}/run', '--json', '{w}/run/metrics.jsonl'],
      'metrics.jsonl exists and is not replaced'),
    P('own-palindromes-json-in-checkpoints', ['--model', '{w}/run', '--json', '{w}/run/checkpoints/out.json'],
      'is inside a checkpoints folder'),
    P('own-palindromes-json-folder-missing', ['--model', '{w}/run', '--json', '{w}/no/such/out.json'], 'does not exist'),
    S('own-slurm-run-directory-foreign', ['submit', '{nb}', '--runs-root', '{w}', '--name', 'hf', '--set', 'max_steps=5'],
      'holds files that diffusion_lm did not write', setup=lambda w, t: (with_foreign_folder('hf')(w, t), with_sbatch_spy(w, t)),
      env=spy_path, after=sbatch_not_called),
    Case('own-nb-sample-out-file-over-metrics', 'nb-sample', lambda w: {'out_file': str(w / 'run' / 'metrics.jsonl')},
         'metrics.jsonl exists and is not replaced', setup=with_run),
    Case('own-nb-sample-out-file-gif-exists', 'nb-sample', lambda w: {'out_file': str(w / 's.json')},
         's.gif exists and is not replaced', setup=lambda w, t: (with_run(w, t), (w / 's.gif').write_bytes(b'GIF89a'))),
    # ---- 2. records before side effects: job.json checked and written before sbatch
    S('slurm-continue-damaged-record', ['submit', '{nb}', '--runs-root', '{w}/runs', '--name', 'taken', '--continue',
                                        '--set', 'max_steps=5'], 'job.json is damaged (JSONDecodeError',
      setup=with_slurm_record('{"job_id": "7"'), env=spy_path, after=sbatch_not_called),
    S('slurm-continue-record-a-list', ['submit', '{nb}', '--runs-root', '{w}/runs', '--name', 'taken', '--continue',
                                       '--set', 'max_steps=5'], 'job.json is damaged (a JSON list, not an object)',
      setup=with_slurm_record('[{"job_id": "7"}]'), env=spy_path, after=sbatch_not_called),
    S('slurm-continue-interrupted-submission', ['submit', '{nb}', '--runs-root', '{w}/runs', '--name', 'taken', '--continue',
                                                '--set', 'max_steps=5'], 'whose job id was never written',
      setup=with_slurm_record('{"name": "taken", "job_id": null, "submitting": true}'), env=spy_path, after=sbatch_not_called),
    S('slurm-pipeline-damaged-finetune-record', ['pipeline', '--notebook', '{nb}', '--runs-root', '{w}/runs', '--name', 'p', '--continue',
                                                 '--pretrain', '--set', 'max_steps=5', '--finetune', '--set', 'max_steps=5'],
      'p-finetune/job.json is damaged', env=spy_path, after=sbatch_not_called,
      setup=lambda w, t: ((w / 'runs' / 'p-finetune').mkdir(parents=True), (w / 'runs' / 'p-finetune' / 'job.json').write_text('nul'),
                          with_sbatch_spy(w, t))),
    S('slurm-list-record-a-list', ['list', '--runs-root', '{w}/runs'], None, code=0, after=lists_damaged,
      setup=with_slurm_record('[]')),
    S('slurm-wait-timeout-nan', ['wait', '4242', '--timeout', 'nan'], 'timeout=nan is not a number of seconds'),
    S('slurm-wait-timeout-negative', ['wait', '4242', '--timeout', '-5'], 'timeout=-5.0 is not a number of seconds'),
    S('slurm-wait-timeout-infinite', ['wait', '4242', '--timeout', 'inf'], 'timeout=inf is not a number of seconds'),
    S('slurm-after-not-a-job-id-dry-run', ['submit', '{nb}', '--dry-run', '--after', 'abc'], "--after 'abc' is not a job id"),
    S('slurm-set-value-with-template-markers', ['submit', '{nb}', '--dry-run', '--runs-root', '{w}/runs', '--name', 'ok',
                                                '--set', 'dataset=x@MODE@y'], None, code=0, after=markers_literal),
    # ---- 3. readers of runs: what a resume finds in the newest checkpoint
    T('resume-state-without-optimizer', LONG, "state.pt holds no optimizer state (the checkpoint was saved without one)",
      setup=with_damaged_run(without_optimizer_state)),
    T('resume-newest-checkpoint-nan', LONG, 'holds NaN or inf values', setup=with_damaged_run(nan_weights), after=names_finite),
    T('resume-max-steps-below-reached', ['max_steps=2'], 'reached step 4, past max_steps=2', setup=with_run),
]


# ================================================================ issue 24, second probe (helper B): bounds on step counts and
# LoRA ranks, and what a fresh hostile probe found (bench/results/probe_issue24_second.md)
def checkpoints_a_file(run: Path):
    "The run's checkpoints/ folder replaced by a file of that name."
    shutil.rmtree(run / 'checkpoints'); (run / 'checkpoints').write_text('x')

def plan(*sets):
    "diffusion-lm-finetune --plan on two named 80 GB devices for the tiny model in w/m, with `sets`."
    return lambda w: ['--plan', '--devices', '2', '--device-memory', '80GB', '--set', f'model={w}/m', *sets]

def nb_sample(id, params, message, **kw) -> Case:
    "A sample.ipynb row on the trained run."
    return Case(id, 'nb-sample', lambda w, p=params: dict(p), message, setup=with_run, **kw)

CASES += [
    # ---- step counts and LoRA ranks bounded (the known gaps of issue 24)
    T('b-max-steps-overflow', ['max_steps=100000000000000000000'],
      'TrainConfig.max_steps=100000000000000000000 is out of range [1, 1000000000]; optimizer steps of the run', exec='script'),
    T('b-warmup-overflow', ['warmup_steps=100000000000000000000'],
      'TrainConfig.warmup_steps=100000000000000000000 is out of range [0, 1000000000]'),
    T('b-epochs-overflow-in-steps', ['epochs=1000000'], 'steps, more than 1000000000: lower epochs, or give max_steps instead'),
    F('b-ft-max-steps-overflow', ['max_steps=100000000000000000000'],
      'TrainConfig.max_steps=100000000000000000000 is out of range [1, 1000000000]'),
    Case('b-ft-plan-lora-rank-overflow', 'finetune', plan('lora=True', 'lora_rank=1000000000000'),
         'TrainConfig.lora_rank=1000000000000 is out of range [1, 65536]; a LoRA rank is small', setup=with_llada()),
    Case('b-ft-plan-batch-size-overflow', 'finetune', plan('batch_size=1000000000000'),
         'TrainConfig.batch_size x grad_accum = 1000000000000 x 1 examples per step', setup=with_llada(), exec='module'),
    Case('b-ft-data-a-folder', 'finetune', lambda w: ['--no-progress', '--set', f'model={w}/m', f'data={w}/m', f'out_dir={w}/ft',
                                                    'device=cpu'], 'm: a folder, not a data file; give a JSONL file',
         setup=with_llada(), after=no_run_folder),
    S('b-slurm-finetune-lora-rank-overflow', ['finetune', '--dry-run', '--set', 'model=x', 'lora_rank=1000000000000'],
      'TrainConfig.lora_rank=1000000000000 is out of range [1, 65536]'),
    # ---- run folders: a path under a file, a checkpoints/ that is a file (it used to rewrite metrics.jsonl first)
    Case('b-out-dir-under-a-file', 'train', lambda w: train_argv(w / 'cfg.json' / 'run'),
         'cfg.json, which is a file, not a folder; nothing was changed', setup=with_config('{}')),
    T('b-checkpoints-a-file', LONG, "checkpoints is a file, not the folder of the run's checkpoints; nothing was changed",
      setup=with_damaged_run(checkpoints_a_file)),
    T('b-memory-advice-layers', ['n_layer=100000000000000000000'],
      'layers of n_embd=32, too much even at batch_size=1: make the model smaller or lower context_length'),
    # ---- diffusion-lm-slurm
    S('b-slurm-time-zero', ['submit', '{nb}', '--dry-run', '--time', '0'], "time='0' asks SLURM for no time limit"),
    S('b-slurm-notebook-not-a-notebook', ['submit', '{w}/cfg.json', '--dry-run'], 'cfg.json is not a readable Jupyter notebook (',
      setup=with_config('{}')),
    S('b-slurm-list-runs-root-a-file', ['list', '--runs-root', '{w}/cfg.json'], 'cfg.json is a file, not a folder of runs',
      setup=with_config('{}')),
    # ---- sample.ipynb: regular expressions and prompts, refused before the model runs
    nb_sample('b-nb-sample-regex-invalid', {'regex': '(ab'},
              "'(ab' cannot be compiled (missing ), unterminated subpattern at position 0): fix the pattern"),
    nb_sample('b-nb-sample-regex-empty-language', {'regex': 'é+'}, "'é+' matches no string of the model's characters"),
    nb_sample('b-nb-sample-regex-cannot-fit-length', {'regex': 'abc', 'length': 10},
              "'abc' has no string of exactly 10 tokens (its strings have 3 tokens)"),
    nb_sample('b-nb-sample-regex-empty', {'regex': ''}, "SampleConfig.regex='' matches only the empty string"),
    nb_sample('b-nb-sample-prompt-out-of-vocabulary', {'prompt': 'é'},
              "prompt='é': character 'é' (position 0) is not in the vocabulary of 65 characters: write the prompt"),
    nb_sample('b-nb-sample-checkpoint-empty', {'checkpoint': ''}, "SampleConfig.checkpoint='' is empty"),
    Case('b-nb-train-max-steps-overflow', 'nb-train', lambda w: {'max_steps': '100000000000000000000'},
         'TrainConfig.max_steps=100000000000000000000 is out of range [1, 1000000000]'),
]

# ================================================================ issue 24, third probe (helper H): bench/results/probe_issue24_third.md
def checkpoints_deleted(run: Path):
    "The run's checkpoints/ deleted by hand; its metrics, samples, result and marker (which records step 4) kept."
    shutil.rmtree(run / 'checkpoints')

def checkpoints_deleted_before_the_marker_field(run: Path):
    "As `checkpoints_deleted`, in a folder from before the marker noted checkpoints: only its log shows them."
    shutil.rmtree(run / 'checkpoints'); (run / 'result.json').unlink()
    m = json.loads((run / '.diffusion_lm.json').read_text()); m.pop('checkpoint_step'); (run / '.diffusion_lm.json').write_text(json.dumps(m))

def killed_before_first_checkpoint(run: Path):
    "What a run killed after its first logged step and before its first checkpoint leaves: config, marker, one log line."
    shutil.rmtree(run / 'checkpoints'); (run / 'result.json').unlink(); (run / 'samples.jsonl').unlink()
    (run / 'metrics.jsonl').write_text((run / 'metrics.jsonl').read_text().splitlines()[0] + '\n')
    m = json.loads((run / '.diffusion_lm.json').read_text()); m['checkpoint_step'] = None
    (run / '.diffusion_lm.json').write_text(json.dumps(m))

def started_over(w, before, p):
    "The run started again from step 0 and finished: every step logged once, from the new run."
    assert [m['step'] for m in metrics(w / 'run')] == list(range(1, 7)), p.stderr[-2000:]
    assert json.loads((w / 'run' / 'result.json').read_text())['finished']
    assert json.loads((w / 'run' / '.diffusion_lm.json').read_text())['checkpoint_step'] == 6

CASES += [
    # ---- item 3: a run folder whose checkpoints/ was deleted is refused; one killed before its first checkpoint restarts
    T('h-checkpoints-deleted', LONG, "has no checkpoint left, but", setup=with_damaged_run(checkpoints_deleted)),
    T('h-checkpoints-deleted-names-the-record', LONG, '.diffusion_lm.json records checkpoint step 4: its checkpoints were '
      'deleted or moved', setup=with_damaged_run(checkpoints_deleted), exec='script'),
    T('h-checkpoints-deleted-old-folder', LONG, 'metrics.jsonl logs step 4, past its first checkpoint (checkpoint_interval=2)',
      setup=with_damaged_run(checkpoints_deleted_before_the_marker_field)),
    T('h-killed-before-first-checkpoint', LONG, None, code=0, after=started_over,
      setup=with_damaged_run(killed_before_first_checkpoint)),
    # ---- run folders: links that lead nowhere, folders that cannot be made, a folder where a run's file belongs
    T('h-newest-step-a-link-to-an-older-one', LONG, None, code=0, after=resumed_to(6, keep_steps=(2,)),
      setup=with_damaged_run(lambda r: (shutil.rmtree(ckpt(r, 4)), ckpt(r, 4).symlink_to(ckpt(r, 2))))),
    Case('h-out-dir-dangling-symlink', 'train', lambda w: train_argv(w / 'link'), 'is a symbolic link to',
         setup=lambda w, t: (w / 'link').symlink_to(w / 'nowhere')),
    Case('h-out-dir-cannot-be-created', 'train', lambda w: train_argv(Path('/proc/diffusion_lm_run')), 'cannot be created'),
    T('h-run-metrics-a-folder', LONG, "metrics.jsonl is a folder, not the file of that name a run keeps; nothing was changed",
      setup=with_damaged_run(lambda r: ((r / 'metrics.jsonl').unlink(), (r / 'metrics.jsonl').mkdir()))),
    T('h-run-marker-a-folder', LONG, '.diffusion_lm.json is a folder, not the file of that name a run keeps',
      setup=with_damaged_run(lambda r: ((r / '.diffusion_lm.json').unlink(), (r / '.diffusion_lm.json').mkdir()))),
    T('h-sample-threshold-above-one', ['sampler=confidence', 'sample_options={"threshold": 2}'], 'give 0 < threshold <= 1'),
    A('h-api-train-a-preset-name', lambda w: trainer.train('shakespeare-llada'),
      "train() takes a TrainConfig, a dict of its fields or a Run, not str 'shakespeare-llada'"),
    # ---- diffusion-lm-palindromes
    P('h-pal-json-dangling-symlink', ['--model', '{w}/run', '--json', '{w}/link.json'], 'exists and is not replaced',
      setup=lambda w, t: (with_run(w, t), (w / 'link.json').symlink_to(w / 'no' / 'where'))),
    P('h-pal-repair-rounds-overflow', ['--model', '{w}/run', '--repair-rounds', '1000000000'], 'at most 1000'),
    # ---- diffusion-lm-slurm
    S('h-slurm-list-job-id-not-an-id', ['list', '--runs-root', '{w}/runs'], None, code=0, after=lambda w, b, p: (
        'DAMAGED job.json' in p.stdout and 'its job_id inf is not a job id' in p.stderr) or pytest.fail(p.stdout + p.stderr),
      setup=lambda w, t: ((w / 'runs' / 'r').mkdir(parents=True), (w / 'runs' / 'r' / 'job.json').write_text('{"job_id": 1e999}'))),
    S('h-slurm-list-runs-root-missing', ['list', '--runs-root', '{w}/nope'], 'nope does not exist'),
    S('h-slurm-kernel-unknown', ['submit', '{nb}', '--dry-run', '--kernel', 'no-such-kernel'],
      "kernel='no-such-kernel' is not a Jupyter kernel registered here"),
    S('h-slurm-after-job-zero', ['submit', '{nb}', '--dry-run', '--after', '0'], "--after '0' is not a job id"),
    S('h-slurm-sample-parameters-typed', ['submit', str(NB_DIR / 'sample.ipynb'), '--dry-run', '--set', 'n_samples=abc'],
      "SampleConfig.n_samples='abc' is not an integer"),
    S('h-slurm-time-minutes-past-59', ['submit', '{nb}', '--dry-run', '--time', '1:99:00'], 'minutes and seconds after the first field run 0..59'),
    S('h-slurm-gpu-type-without-gpus', ['submit', '{nb}', '--dry-run', '--gpu-type', 'a100'], "gpu_type='a100' names the GPUs of --gpus-per-node, which is 0"),
    P('h-pal-words-with-alphabet', ['--model', '{w}/run', '--words', '--alphabet', 'xyz'], '--alphabet does not apply with --words'),
    FM('h-hf-config-vocab-size-negative', [], 'config.json says vocab_size=-1, which is not a number of tokens',
       lambda m: (m / 'config.json').write_text(json.dumps({**json.loads((m / 'config.json').read_text()), 'vocab_size': -1}))),
    A('h-prepare-into-a-file', lambda w: prepare_shakespeare(w / 'cfg.json'), 'cfg.json is a file, not a folder of prepared data',
      setup=with_config('{}')),
    S('h-slurm-pipeline-notebook-missing', ['pipeline', '--dry-run', '--notebook', '{w}/missing.ipynb', '--pretrain', '--finetune'],
      'missing.ipynb not found'),
]


# ---------------------------------------------------------------- the fourth probe's finds (bench/probe_issue24_fourth.py)
def every_step_weights(f):
    "Rewrite the safetensors files of every checkpoint with `f(tensors) -> tensors`, meta.json made to agree."
    def damage(run: Path):
        for s in (2, 4):
            for q in ckpt(run, s).glob('*.safetensors'): save_file(f(load_file(q)), q)
            rehash(ckpt(run, s))
    return damage

def narrower(sd):
    k = next(k for k in sorted(sd) if sd[k].ndim == 2); sd[k] = sd[k][:, :-1].contiguous(); return sd

def sample_of_run(**kw):
    "method.sample on the trained run's model: n=1, length=8, steps=2, then `kw`."
    def call(w):
        _, (model, method, tok, cfg) = trainer.load_newest(w / 'run')
        return method.sample(model, **{**dict(n=1, length=8, steps=2), **kw})
    return call

def with_prepared(damage): return with_data('shakespeare', damage)

def TD(id, damage, message) -> Case:
    "A trainer row on a damaged copy of the prepared Shakespeare folder."
    return Case(id, 'train', lambda w: train_argv(w / 'run', f'dataset={w}/data'), message, setup=with_prepared(damage))

CASES += [
    T('k-out-dir-unknown-home', ['out_dir=~nosuchuser/run'], 'a leading ~ names a home folder'),
    Case('k-out-dir-inside-a-checkpoint', 'train', lambda w: train_argv(w / 'run' / 'checkpoints' / 'step_000004' / 'x'),
         'lies inside the training run', setup=with_run),
    Case('k-config-file-sets-preset', 'train', lambda w: ['--preset', 'shakespeare-llada', '--config', str(w / 'cfg.json'),
                                                          '--set', f'out_dir={w}/run'],
         'sets "preset", which is not a TrainConfig field: give it as --preset shakespeare-ar', setup=with_config('{"preset": "shakespeare-ar"}')),
    T('k-graph-on-masked', ['graph=uniform'], "TrainConfig.graph='uniform' applies to method='sedd' only"),
    T('k-clip-on-masked', ['clip=[0.2, 0.8]'], "TrainConfig.clip=[0.2, 0.8] applies to method='block' only"),
    T('k-latest-names-an-older-checkpoint', LONG, 'names step_000002, but step_000004 is newer and complete',
      setup=with_damaged_run(lambda r: (r / 'checkpoints' / 'latest').write_text('step_000002'))),
    T('k-step-name-a-file', LONG, 'is a file, not a checkpoint folder',
      setup=with_damaged_run(lambda r: (shutil.rmtree(ckpt(r, 4)), ckpt(r, 4).write_text('x')))),
    T('k-lock-a-folder', LONG, 'is a folder, not the lock file of that name a run keeps',
      setup=with_damaged_run(lambda r: (r / '.lock').mkdir())),
    T('k-run-config-edited-by-hand', LONG, 'config.json says n_layer=3 (the checkpoints: 1): it was edited by hand',
      setup=with_damaged_run(lambda r: (r / 'config.json').write_text(json.dumps({**json.loads((r / 'config.json').read_text()),
                                                                                  'n_layer': 3})))),
    T('k-checkpoint-weights-int32', LONG, 'weights are floating point',
      setup=with_damaged_run(every_step_weights(lambda sd: {k: v.to(torch.int32) for k, v in sd.items()}))),
    TD('k-data-split-float', lambda d: np.save(d / 'train.npy', np.load(d / 'train.npy').astype(np.float32)),
       'not the 1-D array of token ids'),
    TD('k-data-split-empty-file', lambda d: (d / 'train.npy').write_bytes(b''), 'train.npy is unreadable'),
    TD('k-data-metadata-layout-unknown', lambda d: (d / 'metadata.json').write_text(json.dumps(
        {**json.loads((d / 'metadata.json').read_text()), 'layout': 'zigzag'})), "layout='zigzag' is not one this library reads"),
    TD('k-data-metadata-no-tokenizer', lambda d: (d / 'metadata.json').write_text(json.dumps(
        {k: v for k, v in json.loads((d / 'metadata.json').read_text()).items() if k != 'tokenizer'})), 'has no tokenizer'),
    A('k-prepare-too-many-characters', lambda w: prepare_shakespeare(w / 'o', source=w / 't.txt'), 'distinct characters',
      setup=lambda w, t: (w / 't.txt').write_text(''.join(chr(i) for i in range(0x10000, 0x10000 + 70000)))),
    A('k-load-newest-none', lambda w: trainer.load_newest(None), 'a path is needed here, not NoneType'),
    A('k-sample-n-not-an-integer', sample_of_run(n=1.5), 'n=1.5 is not an integer', setup=with_run),
    A('k-sample-steps-zero', sample_of_run(steps=0), 'steps=0: give the number of network calls', setup=with_run),
    A('k-sample-prompt-text', sample_of_run(prompt='hello'), "prompt='hello' is text: give token ids", setup=with_run),
    A('k-sample-prompt-floats', sample_of_run(prompt=torch.tensor([[1.5]])), 'tensor of torch.float32: give token ids', setup=with_run),
    A('k-sample-generator-not-one', sample_of_run(generator=5), 'generator=5: give a torch.Generator', setup=with_run),
    P('k-pal-json-empty', ['--model', '{w}/run', '--json', ''], '--json is empty'),
    P('k-pal-judge-empty', ['--model', '{w}/run', '--judge', ''], '--judge is empty'),
    P('k-pal-weights-other-shape', ['--model', '{w}/run'], 'do not fit the model its config.json describes',
      setup=with_damaged_run(every_step_weights(narrower))),
    S('k-slurm-runs-root-empty', ['submit', '{nb}', '--dry-run', '--runs-root', ''], '--runs-root is empty'),
    FM('k-hf-weights-other-shape', [], 'the weights do not fit its config.json',
       lambda m: save_file(narrower(load_file(m / 'model.safetensors')), m / 'model.safetensors')),
    Case('k-nb-sample-checkpoint-a-file', 'nb-sample', lambda w: {'checkpoint': str(w / 'run' / 'config.json')},
         'is a file, not a checkpoint', setup=with_run),
    nb_sample('k-nb-sample-out-file-empty', {'out_file': ''}, "out_file='' is empty"),
]


def papermill(nb: str, w: Path, logs: Path, params: dict) -> Proc:
    "papermill `nbs/<nb>` with -p values (tiny settings first for train.ipynb), into logs/<n>.ipynb."
    base = {**TINY, 'out_dir': str(w / 'run')} if nb == 'train.ipynb' else \
           {'checkpoint': str(w / 'run'), 'n_samples': 1, 'steps': 2, 'eval_batches': 1, 'gif': False}
    args = [a for k, v in {**base, **params}.items() for a in ('-p', k, str(v))]
    logs.mkdir(parents=True, exist_ok=True)
    out = logs / f'{nb}'
    cmd = [sys.executable, '-m', 'papermill', '-k', kernel_name(), '--cwd', str(NB_DIR), str(NB_DIR / nb), str(out), *args]
    p = Proc(logs, w, cmd=cmd)
    p.notebook = out
    p.wait(600)
    return p


def notebook_errors(path: Path) -> list[tuple[str, str]]:
    nb = json.loads(path.read_text())
    return [(o['ename'], o['evalue']) for c in nb['cells'] for o in c.get('outputs', []) if o.get('output_type') == 'error']


@pytest.mark.parametrize('case', [pytest.param(c, id=c.id) for c in CASES])
def test_bad_input(case: Case, trained, tmp_path):
    w, logs = tmp_path / 'w', tmp_path / 'logs'
    w.mkdir()
    if case.setup: case.setup(w, trained)
    before = snapshot(w)
    if case.prog.startswith('nb-'):
        p = papermill(case.prog[3:] + '.ipynb', w, logs, case.args(w))
        assert p.code == 1, p.stderr[-3000:]
        errs = notebook_errors(p.notebook)
        assert len(errs) == 1 and errs[0][0] == case.error and case.message in errs[0][1] and '\n' not in errs[0][1], errs
    else:
        p = run(case.prog, case.args(w), w, logs, env=case.env(w) if case.env else None, exec_=case.exec, timeout=case.timeout)
        assert p.code == case.code, f'exit {p.code}:\n{p.stderr[-4000:]}'
        assert_one_line(case.prog, p.stderr, case.message)
    after = snapshot(w)
    if case.after: case.after(w, before, p)
    else:
        assert_kept(before, after)
        assert [f for f in set(after) - set(before) if '/checkpoints/' in f] == [], 'a refused command wrote a checkpoint'


def test_catalogue_size():
    "At least 40 rows, over every entry point."
    assert len(CASES) >= 40
    assert {c.prog for c in CASES} == {'train', 'slurm', 'palindromes', 'finetune', 'api', 'nb-train', 'nb-sample'}
    assert {c.exec for c in CASES} == {None, 'module', 'script'}


# ---------------------------------------------------------------- the one-line rule at every entry point (issue 24)
ONE_BAD_INPUT = {            # every console script of settings.ini, and every `python -m` module: a bad input it must refuse
    'diffusion-lm-train': ['--preset', 'shakespeare-llada', '--set', 'lr=nan'],
    'diffusion-lm-slurm': ['submit', str(NB_DIR / 'train.ipynb'), '--dry-run', '--nodes', '0'],
    'diffusion-lm-finetune': ['--set', 'model=nothing', 'seed=-1'],
    'diffusion-lm-palindromes': ['--model', 'nothing', '--temperature', 'nan'],
    'diffusion_lm.trainer': ['--set', 'temperature=inf'],
    'diffusion_lm.finetune': ['--plan', '--devices', '0', '--device-memory', '80GB', '--set', 'model=nothing'],
    'diffusion_lm.palindromes': ['--model', 'nothing'],
    'diffusion_lm.palindromes.eval': ['--model', 'nothing', '--steps', '0'],
    'diffusion_lm.palindromes.corpus': ['--n', '-5', '--out', 'c.json'],
}

def console_scripts() -> dict:
    "Name -> 'module:function' of the console scripts settings.ini declares (what setup.py installs)."
    import configparser
    ini = configparser.ConfigParser(); ini.read(ROOT / 'settings.ini')
    return dict(s.split('=', 1) for s in ini['DEFAULT']['console_scripts'].split())

def main_modules() -> set:
    "The package's modules that run as `python -m` (an `if __name__ == '__main__'` line)."
    pkg = ROOT / 'diffusion_lm'
    return {'.'.join(p.relative_to(ROOT).with_suffix('').parts).removesuffix('.__main__')
            for p in pkg.rglob('*.py') if re.search(r"^if __name__ == .__main__.", p.read_text(), re.M)}


def test_every_entry_point_has_a_bad_input():
    "Every console script and `python -m` module is in ONE_BAD_INPUT, and both notebooks have rows in CASES."
    assert set(ONE_BAD_INPUT) == set(console_scripts()) | main_modules()
    assert {c.prog for c in CASES} >= {'nb-train', 'nb-sample'}


@pytest.mark.parametrize('entry', sorted(ONE_BAD_INPUT))
def test_one_line_at_every_entry_point(entry, tmp_path):
    """The real entry point (the installed console script, or `python -m`) refuses its bad input with exit code 2 and
    exactly one line on stderr, `<prog>: <problem and fix>`, no traceback and no warning, and writes nothing."""
    cmd = [str(Path(sys.executable).parent / entry)] if '-' in entry else [sys.executable, '-m', entry]
    r = subprocess.run([*cmd, *ONE_BAD_INPUT[entry]], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr[-3000:]
    lines = r.stderr.splitlines()
    prog = entry if '-' in entry else {'diffusion_lm.trainer': 'diffusion-lm-train', 'diffusion_lm.finetune': 'diffusion-lm-finetune',
                                         'diffusion_lm.palindromes.corpus': 'python -m diffusion_lm.palindromes.corpus'
                                         }.get(entry, 'diffusion-lm-palindromes')
    assert len(lines) == 1 and lines[0].startswith(f'{prog}: '), r.stderr
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- faults in time
@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_signal_at_random_moments(tmp_path, sig):
    """A signal at a random moment of training, again and again: each run stops with a checkpoint at the step it reached
    (exit 0), every checkpoint verifies and older ones are untouched; the resumed runs log every step exactly once."""
    out, logs, rng, n = tmp_path / 'run', tmp_path / 'logs', random.Random(int(sig)), 150
    argv = train_argv(out, f'max_steps={n}', 'checkpoint_interval=7', 'eval_interval=50', 'keep_last=3')
    stops = 0
    while stops < 3:
        start = last_step(out)
        p = run('train', argv, tmp_path, logs, background=True)
        until(lambda: last_step(out) >= start + 2 or p.poll() is not None)
        time.sleep(rng.uniform(0, 0.3))
        older = {c.name: snapshot(c) for c in list_checkpoints(out)}
        if p.poll() is not None: break
        p.send_signal(sig)
        code = p.wait(120)
        if code != 0:      # only possible once the training loop is over (final evaluation, samples): no stop flag there
            assert last_step(out) == n and code in (130, -signal.SIGTERM), p.stderr[-3000:]
            break
        assert_one_line('train', p.stderr, None)
        res = json.loads((out / 'result.json').read_text())
        assert res['stopped_by_signal'] and not res['finished'] and start < res['step'] < n, res
        assert find_latest_checkpoint(out).name == f"step_{res['step']:06d}"
        for c in list_checkpoints(out):
            assert load_checkpoint(c)['step'] == int(c.name[5:])            # sizes and sha256 verified
            if c.name in older and int(c.name[5:]) < res['step']: assert snapshot(c) == older[c.name], c
        assert [m['step'] for m in metrics(out)] == list(range(1, res['step'] + 1))
        stops += 1
    assert stops >= 2, 'the run ended before it could be stopped twice: raise n'
    p = run('train', argv, tmp_path, logs)
    assert p.code == 0, p.stderr[-3000:]
    assert [m['step'] for m in metrics(out)] == list(range(1, n + 1))
    assert json.loads((out / 'result.json').read_text())['finished']


def test_double_ctrl_c_aborts_with_130(tmp_path):
    "Ctrl-C twice: abort at once (exit 130, one line); whatever was being written is not left half-written; resume finishes."
    out, logs = tmp_path / 'run', tmp_path / 'logs'
    argv = train_argv(out, 'max_steps=60', 'checkpoint_interval=1', 'eval_interval=1', 'keep_last=2')
    p = run('train', argv, tmp_path, logs, background=True)
    until(lambda: last_step(out) >= 5)
    p.send_signal(signal.SIGINT)
    until(lambda: 'Ctrl-C: checkpointing' in p.stderr, poll=0.001)   # the first was handled (two at once count as one)
    p.send_signal(signal.SIGINT)
    assert p.wait(120) == 130, p.stderr[-3000:]
    assert_one_line('train', p.stderr, 'interrupted')
    cks = list_checkpoints(out)
    assert cks and all(load_checkpoint(c)['step'] == int(c.name[5:]) for c in cks)
    others = [q.name for q in (out / 'checkpoints').iterdir() if q.is_dir() and q not in cks]
    assert all(TEMP_RE.match(n) for n in others), others        # no partial step folder; a temporary the next save sweeps
    p = run('train', argv, tmp_path, logs)
    assert p.code == 0 and [m['step'] for m in metrics(out)] == list(range(1, 61)), p.stderr[-3000:]


def test_second_run_on_a_folder_in_use(tmp_path):
    "A second training on a folder a running one holds is refused, naming the holder's PID and host; the first is unharmed."
    out, logs = tmp_path / 'run', tmp_path / 'logs'
    first = run('train', train_argv(out, 'max_steps=100000', 'checkpoint_interval=1000', 'eval_interval=1000'), tmp_path, logs,
                background=True)
    until(lambda: last_step(out) >= 1)
    assert json.loads((out / '.lock').read_text())['pid'] == first.pid
    before = snapshot(out / 'checkpoints') if (out / 'checkpoints').exists() else {}
    second = run('train', train_argv(out), tmp_path, logs)
    assert second.code == 2
    assert_one_line('train', second.stderr, f'{out} is in use by process {first.pid} on host {socket.gethostname()}')
    assert first.poll() is None and json.loads((out / '.lock').read_text())['pid'] == first.pid
    first.send_signal(signal.SIGTERM)
    assert first.wait(120) == 0, first.stderr[-3000:]
    assert json.loads((out / 'result.json').read_text())['stopped_by_signal']
    assert_kept(before, snapshot(out / 'checkpoints'))


def test_full_disk(tmp_path):
    """A run on a 1.2 MB file system: the checkpoint that does not fit is refused in one line naming the folder and the
    free space; the checkpoints written before are byte-identical and verify; nothing half-written is left."""
    if os.geteuid() != 0: pytest.skip('a small tmpfs is mounted for this test, which needs root')
    mnt = tmp_path / 'disk'; mnt.mkdir()
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1200k', 'tmpfs', str(mnt)], capture_output=True, text=True)
    if r.returncode: pytest.skip(f'cannot mount a tmpfs here: {r.stderr.strip()}')
    try:
        out, logs = mnt / 'run', tmp_path / 'logs'
        p = run('train', train_argv(out), tmp_path, logs)                    # 4 steps, checkpoints 2 and 4: they fit
        assert p.code == 0, p.stderr[-3000:]
        before = snapshot(out / 'checkpoints')
        p = run('train', train_argv(out, 'max_steps=40', 'keep_last=20'), tmp_path, logs)
        assert p.code == 2, p.stderr[-3000:]
        assert_one_line('train', p.stderr, 'no space left on the device writing')
        line = p.stderr.strip().splitlines()[-1]
        assert str(out) in line and 'MiB free' in line and 'earlier files are intact' in line, line
        assert_kept(before, snapshot(out / 'checkpoints'), 'step_')              # `latest` moved on to the newest
        cks = list_checkpoints(out)
        assert len(cks) >= 2 and all(load_checkpoint(c)['step'] == int(c.name[5:]) for c in cks)
        assert find_latest_checkpoint(out) == cks[-1]
        assert [q.name for q in (out / 'checkpoints').iterdir() if TEMP_RE.match(q.name)] == []
    finally: subprocess.run(['umount', str(mnt)], capture_output=True)

