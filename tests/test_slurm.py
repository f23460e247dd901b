"""SLURM jobs for real: a one-node cluster on localhost runs nbs/train.ipynb through `diffusion_lm.slurm`.

Needs root and Debian's slurmctld, slurmd, slurm-client and munge (`.ci/run` installs them). Without them the
tests skip, unless `CI` is set: then they fail. Every job trains a tiny masked-diffusion model on Tiny
Shakespeare on the CPU; the node advertises two fake GPUs (see slurm_cluster.py) so that GPU requests are
scheduled and the torchrun path gets `SLURM_GPUS_ON_NODE`, but the training itself runs on the CPU (gloo).
Where cgroup v1 is usable (this machine kind), jobs are tracked and pinned to their cores by SLURM's cgroup
plugins, as on a production cluster.
The job script's signal handling is also tested without SLURM, in nbs/11a_slurm.ipynb.
"""
import ast, json, os, re, shlex, shutil, subprocess, sys, time
from pathlib import Path
import pytest, torch
from conftest import ROOT, until as _until
from slurm_cluster import LocalSlurm, missing_programs
from diffusion_lm.checkpoint import load_checkpoint, load_weights
from diffusion_lm.data import prepare_shakespeare
from diffusion_lm.slurm import (SlurmJob, submit, submit_pipeline, wait, job_state, list_runs, newest_checkpoint,
                                run_dir_of, sbatch_script)
from diffusion_lm.slurm_script import job_template

NB = ROOT / 'nbs' / 'train.ipynb'
TINY = dict(preset='shakespeare-llada', n_layer=1, n_embd=32, n_head=2, context_length=32, batch_size=4, eval_batches=1,
            n_samples=1, sample_steps=4, log_interval=1)
QUICK = dict(notebook=str(NB), time='10', signal_seconds=60)
SLOW_STEPS = 1000   # interrupted runs: ~3-6 ms a step here, so the signal (sent after step 25) comes well before the end


# ---------------------------------------------------------------- helpers
def metrics(run_dir) -> list[dict]:
    "The trainer's metrics.jsonl of a run."
    p = Path(run_dir) / 'ckpt' / 'metrics.jsonl'
    return [json.loads(l) for l in p.read_text().splitlines()] if p.exists() else []


def outputs(nb_path) -> str:
    "All the text a notebook's cells printed."
    nb = json.loads(Path(nb_path).read_text())
    return ''.join(''.join(o.get('text', '')) for c in nb['cells'] for o in c.get('outputs', []))


def errors(nb_path) -> list[str]:
    "The errors raised in a notebook's cells."
    nb = json.loads(Path(nb_path).read_text())
    return [f"{o['ename']}: {o['evalue']}" for c in nb['cells'] for o in c.get('outputs', []) if o.get('output_type') == 'error']


def injected(nb_path) -> dict:
    "The parameters papermill injected into an executed notebook, read back from the cell's code."
    nb = json.loads(Path(nb_path).read_text())
    [cell] = [c for c in nb['cells'] if 'injected-parameters' in c['metadata'].get('tags', [])]
    tree = ast.parse(''.join(cell['source']))
    return {a.targets[0].id: ast.literal_eval(a.value) for a in tree.body if isinstance(a, ast.Assign)}


def until(cond, timeout=90, what='condition', poll=0.2):
    return _until(cond, timeout=timeout, poll=poll, what=what)


def log_of(run_dir, job_id) -> str:
    p = Path(run_dir) / 'logs' / f'{job_id}.out'
    return p.read_text(errors='replace') if p.exists() else ''


def show(run_dir, job_id) -> str:
    "The job's log, for assertion messages."
    return f'--- log of job {job_id}:\n{log_of(run_dir, job_id)[-5000:]}'


def step_of(ckpt) -> int: return int(Path(ckpt).name.split('_')[1])


# ---------------------------------------------------------------- the job script, without SLURM: shellcheck and injection
def shellcheck(text: str, *exclude: str) -> str:
    "shellcheck's findings on a bash script (every severity), '' when there are none; skips if shellcheck is missing."
    if shutil.which('shellcheck') is None:
        why = 'shellcheck is not installed (apt-get install shellcheck)'
        if os.environ.get('CI'): pytest.fail(f'CI is set, so the shellcheck tests must run, but: {why}')
        pytest.skip(why)
    r = subprocess.run(['shellcheck', '--shell=bash', '--severity=style', *(f'--exclude={e}' for e in exclude), '-'],
                       input=text, capture_output=True, text=True, timeout=60)
    assert r.returncode in (0, 1), r.stderr
    return r.stdout


