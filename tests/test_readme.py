"""Every command block of README.md, run as a newcomer would run it, in README order, in a copy of this checkout.

Each command is matched by exactly one rule below, which says how the test runs it: as written; shortened with the
override the README documents (`TRAIN_ARGS`, `FINETUNE_ARGS`, a smaller `max_steps`); with the input it needs
provided (the LLaDA-8B `config.json` that `hf download` would fetch: the hub is not reachable from CI); or skipped
with the reason (the clone itself, `make test`, which runs this test). Each run checks the exit status and the
key line of its output. A README command that no rule matches fails the test, so a new command cannot go untested.

The copy holds the tracked files (modification times kept, so `make` sees the set-up as done), `.venv` and
`data/` as links (prepared data is a cache); `PYTHONPATH` points at the copy, so runs land in the copy's
`runs/` and `papermill_runs/`, never in this checkout's."""
import json, os, re, shlex, shutil, subprocess
from dataclasses import dataclass, field
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / 'README.md'
LLADA_CONFIG = ROOT / 'tests' / 'fixtures' / 'llada_8b_instruct_config.json'
STAMP = '.venv/.installed'
# train.ipynb parameters that shorten any training run of the README to seconds (the documented TRAIN_ARGS route)
SHORT = ('-p max_steps 4 -p eval_interval 2 -p eval_batches 1 -p checkpoint_interval 2 -p n_samples 2 '
         '-p log_interval 1')
SHORT_SET = 'eval_interval=2 eval_batches=1 checkpoint_interval=2 n_samples=1 log_interval=1'


def readme_commands(text: str) -> list[tuple[str, str]]:
    "(language, command) for every command in the ```bash and ```python blocks of `text`, continuations joined."
    out = []
    for lang, body in re.findall(r'^```(bash|python)\n(.*?)^```', text, flags=re.S | re.M):
        if lang == 'python': out.append((lang, body)); continue
        for line in body.replace('\\\n', ' ').splitlines():
            if line.strip() and not line.lstrip().startswith('#'): out.append((lang, line.strip()))
    return out


@dataclass
class Plan:
    run: str | None                      # the shell command to run (None: skipped)
    expect: list = field(default_factory=list)   # regexes its output must match
    env: dict = field(default_factory=dict)
    why: str = ''                        # why it is skipped or changed
    check: object = None                 # a function (output, copy folder) -> None with more asserts


def _make(cmd):                           # make must not redo the set-up in the copy (the venv is this checkout's)
    return cmd.replace('make ', f'make -o {STAMP} ', 1)


def _max_steps(cmd, n=4):
    return re.sub(r'max_steps(=| )\d+', lambda m: f'max_steps{m[1]}{n}', cmd)


def _calls_at_most_steps(out, copy):
    m = re.search(r'(\d+) network calls \(steps=(\d+)\)', out)
    assert m and int(m[1]) <= int(m[2]), f'network calls above steps: {m and m.group(0)}'


def _two_sample_files(out, copy):
    files = sorted((copy / 'runs' / 'shakespeare_block' / 'samples').glob('sample_*.json'))
    assert len(files) >= 2, f'each sampling run writes its own file: {files}'


def _release_kind(cmd):
    return 'sedd' if 'sedd' in cmd else 'bd3lm' if 'bd3lm' in cmd else 'mdlm'


def _samples_match(cmd):
    "A check that every sample the run wrote is a string of the command's `regex` (judged by Python's re)."
    args = shlex.split(cmd)
    pattern = args[args.index('regex') + 1]
    def check(out, copy):
        path = re.search(r'samples written to (\S+)', out)[1]
        texts = json.loads((copy / 'nbs' / path if not path.startswith('/') else Path(path)).read_text())['samples']
        assert texts and all(re.fullmatch(pattern, t) for t in texts), texts
    return check


