"""The palindrome command line (`diffusion-lm-palindromes`, `python -m diffusion_lm.palindromes`) against a tiny
checkpoint trained here on a small `palindromes-mix`: every constrained sample is printed as a palindrome (with word
repair too), the summary says 100%, the JSON holds what was printed, and the unconstrained run, the letters mode and
bad arguments behave. Then the mix at a realistic size: the requested share, and every generated phrase a
palindrome of words of the shipped word lists."""
import json, os, re, shutil, string, subprocess, sys
from pathlib import Path
import pytest
from diffusion_lm.trainer import train, config_from_preset
from diffusion_lm.data import prepare_dataset, load_metadata
from diffusion_lm.palindromes.data import load_palindromes
from diffusion_lm.palindromes.corpus import word_spans, dictionary, PRONOUN_I, SHORT_WORDS
from diffusion_lm.tokenizers import ByteTokenizer
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(max_steps=3, n_layer=1, n_embd=32, n_head=2, cond_dim=16, batch_size=8, eval_interval=3, eval_batches=1,
            checkpoint_interval=3, sample_steps=4, n_samples=1, warmup_steps=1, init_from='')


@pytest.fixture(scope='module')
def mix(tmp_path_factory):
    return prepare_dataset('palindromes-mix', out_dir=tmp_path_factory.mktemp('mix') / 'm', n_generated=100)


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory, mix):
    d = tmp_path_factory.mktemp('pal')
    train(config_from_preset('palindrome-sedd', **TINY, dataset=str(mix), out_dir=str(d / 'run')), progress=False)
    return d / 'run'


# The verdicts are checked here without the library's `is_palindrome` / `normalize_palindrome` (which the command
# itself uses): exact mode by reversing the text, letters mode by a normal form written out below.
ALNUM = string.ascii_letters + string.digits


def exact_palindrome(t: str) -> bool:
    "Exact mode: the text itself reads the same backwards, and begins (so ends) with a letter or digit."
    return t == t[::-1] and t[:1] in tuple(ALNUM)


def letters(t: str) -> str:
    "ASCII letters and digits of `t`, lower-cased: 'Step on no pets!' -> 'steponnopets'."
    return ''.join(c.lower() for c in t if c in ALNUM)


def letters_palindrome(t: str) -> bool:
    "Letters mode: at least one letter or digit, and those letters/digits (case-folded) read the same backwards."
    f = letters(t)
    return f != '' and f == f[::-1]


def test_independent_checks_on_known_texts():
    "The test's own checks on texts whose answer is known by hand (so the CLI checks below compare against something)."
    assert [exact_palindrome(t) for t in ('racecar', 'ab ba', 'abba ', ' abba ', 'Racecar', 'xyzzyx', 'ab')] == \
        [True, True, False, False, False, True, False]          # ' abba ' mirrors, but its first character is a space
    yes = ['Step on no pets', 'A man, a plan, a canal: Panama', 'Racecar', 'No lemon, no melon.', 'ab1ba', "Was it a cat I saw?"]
    no = ['abc', '!!', '', 'abca', 'Step on no pet', '1ab2']
    assert [letters_palindrome(t) for t in yes + no] == [True] * len(yes) + [False] * len(no)
    assert letters('A man, a plan!') == 'amanaplan'


def test_verdict_lines_on_known_texts():
    "The command's per-sample verdict (`palindromes.eval.verdict`) against hand-labelled texts (both answers occur)."
    from diffusion_lm.palindromes.eval import verdict
    texts = {'Step on no pets': True, 'A man, a plan, a canal: Panama': True, 'Racecar': True, 'ab1ba': True,
             'abc': False, '!!': False, 'abca': False, 'Step on no pet': False}
    got = {t: verdict(t).startswith('palindrome    ') for t in texts}
    assert got == texts and all(verdict(t).startswith('NOT palindrome') for t, v in texts.items() if not v)


def run(args, cmd=None):
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    cmd = cmd or [sys.executable, '-m', 'diffusion_lm.palindromes']
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def sample_lines(stdout):
    "(verdict is palindrome, text) of each line `  1. palindrome      0/1 dictionary words  (lenient 0/1)  'text'`."
    out = []
    for line in stdout.splitlines():
        m = re.match(r"\s*\d+\. (palindrome    |NOT palindrome)  \d+/\d+ dictionary words  \(lenient \d+/\d+\)  (.*)$", line)
        if m: out.append((m.group(1).strip() == 'palindrome', eval(m.group(2))))
    return out


