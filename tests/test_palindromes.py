"""The palindrome command line (`diffusion-lm-palindromes`, `python -m diffusion_lm.palindromes`) against a tiny
checkpoint trained here: every constrained sample is printed as a palindrome, the summary says 100%, the JSON holds
what was printed, and the unconstrained run, the letters mode and bad arguments behave."""
import json, os, re, shutil, subprocess, sys
from pathlib import Path
import pytest
from diffusion_lm.data import is_palindrome
from diffusion_lm.trainer import train, config_from_preset

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(max_steps=3, n_layer=1, n_embd=32, n_head=2, cond_dim=16, batch_size=8, eval_interval=3, eval_batches=1,
            checkpoint_interval=3, sample_steps=4, n_samples=1, warmup_steps=1, init_from='')


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp('pal')
    train(config_from_preset('palindrome-sedd', **TINY, out_dir=str(d / 'run')), progress=False)
    return d / 'run'


def run(args, cmd=None):
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    cmd = cmd or [sys.executable, '-m', 'diffusion_lm.palindromes']
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def sample_lines(stdout):
    "(verdict is palindrome, text) of each printed sample line `  1. palindrome      0/1 English words  'text'`."
    out = []
    for line in stdout.splitlines():
        m = re.match(r"\s*\d+\. (palindrome    |NOT palindrome)  \d+/\d+ English words  (.*)$", line)
        if m: out.append((m.group(1).strip() == 'palindrome', eval(m.group(2))))
    return out


@pytest.mark.parametrize('length', [7, 10])
def test_constrained_cli_prints_only_palindromes(ckpt, tmp_path, length):
    js = tmp_path / 's.json'
    r = run(['--model', ckpt, '--n-samples', 6, '--length', length, '--steps', 4, '--device', 'cpu', '--json', js])
    assert r.returncode == 0, r.stderr
    lines = sample_lines(r.stdout)
    assert len(lines) == 6
    assert all(v and is_palindrome(t) and len(t.encode()) == length for v, t in lines)
    assert 'summary: palindromes 100.0% (6/6)' in r.stdout
    d = json.loads(js.read_text())
    assert d['samples'] == [t for _, t in lines] and d['summary']['palindrome_rate'] == 1.0


def test_console_script_letters_mode_and_train_lengths(ckpt):
    exe = shutil.which('diffusion-lm-palindromes', path=str(Path(sys.executable).parent))
    assert exe, 'the console script is not installed: pip install -e . (settings.ini console_scripts)'
    r = run(['--model', ckpt, '--n-samples', 5, '--length', 'train', '--steps', 4, '--device', 'cpu', '--mode', 'letters'], cmd=[exe])
    assert r.returncode == 0, r.stderr
    lines = sample_lines(r.stdout)
    assert len(lines) == 5 and all(v and is_palindrome(t) for v, t in lines)


def test_uniform_graph_checkpoint(tmp_path):
    train(config_from_preset('palindrome-sedd', **TINY, graph='uniform', out_dir=str(tmp_path / 'u')), progress=False)
    for sampler in ('euler', 'analytic'):
        r = run(['--model', tmp_path / 'u', '--n-samples', 4, '--length', 11, '--steps', 4, '--device', 'cpu', '--sampler', sampler])
        assert r.returncode == 0, r.stderr
        assert '(uniform)' in r.stdout
        lines = sample_lines(r.stdout)
        assert len(lines) == 4 and all(v and is_palindrome(t) and len(t) == 11 for v, t in lines)


def test_unconstrained_and_errors(ckpt):
    r = run(['--model', ckpt, '--n-samples', 8, '--length', 12, '--steps', 4, '--device', 'cpu', '--unconstrained'])
    assert r.returncode == 0, r.stderr
    lines = sample_lines(r.stdout)
    assert len(lines) == 8 and 'unconstrained' in r.stdout
    assert all(v == is_palindrome(t) for v, t in lines)          # the verdict is the evaluation's, not the flag's
    bad = run(['--model', ckpt / 'nothing', '--device', 'cpu'])
    assert bad.returncode != 0 and 'no such checkpoint' in bad.stderr
    bad = run(['--model', ckpt, '--length', 40, '--device', 'cpu', '--n-samples', 2, '--steps', 2])
    assert bad.returncode != 0 and '1..30' in bad.stderr
