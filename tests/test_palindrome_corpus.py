"""The palindrome corpus at full size (50,000 phrases by default; `PALINDROME_CORPUS_N` changes it): count,
distinctness, palindromes of words that pass the dictionary test, word and character ranges, no validation
palindrome, the same corpus for the same seed, and the command line that writes it. The generation time is
printed (`pytest -s`), never asserted: about a minute of one core (see nbs/12a_palindrome_corpus.ipynb)."""
import json, os, subprocess, sys, time
from pathlib import Path
import pytest
from diffusion_lm.palindromes.text import is_palindrome, normalize_palindrome
from diffusion_lm.palindromes.data import load_palindromes
from diffusion_lm.palindromes.data import palindrome_splits
from diffusion_lm.palindromes.corpus import (generate_palindromes, all_words_english, word_spans, phrase_stats,
                                            real_in_range, corpus_search)

ROOT = Path(__file__).resolve().parents[1]
N = int(os.environ.get('PALINDROME_CORPUS_N', 50_000))


@pytest.fixture(scope='module')
def val():
    return palindrome_splits()['val']


@pytest.fixture(scope='module')
def corpus(val):
    t0 = time.time()
    corpus_search()                                     # vocabulary and tries, timed apart from the search
    t1 = time.time()
    texts = generate_palindromes(N, seed=0, exclude=val)
    t2 = time.time()
    load = os.getloadavg()
    print(f'\n{N:,} phrases: {t1 - t0:.1f} s for the vocabulary and tries + {t2 - t1:.1f} s of search '
          f'(load average {load[0]:.1f} on {os.cpu_count()} cores)')
    return texts


def test_count_and_distinct(corpus):
    assert len(corpus) == N
    assert len(set(corpus)) == N
    assert len({tuple(w.lower() for w, _ in word_spans(t)) for t in corpus}) == N      # distinct word sequences


def test_palindromes_of_dictionary_words(corpus):
    assert [t for t in corpus if not is_palindrome(t)] == []
    assert [t for t in corpus if not all_words_english(t, names=False)] == []


def test_ranges(corpus):
    assert all(5 <= len(t) <= 40 for t in corpus)
    assert all(2 <= len(word_spans(t)) <= 6 for t in corpus)
    assert {len(word_spans(t)) for t in corpus} == {2, 3, 4, 5, 6}


def test_no_validation_palindrome(corpus, val):
    assert {normalize_palindrome(t) for t in corpus} & {normalize_palindrome(t) for t in val} == set()


def test_surface_varies(corpus):
    "Capitals, commas and final marks near the defaults (90% + 5% capitalised, comma in 12% of gaps, 80% '.')."
    n = len(corpus)
    assert 0.93 < sum(t[0].isupper() for t in corpus) / n < 0.97
    assert 0.77 < sum(t.endswith('.') for t in corpus) / n < 0.83
    assert 0.05 < sum(t.endswith('!') for t in corpus) / n < 0.08
    assert any("'" in t for t in corpus) and any(t.startswith("I'm") or " I'm" in t for t in corpus)


def test_like_real_palindromes(corpus):
    """Letters per word, share of 1-2-letter words and word Zipf within 10% of the real palindromes in range.
    Words per phrase are not: the vocabulary has only 1,326 two-word palindromes, so a large corpus is mostly 4-6
    words."""
    real, gen = phrase_stats(real_in_range(load_palindromes())), phrase_stats(corpus)
    print('\nreal', {k: round(v, 2) for k, v in real.items()}, '\ngenerated', {k: round(v, 2) for k, v in gen.items()})
    assert all(abs(gen[k] - real[k]) <= 0.1 * real[k] for k in ['letters', 'short', 'zipf']), (gen, real)


def test_deterministic(corpus, val):
    n = min(N, 3000)
    again = generate_palindromes(n, seed=0, exclude=val)
    assert again == corpus[:n]                          # the first n of the full run: same stream, same phrases
    assert generate_palindromes(n, seed=1, exclude=val) != again


def test_command_line(tmp_path, val):
    out, fig = tmp_path / 'corpus.json', tmp_path / 'corpus.png'
    cmd = [sys.executable, '-m', 'diffusion_lm.palindromes.corpus', '--n', '500', '--seed', '3', '--out', str(out),
           '--figure', str(fig)]
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert '500 phrases' in r.stdout
    assert json.loads(out.read_text()) == generate_palindromes(500, seed=3, exclude=val)
    assert fig.stat().st_size > 10_000
    before = out.read_bytes()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 2 and '--overwrite' in r.stderr
    assert out.read_bytes() == before                   # the refused run left the corpus alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ['corpus.json', 'corpus.png']