@pytest.mark.parametrize('length', [7, 10])
def test_constrained_cli_prints_only_palindromes(ckpt, tmp_path, length):
    js = tmp_path / 's.json'
    r = run(['--model', ckpt, '--n-samples', 6, '--length', length, '--steps', 4, '--device', 'cpu', '--json', js])
    assert r.returncode == 0, r.stderr
    lines = sample_lines(r.stdout)
    assert len(lines) == 6
    assert all(v and exact_palindrome(t) and len(t.encode()) == length for v, t in lines)
    assert 'summary: palindromes 100.0% (6/6)' in r.stdout
    d = json.loads(js.read_text())
    assert d['samples'] == [t for _, t in lines] and d['summary']['palindrome_rate'] == 1.0


def test_console_script_letters_mode_and_train_lengths(ckpt):
    exe = shutil.which('diffusion-lm-palindromes', path=str(Path(sys.executable).parent))
    assert exe, 'the console script is not installed: pip install -e . (settings.ini console_scripts)'
    r = run(['--model', ckpt, '--n-samples', 5, '--length', 'train', '--steps', 4, '--device', 'cpu', '--mode', 'letters'], cmd=[exe])
    assert r.returncode == 0, r.stderr
    lines = sample_lines(r.stdout)
    assert len(lines) == 5 and all(v and letters_palindrome(t) for v, t in lines)


def test_uniform_graph_checkpoint(tmp_path, mix):
    train(config_from_preset('palindrome-sedd-uniform', **TINY, dataset=str(mix), out_dir=str(tmp_path / 'u')), progress=False)
    for sampler in ('euler', 'analytic'):
        r = run(['--model', tmp_path / 'u', '--n-samples', 4, '--length', 11, '--steps', 4, '--device', 'cpu', '--sampler', sampler,
                 '--repair-rounds', 2])
        assert r.returncode == 0, r.stderr
        assert '(uniform)' in r.stdout
        lines = sample_lines(r.stdout)
        assert len(lines) == 4 and all(v and exact_palindrome(t) and len(t) == 11 for v, t in lines)


def test_unconstrained_and_errors(ckpt):
    r = run(['--model', ckpt, '--n-samples', 8, '--length', 12, '--steps', 4, '--device', 'cpu', '--unconstrained'])
    assert r.returncode == 0, r.stderr
    lines = sample_lines(r.stdout)
    assert len(lines) == 8 and 'unconstrained' in r.stdout
    # the verdict is the evaluation's, not the flag's: each line's against the test's own letters-mode check, and the
    # summary's count against the number of lines that check passes
    assert [v for v, _ in lines] == [letters_palindrome(t) for _, t in lines]
    k = sum(letters_palindrome(t) for _, t in lines)
    assert f'summary: palindromes {100 * k / 8:.1f}% ({k}/8)' in r.stdout
    bad = run(['--model', ckpt / 'nothing', '--device', 'cpu'])
    assert bad.returncode != 0 and 'no such checkpoint' in bad.stderr
    bad = run(['--model', ckpt, '--length', 40, '--device', 'cpu', '--n-samples', 2, '--steps', 2])
    assert bad.returncode != 0 and '1..30' in bad.stderr


def test_word_repair_cli(ckpt, tmp_path):
    js = tmp_path / 'r.json'
    r = run(['--model', ckpt, '--n-samples', 6, '--length', 12, '--steps', 4, '--device', 'cpu', '--mode', 'letters',
             '--repair-rounds', 3, '--json', js])
    assert r.returncode == 0, r.stderr
    lines = sample_lines(r.stdout)
    assert len(lines) == 6 and all(v and letters_palindrome(t) and len(t) == 12 for v, t in lines)
    assert 'before repair' in r.stdout and 'extra network calls per sample' in r.stdout
    d = json.loads(js.read_text())
    assert d['calls']['repair'] <= 3 * 5 * 6            # at most 3 rounds of 5 calls over 6 rows
    assert len(d['unrepaired']) == 6 and all(letters_palindrome(t) for t in d['unrepaired'])
    bad = run(['--model', ckpt, '--unconstrained', '--repair-rounds', 2, '--device', 'cpu'])
    assert bad.returncode != 0 and 'drop --unconstrained' in bad.stderr