PLACEHOLDERS = {'# @SBATCH@': '#SBATCH --job-name=t\n#SBATCH --time=10', '# @ABOUT@': '# a test run',
                "'@RUN_DIR@'": "'/tmp/a run'", "'@CKPT_DIR@'": "'/tmp/a run/ckpt'", "'@REQUEUE@'": '1', '@MODE@': 'notebook',
                '# @ENV_SETUP@': 'export PATH="/opt/venv/bin:$PATH"', '# @THREADS@': 'export OMP_NUM_THREADS=1',
                '# @TRAINING@': "_run notebook python -m papermill in.ipynb out.ipynb -r dataset 'a b'"}


def test_template_passes_shellcheck():
    "The shipped template, as shipped and with every placeholder filled the way sbatch_script fills it."
    t = job_template()
    assert all(k in t for k in PLACEHOLDERS), [k for k in PLACEHOLDERS if k not in t]
    filled = t
    for k, v in PLACEHOLDERS.items(): filled = filled.replace(k, v)
    assert re.findall(r'@[A-Z_]+@', filled) == []
    assert shellcheck(t) == ''
    assert shellcheck(filled) == ''


MODES = {'notebook': ('notebook', dict()), 'notebook-cpus': ('notebook', dict(cpus_per_task=4, mem='8G', partition='cpu')),
         'notebook-no-signal': ('notebook', dict(signal_seconds=None, requeue=False)),
         'torchrun-gpus': ('torchrun', dict(gpus_per_node=4, gpu_type='a100')),
         'torchrun-procs': ('torchrun', dict(procs_per_node=2, cpus_per_task=2)),
         'torchrun-only': ('torchrun', dict(gpus_per_node=2, notebook_after_ddp=False)),
         'srun': ('srun', dict(nodes=2, gpus_per_node=2)), 'srun-cpus': ('srun', dict(nodes=2, procs_per_node=2, cpus_per_task=4)),
         'finetune-process': ('process', dict(program='finetune')),
         'finetune-srun': ('srun', dict(program='finetune', nodes=2, gpus_per_node=8))}
FINETUNE_PARAMS = {'model': 'models/m', 'data': 'data/chat.jsonl', 'fsdp': True}


@pytest.mark.parametrize('mode', MODES)
def test_generated_scripts_pass_shellcheck(tmp_path, mode):
    "Every kind of job script the module writes passes shellcheck (SC1091: the venv's activate script is not followed)."
    want, kw = MODES[mode]
    params = FINETUNE_PARAMS if kw.get('program') == 'finetune' else {**TINY, 'max_steps': 5}
    job = SlurmJob(notebook=str(NB), params=params, name=mode, runs_root=str(tmp_path), **kw)
    s = sbatch_script(job)
    assert job.mode == want
    assert shellcheck(s, 'SC1091') == '', s


def test_hostile_parameter_reaches_papermill_verbatim(tmp_path):
    """The job script run by bash (no SLURM): a parameter full of shell and Python syntax arrives as one argument, exactly;
    nothing in it runs. SC2016 is shellcheck noting that `$(...)` in single quotes stays literal, which is the point."""
    bin_dir, args_file = tmp_path / 'bin', tmp_path / 'args'
    bin_dir.mkdir()
    (bin_dir / 'python').write_text(f'#!/bin/bash\nprintf "%s\\0" "$@" > {shlex.quote(str(args_file))}\n')
    (bin_dir / 'python').chmod(0o755)
    value = HOSTILE_NAME + ' && touch pwned3; $HOME ${PATH} %j'
    job = SlurmJob(notebook=str(NB), params={'dataset': value, 'max_steps': 5}, name='hostile', runs_root=str(tmp_path / 'runs'),
                   env_setup=f'export PATH={shlex.quote(str(bin_dir))}:"$PATH"')
    s = sbatch_script(job)
    assert shellcheck(s, 'SC1091', 'SC2016') == '', s
    rd = run_dir_of(job)
    (rd / 'ckpt').mkdir(parents=True)
    r = subprocess.run(['bash', '-c', s], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                       env={**os.environ, 'HOME': str(tmp_path)})
    assert r.returncode == 0, r.stdout + r.stderr
    args = args_file.read_bytes().decode().split('\0')[:-1]
    assert [args[i + 2] for i, a in enumerate(args) if a == '-r' and args[i + 1] == 'dataset'] == [value], args
    for where in (tmp_path, rd, NB.parent, ROOT):
        assert not list(Path(where).glob('pwned*')), where