RULES = [   # (regex on the README command, function command -> Plan); the first match wins
    (r'^git clone ', lambda c: Plan(None, why='the test runs in a copy of a clone already')),
    (r'^make test\b', lambda c: Plan(None, why='make test runs this test')),
    (r'^make train$|^make train\s+#', lambda c: Plan(
        f'{_make("make train")} TRAIN_ARGS="{SHORT}"', [r'validation NLL bound at step 4: [\d.]+ ± [\d.]+ bits/char',
                                                      r'--- sample 0'], why='shortened with TRAIN_ARGS')),
    (r'^make train TRAIN_ARGS="', lambda c: Plan(
        _make(_max_steps(c.replace('TRAIN_ARGS="', f'TRAIN_ARGS="{SHORT} ', 1))), [r'at step 4']),),
    (r'nbs/train\.ipynb .* -p preset', lambda c: Plan(f'{c} {SHORT}', [r'at step 4'], why='shortened')),
    (r'^\.venv/bin/diffusion-lm-train |^\.venv/bin/torchrun .*diffusion_lm\.trainer', lambda c: Plan(
        f'{_max_steps(c)} {SHORT_SET}', [r'"finished": true'], why='max_steps=4')),
    (r'nbs/sample\.ipynb .*-p regex', lambda c: Plan(f'{c} -p eval_batches 0 -p gif False -p steps 32 -p n_samples 2',
                                                     [r'samples written to'], check=_samples_match(c))),
    (r'nbs/sample\.ipynb .*-p checkpoint models/\S+ -p eval_text my_text\.txt', lambda c: Plan(
        "printf 'To be, or not to be, that is the question: whether tis nobler in the mind to suffer\\n' > my_text.txt && "
        f'{c} -p steps 8 -p gif False', [r'samples written to .*papermill_runs/samples/', r'validation NLL bound: [\d.]+'],
        why='my_text.txt: a line of text (the tiny release reads 32-token windows); 8 calls')),
    (r'nbs/sample\.ipynb .*-p checkpoint models/', lambda c: Plan(
        f'{c} -p steps 8 -p gif False', [r'samples written to .*papermill_runs/samples/', r'validation bound skipped'],
        why='8 calls; the tiny release the hf download rule wrote')),
    (r'nbs/sample\.ipynb .*-p steps', lambda c: Plan(f'{c} -p eval_batches 1', [r'samples written to'],
                                                     check=lambda o, d: (_calls_at_most_steps(o, d),
                                                                         _two_sample_files(o, d)))),
    (r'nbs/sample\.ipynb', lambda c: Plan(f'{c} -p eval_batches 1', [r'samples written to .*sample_4_0\.json',
                                                                     r'validation NLL bound'])),
    (r'^make palindromes', lambda c: Plan(
        _make('make palindromes'), [r'== sample done'], why='one graph, 2 training steps, 2 samples of length 8',
        env=dict(GRAPHS='absorbing', TRAIN_ARGS=_max_steps(SHORT, 2) + ' -p sample_steps 8', N_SAMPLES='2',
                 LENGTHS='[8]', STEPS='8', REPAIR_ROUNDS='1'))),
    (r'^\.venv/bin/diffusion-lm-palindromes .*--words', lambda c: Plan(
        re.sub(r'--n-samples \d+', '--n-samples 2', c), [r'summary: palindromes 100\.0%', r'strict dictionary 100\.0%'],
        why='2 samples')),
    (r'^\.venv/bin/diffusion-lm-palindromes ', lambda c: Plan(
        re.sub(r'--repair-rounds \d+', '--repair-rounds 1', re.sub(r'--n-samples \d+', '--n-samples 2', c)),
        [r'summary: palindromes 100\.0%'], why='2 samples, 1 repair round')),
    (r'^\.venv/bin/hf download (louaaron/sedd|kuleshov-group/(mdlm|bd3lm))\S* --local-dir (\S+)$', lambda c: Plan(
        '.venv/bin/python -c ' + shlex.quote(
            'import sys; from pathlib import Path; sys.path.insert(0, "tests"); from test_released import tiny_release; '
            f'tiny_release(Path({shlex.split(c)[-1]!r}), {_release_kind(c)!r})'),
        why='the hub is not reachable: a tiny model in the same release layout (tests/test_released.py)')),
    (r'^\.venv/bin/hf download GSAI-ML/LLaDA-8B-Instruct config\.json --local-dir (\S+)$', lambda c: Plan(
        f'mkdir -p {shlex.split(c)[-1]} && cp {shlex.quote(str(LLADA_CONFIG))} {shlex.split(c)[-1]}/config.json',
        why='the hub is not reachable: the config.json fields of LLaDA-8B-Instruct from tests/fixtures')),
    (r'^\.venv/bin/diffusion-lm-finetune --plan .*model=sedd-medium ', lambda c: Plan(
        c, [r'sedd-medium \(released\): 424\.5 M parameters', r'this configuration: full fine-tuning, [\d.]+ GiB per '
            r'device, fits'])),
    (r'^\.venv/bin/diffusion-lm-finetune --plan ', lambda c: Plan(
        c, [r'LLaDA-8B-Instruct: 8\.0\d B parameters', r'this configuration: full, checkpointing on'])),
    (r'^\.venv/bin/diffusion-lm-finetune --set model=models/(sedd|mdlm|bd3lm)\S* dataset=', lambda c: Plan(
        re.sub(r'batch_size=\d+', 'batch_size=2', re.sub(r'context_length=\d+', 'context_length=32', _max_steps(c))),
        [r'"finished": true', r'"model_dir": "\S+/model"'],
        why='the tiny release the hf download rule wrote holds 32 positions; max_steps=4')),
    (r'^make finetune-example', lambda c: Plan(
        f'{_make("make finetune-example")} FINETUNE_ARGS="-p pretrain_steps 2 -p finetune_steps 2 -p eval_examples 2 '
        '-p eval_draws 1 -p n_samples 1 -p answer_length 16 -p out_root runs/finetune_example_readme"',
        why='shortened with FINETUNE_ARGS')),
    (r'^\.venv/bin/diffusion-lm-slurm (submit|pipeline) .*--dry-run', lambda c: Plan(c, [r'#SBATCH --job-name'])),
    (r'^\.venv/bin/diffusion-lm-slurm list', lambda c: Plan(c)),
    (r'^make lab', lambda c: Plan(_make('make -n lab'), [r'jupyter lab nbs'], why='a server: its command printed')),
    (r'^\.venv/bin/nbdev_export && \.venv/bin/nbdev_clean', lambda c: Plan(c.split('#')[0].strip())),
    (r'^make readme', lambda c: Plan(_make('make readme'))),
]