def test_judge_cli(ckpt, mix, tmp_path):
    "--judge DATA: each sample's bits/char under a byte 6-gram model of DATA's rows (here the mix), as the core computes them."
    from diffusion_lm.ngram import NgramLM, byte_rows_texts
    js = tmp_path / 'j.json'
    r = run(['--model', ckpt, '--n-samples', 6, '--length', 9, '--steps', 4, '--device', 'cpu', '--judge', mix, '--json', js])
    assert r.returncode == 0, r.stderr
    d = json.loads(js.read_text())
    lm = NgramLM.fit(byte_rows_texts(mix), order=6)
    want = [round(float(b), 4) for b in lm.bits_per_char(d['samples'], prefix='\n')]
    assert d['judge_bits'] == want and abs(d['summary']['judge_bits'] - sum(want) / 6) < 1e-9
    assert d['summary']['novel'] <= d['summary']['novel_corpus']
    assert re.search(r'judge of English: \d+\.\d\d ± \d+\.\d\d bits/char over 6 samples; validation palindromes \d+\.\d\d', r.stdout)
    bad = run(['--model', ckpt, '--device', 'cpu', '--n-samples', 2, '--steps', 2, '--judge', tmp_path / 'nowhere'])
    assert bad.returncode == 2 and 'nowhere' in bad.stderr, bad.stderr


def listed(word):
    "A word of the shipped lists (lower-case entry, the pronoun I and its contractions, or a listed short word)."
    w = word.lower()
    base = w[:-2] if w.endswith("'s") and w[:-2] in dictionary().lower else w
    return base in dictionary().lower or w in PRONOUN_I or w in SHORT_WORDS


@pytest.mark.parametrize('share', [0.3, 0.8])
def test_mix_share_and_generated_phrases(tmp_path, share):
    out = prepare_dataset('palindromes-mix', out_dir=tmp_path / 'm', n_generated=3000, generated_share=share)
    meta, splits = load_metadata(out), json.loads((out / 'splits.json').read_text())
    texts = ByteTokenizer().decode_batch(np.fromfile(out / 'train.bin', dtype=np.uint16).reshape(-1, 32))
    gen = set(splits['generated'])
    n_gen = sum(t in gen for t in texts)
    assert n_gen == 3000 == meta['generated_rows'] and len(texts) - n_gen == meta['real_rows']
    assert abs(n_gen / len(texts) - share) <= 1 / len(texts)
    assert all(t in gen or t in set(splits['train']) for t in texts)
    assert [t for t in splits['generated'] if not (t.isascii() and letters_palindrome(t))] == []
    assert [t for t in splits['generated'] if not all(listed(w) for w, _ in word_spans(t))] == []
    assert all(len(t.encode()) <= 30 for t in splits['generated'])
    real = {letters(t) for t in load_palindromes()}           # ASCII forms: a real text with 'á' only gets stricter
    assert {letters(t) for t in splits['generated']} & real == set()


def strict_listed(text):
    "Independently of the library: single spaces between lower-case entries of the shipped lists (short: listed)."
    words = text.split(' ')
    return all(w and w in dictionary().lower and (len(w) > 2 or w in SHORT_WORDS) for w in words)


def test_words_cli(ckpt, tmp_path):
    js = tmp_path / 'w.json'
    r = run(['--model', ckpt, '--n-samples', 8, '--length', 'train', '--steps', 4, '--device', 'cpu', '--words',
             '--one-letter-weight', 0, '--json', js])
    assert r.returncode == 0, r.stderr
    lines = sample_lines(r.stdout)
    assert len(lines) == 8 and all(exact_palindrome(t) and strict_listed(t) for _, t in lines), lines
    assert not any(len(w) == 1 for _, t in lines for w in t.split(' '))          # one-letter words weighed 0
    assert json.loads(js.read_text())['summary']['all_words_strict'] == 1.0
    r = run(['--model', ckpt, '--n-samples', 4, '--length', 9, '--steps', 4, '--device', 'cpu', '--words'])
    assert r.returncode == 0 and all(len(t) == 9 and strict_listed(t) for _, t in sample_lines(r.stdout))
    for argv, msg in ((['--length', 2], 'no palindrome of that many'), (['--mode', 'letters'], 'exact mode'),
                      (['--one-letter-weight', 'nan'], 'finite numbers')):
        bad = run(['--model', ckpt, '--words', '--device', 'cpu', '--n-samples', 2, '--steps', 2, *argv])
        assert bad.returncode == 2 and msg in bad.stderr, bad.stderr