# ---------------------------------------------------------------- the cluster
@pytest.fixture(scope='session')
def slurm(tmp_path_factory):
    "A one-node SLURM cluster for the session; `SLURM_CONF` points the clients (and the jobs) at it."
    why = None
    if missing := missing_programs(): why = f'SLURM is not installed here ({", ".join(missing)} not found): apt-get install slurmctld slurmd slurm-client munge'
    elif os.geteuid() != 0: why = 'a local SLURM cluster needs root (slurmd runs the jobs, munged runs as munge)'
    if why:
        if os.environ.get('CI'): pytest.fail(f'CI is set, so the SLURM tests must run, but: {why}')
        pytest.skip(why)
    cluster = LocalSlurm(tmp_path_factory.mktemp('slurm'), cpus=6).start()   # 6 CPUs (on 2 cores): 3 jobs of 2 at once
    old = os.environ.get('SLURM_CONF')
    os.environ['SLURM_CONF'] = str(cluster.conf)
    try: yield cluster
    finally:
        cluster.stop()
        if old is None: os.environ.pop('SLURM_CONF', None)
        else: os.environ['SLURM_CONF'] = old


# ---------------------------------------------------------------- one run, a pipeline, a failure
HOSTILE_NAME = 'data "; rm -rf ~ #\nprint("injected") $(touch pwned)`touch pwned2`\' x'


def hostile_dataset(tmp_path) -> str:
    "The prepared Tiny Shakespeare copied to a folder whose name is shell and Python injection: a valid `dataset` value."
    d = tmp_path / HOSTILE_NAME
    shutil.copytree(prepare_shakespeare(), d)
    return str(d)


def test_single_run(slurm, tmp_path):
    "A tiny CPU run of train.ipynb: executed notebook, final checkpoint, COMPLETED with exit 0, a hostile parameter verbatim."
    hostile = {'dataset': hostile_dataset(tmp_path)}
    job = SlurmJob(**QUICK, params={**TINY, **hostile, 'max_steps': 20, 'checkpoint_interval': 10}, name='single',
                   runs_root=str(tmp_path / 'runs'))
    jid = submit(job)
    rd = run_dir_of(job)
    st = wait(jid, timeout=120, poll=0.5)
    assert (st['state'], st['exit_code'], st['restarts']) == ('COMPLETED', '0:0', 0), show(rd, jid)
    assert newest_checkpoint(rd) == rd / 'ckpt' / 'checkpoints' / 'step_000020'
    nb = rd / 'notebook.ipynb'
    assert errors(nb) == [] and 'step 20/20, finished: True' in outputs(nb)
    got = injected(nb)
    assert {k: got[k] for k in hostile} == hostile                       # arrived verbatim ...
    for where in (tmp_path, rd, NB.parent, ROOT):                        # ... and nothing ran, wherever it would have
        assert not list(Path(where).glob('pwned*')), where
    assert 'injected' not in outputs(nb).splitlines()                   # the line the injected code would print
    assert (got['out_dir'], got['resume'], got['max_steps']) == (str(rd / 'ckpt'), 'auto', 20)
    assert [m['step'] for m in metrics(rd)] == list(range(1, 21))
    rec = json.loads((rd / 'job.json').read_text())
    assert rec['job_id'] == jid and rec['params']['dataset'] == hostile['dataset']
    [run] = list_runs(tmp_path / 'runs')
    assert (run.name, run.job_id, run.state, run.exit_code, run.checkpoint, run.notebook) == \
           ('single', jid, 'COMPLETED', '0:0', rd / 'ckpt' / 'checkpoints' / 'step_000020', nb)
    cli = Path(sys.executable).parent / 'diffusion-lm-slurm'
    r = subprocess.run([str(cli), 'wait', jid, '--timeout', '30'], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)['state'] == 'COMPLETED', r.stdout + r.stderr
    r = subprocess.run([str(cli), 'list', '--runs-root', str(tmp_path / 'runs')], capture_output=True, text=True, timeout=60)
    assert r.stdout.split('\n')[1].split() == ['single', jid, 'COMPLETED', '0:0', '0', 'step_000020', str(nb)], r.stdout