def plan_for(lang: str, cmd: str) -> Plan:
    if lang == 'python':
        src = _max_steps(cmd)
        return Plan(f'.venv/bin/python -c {shlex.quote(src)}', why='max_steps=4')
    hits = [make for rx, make in RULES if re.search(rx, cmd)]
    assert hits, f'README command without a rule in tests/test_readme.py (add one): {cmd}'
    return hits[0](cmd.split('  #')[0].strip())                     # the command without its comment


def test_every_readme_command_has_a_rule():
    cmds = readme_commands(README.read_text())
    assert len(cmds) >= 15
    for lang, cmd in cmds: plan_for(lang, cmd)


def _notebook_text(run: str, copy: Path) -> str:
    "The text outputs of the notebook a papermill command wrote (papermill prints them only with --log-output)."
    if 'papermill' not in run: return ''
    nbs = [a for a in shlex.split(run) if a.endswith('.ipynb')]
    out = copy / nbs[1] if len(nbs) > 1 else None
    if out is None or not out.exists(): return ''
    cells = json.loads(out.read_text())['cells']
    return '\n'.join(''.join(o.get('text', '')) + ''.join(o.get('data', {}).get('text/plain', ''))
                     for c in cells for o in c.get('outputs', []))


def _copy_checkout(dst: Path):
    files = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split('\0')
    for f in filter(None, files):
        src = ROOT / f
        if f.startswith('data/') or not src.exists(): continue
        (dst / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst / f)
    (dst / '.venv').symlink_to(ROOT / '.venv')
    (dst / 'data').symlink_to(ROOT / 'data')


@pytest.mark.skipif(not (ROOT / STAMP).exists(), reason='needs the set-up of make setup (.venv/.installed)')
def test_readme_commands_run(tmp_path):
    copy = tmp_path / 'clone'
    _copy_checkout(copy)
    env = {**os.environ, 'PYTHONPATH': str(copy), 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}
    env.pop('IN_TEST', None)
    where = subprocess.run([str(ROOT / '.venv/bin/python'), '-c', 'import diffusion_lm; print(diffusion_lm.__file__)'],
                           cwd=copy, env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(copy)), where                    # runs go to the copy, not to this checkout
    ran = []
    for lang, cmd in readme_commands(README.read_text()):
        p = plan_for(lang, cmd)
        if p.run is None: continue
        r = subprocess.run(['bash', '-c', p.run], cwd=copy, env={**env, **p.env}, capture_output=True, text=True,
                           timeout=900)
        out = r.stdout + r.stderr + _notebook_text(p.run, copy)
        assert r.returncode == 0, f'README command failed ({r.returncode}): {cmd}\nran: {p.run}\n{out[-4000:]}'
        for rx in p.expect:
            assert re.search(rx, out), f'README command {cmd!r}: no line matching {rx!r} in\n{out[-4000:]}'
        if p.check: p.check(out, copy)
        ran.append(cmd)
    assert len(ran) >= 13