def test_pipeline_through_the_command_line(slurm, tmp_path):
    """`diffusion-lm-slurm pipeline`: the fine-tune waits (afterok) and starts from the pre-train's newest checkpoint.
    The fine-tune trains with lr=1e-300 (lr must be > 0): a step of that size is 0 in float32, so its weights stay exactly
    the ones it started from: the pre-train's last EMA weights."""
    cli = Path(sys.executable).parent / 'diffusion-lm-slurm'
    assert cli.exists(), 'the console script is missing: reinstall with `pip install -e .`'
    runs = tmp_path / 'runs'
    tiny = ['--set', *(f'{k}={v}' for k, v in TINY.items())]
    r = subprocess.run([str(cli), 'pipeline', '--notebook', str(NB), '--name', 'pal', '--runs-root', str(runs), '--time', '10',
                        '--signal-seconds', '60', '--pretrain', *tiny, '--set', 'max_steps=20', 'checkpoint_interval=5',
                        '--finetune', *tiny, '--set', 'max_steps=3', 'lr=1e-300', 'min_lr=0.0'],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    pre_dir, fine_dir = runs / 'pal-pretrain', runs / 'pal-finetune'
    pre_id, fine_id = (json.loads((d / 'job.json').read_text())['job_id'] for d in (pre_dir, fine_dir))
    assert f'pre-train job {pre_id} and fine-tune job {fine_id} (afterok:{pre_id})' in r.stdout
    early = job_state(fine_id)
    assert early['state'] == 'PENDING' and early['reason'] == 'Dependency', early   # waits for the pre-train
    pre, fine = wait(pre_id, timeout=120, poll=0.5), wait(fine_id, timeout=120, poll=0.5)
    assert pre['state'] == 'COMPLETED', show(pre_dir, pre_id)
    assert fine['state'] == 'COMPLETED', show(fine_dir, fine_id)
    ckpts = pre_dir / 'ckpt' / 'checkpoints'
    assert newest_checkpoint(pre_dir) == ckpts / 'step_000020' and newest_checkpoint(fine_dir).name == 'step_000003'
    assert injected(fine_dir / 'notebook.ipynb')['init_from'] == str(pre_dir / 'ckpt')
    start = load_weights(ckpts / 'step_000020', which='ema')
    tuned = load_weights(newest_checkpoint(fine_dir), which='model')
    assert start.keys() == tuned.keys() and all(torch.equal(start[k], tuned[k]) for k in start)
    earlier = load_weights(ckpts / 'step_000015', which='ema')
    assert not all(torch.equal(earlier[k], tuned[k]) for k in earlier)     # so it is the newest checkpoint that was used
    assert metrics(pre_dir)[-1]['time'] < metrics(fine_dir)[0]['time']     # one after the other
    listed = subprocess.run([str(cli), 'list', '--runs-root', str(runs), '--json'], capture_output=True, text=True, timeout=60)
    table = {r['name']: r for r in json.loads(listed.stdout)}
    assert {k: (v['job_id'], v['state'], Path(v['checkpoint']).name, Path(v['notebook']).name) for k, v in table.items()} == \
           {'pal-pretrain': (pre_id, 'COMPLETED', 'step_000020', 'notebook.ipynb'),
            'pal-finetune': (fine_id, 'COMPLETED', 'step_000003', 'notebook.ipynb')}
    assert table['pal-finetune']['dependency'] == f'afterok:{pre_id}'


def test_failed_pretrain_cancels_finetune(slurm, tmp_path):
    """A pre-train that fails never hands over: the fine-tune is cancelled (--kill-on-invalid-dep=yes), and `wait` sees it.
    (A data set folder that is missing when the job runs: the parameters themselves pass the checks at submission.)"""
    missing = str(tmp_path / 'no-such-data')
    pre_id, fine_id = submit_pipeline({**TINY, 'dataset': missing}, {**TINY, 'max_steps': 3}, name='bad', notebook=str(NB),
                                      runs_root=str(tmp_path), time='10', signal_seconds=60)
    pre, fine = wait(pre_id, timeout=120, poll=0.5), wait(fine_id, timeout=60, poll=0.5)
    assert (pre['state'], pre['exit_code']) == ('FAILED', '1:0'), pre
    assert f"unknown data set '{missing}'" in log_of(tmp_path / 'bad-pretrain', pre_id)
    assert fine['state'] == 'CANCELLED', fine
    assert not (tmp_path / 'bad-finetune' / 'logs' / f'{fine_id}.out').exists()   # never started


# ---------------------------------------------------------------- preemption: three jobs at once
def interrupt_mid_run(commands: dict, timeout=120):
    "Run `commands[run_dir]` as soon as that run has its first checkpoint (so it is training), watching all runs at once."
    pending, t0 = dict(commands), time.monotonic()
    while pending:
        for rd in [rd for rd in pending if newest_checkpoint(rd)]: subprocess.run(pending.pop(rd), check=True)
        if time.monotonic() - t0 > timeout: raise TimeoutError(f'no checkpoint in {list(pending)} after {timeout} s')
        time.sleep(0.05)


def restart_now(job_id, run_dir, attempt_end: str) -> tuple[list[dict], Path]:
    """Once an interrupted job is back in the queue (its first attempt over), note its metrics and newest checkpoint,
    and let it start again now rather than after the ~10-20 s a requeued job waits (BeginTime)."""
    until(lambda: job_state(job_id)['state'] == 'PENDING' and attempt_end in log_of(run_dir, job_id), what=f'job {job_id} requeued')
    before = (metrics(run_dir), newest_checkpoint(run_dir))
    # slurmd refuses a credential issued in the same second as the revocation of the job's previous one
    # ("Job credential revoked": the job would FAIL); a real requeue waits at least cred_expire anyway
    time.sleep(2)
    subprocess.run(['scontrol', 'update', f'jobid={job_id}', 'StartTime=now'], check=True)
    return before


@pytest.fixture(scope='module')
def preempted(slurm, tmp_path_factory):
    """Three runs, interrupted three ways while they train:
    'timer': a 1-minute job whose --signal=B:USR1@55 SLURM itself delivers (requeue off: it must stop cleanly and say so);
    'usr1': the same signal sent by hand (`scancel --batch --signal=USR1`): checkpoint, self-requeue, resume;
    'requeue': `scontrol requeue` from outside: SIGTERM (to the batch shell only, with proctrack/cgroup), forwarded
               to the training: checkpoint, restart, resume."""
    root = tmp_path_factory.mktemp('preempt')
    slow = {**TINY, 'max_steps': SLOW_STEPS, 'checkpoint_interval': 25, 'eval_interval': 25}
    jobs = {'timer': SlurmJob(**{**QUICK, 'time': '1', 'signal_seconds': 55}, requeue=False, name='timer', runs_root=str(root),
                              params={**TINY, 'max_steps': 100_000, 'checkpoint_interval': 100_000, 'eval_interval': 50, 'log_interval': 50}),
            'usr1': SlurmJob(**QUICK, params=slow, name='usr1', runs_root=str(root)),
            'requeue': SlurmJob(**QUICK, params=slow, name='requeue', runs_root=str(root))}
    ids = {k: submit(j) for k, j in jobs.items()}
    dirs = {k: run_dir_of(j) for k, j in jobs.items()}
    interrupt_mid_run({dirs['usr1']: ['scancel', '--batch', '--signal=USR1', ids['usr1']],
                       dirs['requeue']: ['scontrol', 'requeue', ids['requeue']]})
    before = {'usr1': restart_now(ids['usr1'], dirs['usr1'], 'this attempt ends'),
              'requeue': restart_now(ids['requeue'], dirs['requeue'], '] exit ')}
    return ids, dirs, before


@pytest.mark.parametrize('kind', ['usr1', 'requeue'])
def test_interrupted_run_resumes_from_its_checkpoint(preempted, kind):
    "The interrupted run checkpointed where it stopped; the restart continued from there (metrics continue, not restart)."
    ids, dirs, before = preempted
    jid, rd = ids[kind], dirs[kind]
    (m1, ckpt1) = before[kind]
    st = wait(jid, timeout=150, poll=0.5)
    assert (st['state'], st['exit_code'], st['restarts']) == ('COMPLETED', '0:0', 1), show(rd, jid)
    stop = step_of(ckpt1)
    assert 25 <= stop < SLOW_STEPS and m1[-1]['step'] == stop                # a checkpoint at the last step trained
    m = metrics(rd)
    assert [r['step'] for r in m] == list(range(1, SLOW_STEPS + 1))           # every step once: continued, not restarted
    assert m[:stop] == m1                                                      # the first attempt's lines, untouched
    assert newest_checkpoint(rd).name == f'step_{SLOW_STEPS:06d}'
    first, final = rd / 'notebook.attempt-1.ipynb', rd / 'notebook.ipynb'
    assert f'step {stop}/{SLOW_STEPS}, finished: False' in outputs(first)    # papermill outlived the signal
    assert errors(final) == [] and f'step {SLOW_STEPS}/{SLOW_STEPS}, finished: True' in outputs(final)
    log = log_of(rd, jid)
    assert log.count('attempt 1,') == 1 and log.count('attempt 2,') == 1, log  # one log, appended
    if kind == 'usr1':
        assert 'forwarding SIGUSR1 to the training process' in log and f'requeued job {jid}' in log, show(rd, jid)
    else: assert 'SIGTERM: SLURM is ending the job' in log and 'forwarding SIGTERM to the training process' in log, show(rd, jid)


def test_time_limit_signal_checkpoints(preempted):
    "SLURM's own --signal=B:USR1@55 on a 1-minute job: the run checkpoints and stops; without requeue the job ends FAILED 75."
    ids, dirs, _ = preempted
    jid, rd = ids['timer'], dirs['timer']
    st = wait(jid, timeout=100, poll=0.5)
    assert (st['state'], st['exit_code'], st['restarts']) == ('FAILED', '75:0', 0), show(rd, jid)
    stop = step_of(newest_checkpoint(rd))
    assert 0 < stop < 100_000
    assert f'step {stop}/100000, finished: False' in outputs(rd / 'notebook.ipynb'), show(rd, jid)
    log = log_of(rd, jid)
    assert 'SIGUSR1: the time limit is near' in log and 'forwarding SIGUSR1 to the training process' in log
    assert 'preempted and not requeued' in log and log.rstrip().endswith('exit 75')


# ---------------------------------------------------------------- several processes: torchrun, and srun + torchrun
def test_multi_process_jobs(slurm, tmp_path):
    """Three DDP runs of 2 processes (gloo on the CPU) through `python -m diffusion_lm.trainer`, each interrupted mid-run:
    'gpus': torchrun on two (fake) GPUs, the --signal (SIGUSR1) forwarded to rank 0, which stops every rank;
    'srun': srun + torchrun (the multi-node path, on one node), SIGUSR1 passed on by srun and the torchrun agent;
    'term': torchrun, `scontrol requeue` (SIGTERM) forwarded to rank 0.
    Each checkpoints with both ranks, restarts, resumes, and then runs the notebook, which finds the run finished."""
    params = {**TINY, 'max_steps': 400, 'checkpoint_interval': 25, 'eval_interval': 25, 'keep_last': 50}
    common = dict(**QUICK, params=params, runs_root=str(tmp_path), cpus_per_task=2)   # one core per process
    jobs = {'gpus': SlurmJob(**common, name='gpus', gpus_per_node=2),
            'srun': SlurmJob(**common, name='srun', procs_per_node=2, launcher='srun'),
            'term': SlurmJob(**common, name='term', procs_per_node=2)}
    assert [j.mode for j in jobs.values()] == ['torchrun', 'srun', 'torchrun']
    ids = {k: submit(j) for k, j in jobs.items()}
    dirs = {k: run_dir_of(j) for k, j in jobs.items()}
    usr1 = lambda k: ['scancel', '--batch', '--signal=USR1', ids[k]]
    interrupt_mid_run({dirs['gpus']: usr1('gpus'), dirs['srun']: usr1('srun'), dirs['term']: ['scontrol', 'requeue', ids['term']]})
    before = {k: restart_now(ids[k], dirs[k], '] exit ' if k == 'term' else 'this attempt ends') for k in jobs}
    for k in jobs:
        jid, rd = ids[k], dirs[k]
        st = wait(jid, timeout=180, poll=0.5)
        assert (st['state'], st['exit_code'], st['restarts']) == ('COMPLETED', '0:0', 1), show(rd, jid)
        m1, ckpt1 = before[k]
        stop = step_of(ckpt1)
        assert m1[-1]['step'] == stop and 25 <= stop < 400, show(rd, jid)
        assert load_checkpoint(ckpt1)['extra']['world_size'] == 2               # written by a group of 2 processes
        m = metrics(rd)
        assert [r['step'] for r in m] == list(range(1, 401)) and m[:stop] == m1
        final = rd / 'notebook.ipynb'
        assert errors(final) == [] and 'step 400/400, finished: True' in outputs(final)
        assert not (rd / 'notebook.attempt-1.ipynb').exists()                   # the interrupted attempt ran no notebook
        log = log_of(rd, jid)
        assert '"finished": false' in log and '"finished": true' in log, show(rd, jid)   # the trainer's summaries
        expected = {'gpus': 'forwarding SIGUSR1 to the training process', 'srun': 'forwarding SIGUSR1 to srun',
                    'term': 'forwarding SIGTERM to the training process'}[k]
        assert expected in log, show(rd, jid)
    assert log_of(dirs['gpus'], ids['gpus']).count('GPUs on the node: 2') == 2   # nproc_per_node from SLURM_GPUS_ON_NODE


def test_fsdp2_finetune_through_slurm(slurm, tmp_path):
    """`diffusion-lm-slurm finetune` on the cluster: FSDP2 over 2 processes (gloo on the CPU) under torchrun; SIGUSR1
    mid-run reaches rank 0 (train.pid), both ranks write their shards, the job requeues itself, and the next attempt
    resumes from the sharded checkpoint and ends with the exported model, every step logged once."""
    from diffusion_lm.testing import make_tiny_llada
    from diffusion_lm.sft_data import write_jsonl
    words = ['cat', 'dog', 'sun', 'sea', 'red', 'ink', 'owl', 'fig']
    data = write_jsonl(tmp_path / 'chat.jsonl', [{'messages': [{'role': 'user', 'content': f'repeat: {w}'},
                                                               {'role': 'assistant', 'content': f'{w} {w}'}]} for w in words])
    sets = dict(model=make_tiny_llada(tmp_path / 'tiny'), data=data, fsdp=True, max_length=64, batch_size=2, max_steps=300,
                checkpoint_interval=10, keep_last=50, lr=1e-3, warmup_steps=0, lr_schedule='constant', weight_decay=0.0,
                device='cpu', log_interval=1)
    cli, runs = Path(sys.executable).parent / 'diffusion-lm-slurm', tmp_path / 'runs'
    r = subprocess.run([str(cli), 'finetune', '--name', 'ft', '--runs-root', str(runs), '--procs-per-node', '2',
                        '--cpus-per-task', '2', '--time', '10', '--signal-seconds', '60',
                        '--set', *(f'{k}={v}' for k, v in sets.items())], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rd = runs / 'ft'
    jid = json.loads((rd / 'job.json').read_text())['job_id']
    assert r.stdout.strip() == f'submitted job {jid}: run directory {rd}'
    interrupt_mid_run({rd: ['scancel', '--batch', '--signal=USR1', jid]})
    m1, ckpt1 = restart_now(jid, rd, 'this attempt ends')
    st = wait(jid, timeout=300, poll=0.5)
    assert (st['state'], st['exit_code'], st['restarts']) == ('COMPLETED', '0:0', 1), show(rd, jid)
    stop = step_of(ckpt1)
    assert ckpt1.parent.name == 'checkpoints' and 10 <= stop < 300 and m1[-1]['step'] == stop, (ckpt1, m1[-1:])
    assert (ckpt1 / '__1_0.distcp').is_file()                                   # rank 1 wrote its own shards
    m = metrics(rd)
    assert [x['step'] for x in m] == list(range(1, 301)) and m[:stop] == m1
    res = json.loads((rd / 'ckpt' / 'result.json').read_text())
    assert (res['finished'], res['world_size'], res['start_step']) == (True, 2, stop), res
    assert (rd / 'ckpt' / 'model' / 'model.safetensors').is_file()
    log = log_of(rd, jid)
    assert 'mode torchrun' in log and 'forwarding SIGUSR1 to the training process' in log, show(rd, jid)
    assert 'requeued job' in log and log.rstrip().endswith('exit 0'), show(rd, jid)
