"""The benchmarks in bench/: the --quick paths of sampling.py, train_throughput.py, gpu.py and run_all.sh and the JSON
they promise; the derived figures (ratios, rates, standard errors, targets) on inputs whose answers are worked out by
hand, with a scripted clock, sampler and judge where a figure needs timings; the quick runs' stored scores against the
judge re-applied here by another method (the chain rule, one forward pass per prefix) and FLOP counts against torch's
own counter; and the invariants that hold for any weights (network calls equal the step count for the non-adaptive
samplers; cached and uncached greedy decoding agree). No wall time is asserted."""
import json, math, os, statistics, subprocess, sys, time
from collections import Counter
from pathlib import Path
import pytest, torch

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / 'bench'
sys.path.insert(0, str(BENCH))
import benchlib as bl  # noqa: E402
import sampling, sampling_budget, train_throughput, collect  # noqa: E402
from diffusion_lm.model import DiffusionTransformer  # noqa: E402
from diffusion_lm.methods import Autoregressive, MaskedDiffusion, BlockDiffusion, SEDD  # noqa: E402

ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}


def run(script, *args, ok=True, env=None):
    r = subprocess.run([sys.executable, str(BENCH / script), *map(str, args)], cwd=ROOT, env={**ENV, **(env or {})},
                       capture_output=True, text=True, timeout=900)
    if ok: assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def result(d: Path, name: str) -> dict:
    files = list(Path(d).glob(f'{name}__*.json'))
    assert len(files) == 1, files
    res = json.loads(files[0].read_text())
    assert files[0].with_suffix('.md').read_text().startswith(f'*{name}*')
    for k in ('cpu', 'logical_cpus', 'torch_threads', 'torch', 'gpu', 'date', 'kind', 'loadavg_start', 'loadavg_end'):
        assert k in res['machine'], k
    assert res['benchmark'] == name and len(res['run_id']) == 32
    return res


class Clock:
    "A clock that moves only when told (`advance`); `perf_counter` and `process_time` are its wall and CPU clocks."
    def __init__(self): self.wall = self.cpu = 0.0
    def advance(self, wall: float, cpu: float = 0.0): self.wall += wall; self.cpu += cpu
    def perf_counter(self): return self.wall
    def process_time(self): return self.cpu


def rescored(texts: list[str], L: int) -> list[float | None]:
    """Bits/char of each text under the quick judge the quick runs used, by the chain rule: one forward pass of each
    prefix BOS + x_<i alone, not the judge's `token_nll` the benchmarks call. None for a text shorter than L: its
    sample held an EOS or another special token, which the text drops, so its tokens cannot be recovered."""
    import judge as J
    jd = J.load_judge('cpu', quick=True)                                  # trained by the quick run before: reused
    model, bos, stoi = jd['model'].eval(), jd['method'].bos_id, jd['tok'].stoi
    full = [i for i, t in enumerate(texts) if len(t) == L]
    x = torch.tensor([[stoi[c] for c in texts[i]] for i in full]).view(len(full), L)
    nats = torch.zeros(len(x), dtype=torch.float64)
    with torch.no_grad():
        for i in range(L):
            prefix = torch.cat([torch.full((len(x), 1), bos), x[:, :i]], 1)
            nats -= model(prefix)[:, -1].double().log_softmax(-1).gather(-1, x[:, i:i + 1])[:, 0]
    out = [None] * len(texts)
    for i, v in zip(full, (nats / L / math.log(2)).tolist()): out[i] = v
    return out


def entropy_of_text(texts: list[str]) -> float:
    "Character entropy (bits) of the texts together, from their characters, by torch's Categorical (not sampling's Counter sum)."
    counts = torch.tensor(list(Counter(''.join(texts)).values()), dtype=torch.float64)
    return (torch.distributions.Categorical(probs=counts / counts.sum()).entropy() / math.log(2)).item()


def tiny(method, L=12, dtype=torch.float64, **kw):
    "A small random model for `method` (GPT-2 init: the output layer is not zero, so the logits are not all tied)."
    torch.manual_seed(0)
    cfg = method.model_config(n_layer=2, n_head=2, n_embd=16, context_length=2 * L, init='gpt2', **kw)
    return DiffusionTransformer(cfg).to(dtype).eval()


# ------------------------------------------------------------------ benchlib
def test_summarise_bits_formulas():
    bits = torch.tensor([[1., 2., 3., 4.], [3., 2., 1., 4.]], dtype=torch.float64)   # [draws, windows]
    ref = torch.tensor([1., 1., 1., 2.], dtype=torch.float64)
    s = bl.summarise_bits(bits, ref)
    # by hand: per-window means 2, 2, 2, 4 -> mean 2.5; deviations -.5, -.5, -.5, 1.5 -> sum of squares 3, sample
    # variance 3 / 3 = 1, sd 1, se = 1 / sqrt(4) = 0.5
    assert math.isclose(s['bits'], 2.5) and math.isclose(s['se'], 0.5) and (s['windows'], s['draws']) == (4, 2)
    # Monte-Carlo: per-window variance over the 2 draws (n - 1 = 1): (1,3) -> 2, (2,2) -> 0, (3,1) -> 2, (4,4) -> 0;
    # sum 4, / 2 draws = 2, sqrt -> sqrt(2), / 4 windows = sqrt(2) / 4 = 0.35355...
    assert math.isclose(s['mc_se'], 0.3535533905932738)
    # gap: per-window 2-1, 2-1, 2-1, 4-2 = 1, 1, 1, 2 -> mean 1.25; deviations -.25 x 3, .75 -> squares .75, variance
    # .75 / 3 = .25, sd .5, se .5 / 2 = 0.25 (not the windows' own 0.5: the pairing matters)
    assert math.isclose(s['gap_bits'], 1.25) and math.isclose(s['gap_se'], 0.25)
    assert bl.summarise_bits(bits[:1], exact=True)['mc_se'] == 0.0 and bl.summarise_bits(bits[:1])['mc_se'] is None


def test_paired_ratios():
    # medians 4 and 3 -> 4/3; per-repetition ratios 2, 1, 3 -> median 2
    assert bl.paired_ratios([2., 4., 9.], [1., 4., 3.]) == {'ratio': 4 / 3, 'paired_ratio': 2.0}
    # even count: medians (3 + 5) / 2 = 4 and (2 + 4) / 2 = 3 -> 4/3; ratios .5, 1.5, 1.25, 1.75 -> (1.25 + 1.5) / 2
    r = bl.paired_ratios([1., 3., 5., 7.], [2., 2., 4., 4.])
    assert math.isclose(r['ratio'], 4 / 3) and math.isclose(r['paired_ratio'], 1.375)


# ------------------------------------------------------------------ sampling: the figures and the invariants
def test_sample_statistics_on_known_text():
    x = torch.tensor([[0, 1, 0, 1], [2, 2, 2, 2]])
    # characters 0,1,2 with counts 2,2,4 of 8: H = 2 * (1/4 * 2) + 1/2 * 1 = 1.5 bits
    assert math.isclose(sampling.char_entropy(x), 1.5)
    # bigrams: (0,1),(1,0),(0,1) | (2,2) x3: 3 distinct of 6; trigrams (0,1,0),(1,0,1),(2,2,2): 3 of 4
    assert math.isclose(sampling.distinct_n(x, 2), 0.5) and math.isclose(sampling.distinct_n(x, 3), 0.75)
    texts = ['xx the king said, yy', 'zz foo bar ww']
    assert sampling.words_of(texts) == ['the', 'king', 'said', 'foo', 'bar']     # first and last words dropped
    assert math.isclose(sampling.word_share(texts, {'the', 'king', 'bar'}), 3 / 5)
    assert sampling.word_share(['one two'], {'one'}) is None


def test_judge_is_the_exact_chain_rule():
    "judge_bits = -sum_i log2 p(x_i | BOS, x_<i) / L, each term from a separate forward pass of the prefix alone."
    method = Autoregressive(7, bos_id=6)
    model = tiny(method, L=6)
    x = torch.randint(0, 6, (3, 6), generator=torch.Generator().manual_seed(0))
    got = sampling.judge_bits((model, method), x)
    want = torch.zeros(3, dtype=torch.float64)
    with torch.no_grad():
        for i in range(6):
            prefix = torch.cat([torch.full((3, 1), 6), x[:, :i]], 1)
            want -= model(prefix)[:, -1].log_softmax(-1).gather(-1, x[:, i:i + 1])[:, 0] / math.log(2)
    torch.testing.assert_close(got, want / 6)


def test_row_figures_from_a_scripted_sampler():
    "run_row's figures for a sampler, judge, tokenizer and clock whose every number is scripted: the answers by hand."
    clock, L = Clock(), 4

    def script():  # per call: tokens, network calls, tokens read, seconds; two runs at batch 2, then one at batch 1
        return [([[0, 1, 0, 1], [0, 0, 0, 0]], 3, 10, 0.5), ([[1, 1, 1, 1], [2, 3, 2, 3]], 5, 20, 0.25), ([[0, 1, 2, 3]], 4, 8, 2.0)]

    class Sampler:
        def __init__(self): self.calls = script()
        def sample(self, model, n, length, return_stats=False, threshold=None, **kw):
            x, nfe, read, secs = self.calls.pop(0)
            assert (n, length, return_stats, threshold) == (len(x), L, True, 0.5)
            clock.advance(secs)
            return torch.tensor(x), {'nfe': nfe, 'tokens': read}

    class Judge:                     # nats per token = the token id x ln 2: a row's bits/char is the mean of its ids
        def __init__(self, n_real): self.n_real = n_real
        def token_nll(self, model, x): return x.double() * math.log(2)

    class Words:                     # every token a word and a space
        def decode_batch(self, x): return [''.join(['to ', 'be ', 'or ', 'not '][i] for i in r) for r in x.tolist()]

    spec = sampling._row('masked', 'threshold 0.5', 'confidence', None, None, threshold=0.5)
    row = lambda n_real: sampling.run_row(spec, {'masked': {'model': None, 'method': Sampler()}}, (torch.nn.Linear(1, 1), Judge(n_real)),
                                          Words(), {'to', 'be'}, L, 4, 2, 1.0, 0, torch.device('cpu'), clock=clock.perf_counter)
    r = row(4)
    assert 'error' not in r and (r['label'], r['n_samples'], r['batch']) == ('masked, threshold 0.5', 4, 2)
    # calls: runs of 3 and 5 -> mean 4.0; tokens read (10 + 20) / 2 = 15
    assert (r['nfe_runs'], r['nfe'], r['nfe_batch1'], r['tokens_read']) == ([3, 5], 4.0, 4, 15.0)
    # speed: the faster batch run, 2 x 4 characters in 0.25 s = 32/s (not the mean 8 / 0.375 or the first 8 / 0.5);
    # batch 1: 4 characters in 2 s = 2/s
    assert (r['seconds_runs'], r['seconds_batch1'], r['chars_per_s'], r['chars_per_s_batch1']) == ([0.5, 0.25], 2.0, 32.0, 2.0)
    # judge: mean ids 0.5, 0, 1, 2.5 -> mean 1.0; deviations -.5, -1, 0, 1.5 -> squares 3.5, variance 3.5 / 3,
    # se = sqrt(7/6) / sqrt(4) = 0.54006...
    assert r['sample_bits'] == [0.5, 0.0, 1.0, 2.5] and math.isclose(r['ar_bits'], 1.0) and math.isclose(r['ar_bits_se'], 0.5400617248673217)
    # tokens 0, 1, 2, 3 occur 6, 6, 2, 2 times of 16: H = 2 (3/8) log2(8/3) + 2 (1/8) 3 = 3 - (3/4) log2 3 = 1.81128...
    assert math.isclose(r['entropy_bits'], 1.8112781244591327)
    # bigrams: 01 10 01 | 00 00 00 | 11 11 11 | 23 32 23: 6 distinct of 12; trigrams 010 101 | 000 x2 | 111 x2 | 232 323: 6 of 8
    assert (r['distinct_2'], r['distinct_3']) == (0.5, 0.75)
    # words without each text's first and last: be to | to to | be be | not or: 8 words, 6 of them in {'to', 'be'}
    assert r['texts'] == ['to be to be ', 'to to to to ', 'be be be be ', 'or not or not '] and r['samples'] == r['texts'][:2]
    assert (r['words'], r['word_share']) == (8, 0.75)
    # with 3 real tokens, id 3 is MASK: it occurs twice in the batch runs' samples (the batch-1 sample only times)
    assert row(3)['error'] == '2 MASK tokens left in the samples'


def test_network_calls_equal_the_step_count():
    "For every non-adaptive row of the grid, the method's own count (stats['nfe']) and a forward hook both equal its calls."
    L, n_real = 16, 9
    models = {'ar': Autoregressive(n_real, 0), 'masked': MaskedDiffusion(n_real), 'block': BlockDiffusion(n_real, 4),
              'sedd': SEDD(n_real, 'absorbing')}
    nets = {k: tiny(m, L, torch.float32, **({'cond_dim': 8} if k == 'sedd' else {})) for k, m in models.items()}
    grid = sampling.sampler_grid(L, [4, 8, 16], 4)
    assert {g['model'] for g in grid} == set(models) and sum(g['adaptive'] for g in grid) >= 6
    for spec in grid:
        calls = []
        h = nets[spec['model']].register_forward_pre_hook(lambda mod, a: calls.append(1))
        x, st = models[spec['model']].sample(nets[spec['model']], 2, L, steps=spec['steps'], sampler=spec['sampler'],
                                             generator=torch.Generator().manual_seed(0), return_stats=True, **spec['options'])
        h.remove()
        assert x.shape == (2, L) and int((x >= n_real).sum()) == 0, sampling.label(spec)
        assert st['nfe'] == len(calls), sampling.label(spec)
        if not spec['adaptive']: assert st['nfe'] == spec['calls'], sampling.label(spec)
        else: assert 1 <= st['nfe'] <= 4 * L


def test_row_key_reads_old_option_names():
    "A row of an earlier result, with masked diffusion's block_size (now block_length), keys as today's row: --resume reuses it."
    now = sampling._row('masked', 'confidence, blocks of 2', 'confidence', 4, 4, block_length=2)
    old = sampling._row('masked', 'confidence, blocks of 2', 'confidence', 4, 4, block_size=2)
    block = sampling._row('block', 'confidence', 'confidence', 4, 4, block_size=2)     # not renamed for other models
    assert sampling.row_key(old) == sampling.row_key(now) != sampling.row_key({**now, 'options': {'block_length': 4}})
    assert '"block_size": 2' in sampling.row_key(block)


def test_cached_greedy_decoding_is_exact():
    "AR with and without its KV cache, block diffusion with and without its exact cache: the same tokens at temperature 0."
    L = 12
    prompt = torch.randint(0, 9, (3, 4), generator=torch.Generator().manual_seed(1))     # one block of 4, a row each
    for method, steps in ((Autoregressive(9, 0), None), (BlockDiffusion(9, 4), 3), (BlockDiffusion(9, 4), 12)):
        model = tiny(method, L)
        with torch.no_grad():
            for p in model.parameters(): p.normal_(0, 0.5, generator=torch.Generator().manual_seed(p.numel()))
        a = method.sample(model, 3, L, steps=steps, temperature=0, prompt=prompt, cache=True)
        b = method.sample(model, 3, L, steps=steps, temperature=0, prompt=prompt, cache=False)
        assert torch.equal(a, b) and torch.equal(a[:, :4], prompt)
        assert len(set(a[:, 4:].flatten().tolist())) >= 3                       # varied tokens: the test can fail


def test_best_targets_and_defaults_from_rows():
    "The summaries read the rows as documented: collapse by entropy, best = lowest NLL within a budget, ratios to AR."
    ref = {'entropy_bits': 4.0}
    def row(model, calls, bits, ent, b1=100., b8=400., fam='f', **opt):
        return dict(model=model, family=fam, sampler='confidence' if model != 'ar' else 'ancestral', steps=calls, calls=calls,
                    options=opt, adaptive=False, nfe=calls, ar_bits=bits, entropy_bits=ent, label=f'{model}{calls}{fam}',
                    key=f'{model}{calls}{fam}', chars_per_s_batch1=b1, chars_per_s=b8)
    rows = [row('ar', 256, 2.0, 4.1, 100, 400, cache=True), row('masked', 32, 2.5, 4.2), row('masked', 32, 1.0, 3.0, fam='g'),
            row('masked', 256, 2.4, 4.0), row('block', 64, 2.05, 4.1, 250, 900), row('block', 256, 1.95, 4.0, 90, 300),
            row('sedd', 32, 1.5, 4.5)]
    sampling.mark_collapse(rows, ref)
    # entropy gaps to 4.0: .1, .2, -1.0, 0, .1, 0, +.5: beyond 0.3 on either side only masked32g and sedd32f
    assert [r['collapsed'] for r in rows] == [False, False, True, False, False, False, True]
    assert sampling.best_at(rows, 'masked', 32)['label'] == 'masked32f' and sampling.best_at(rows, 'masked', 16) is None
    t = sampling.targets(rows, [16, 32, 256], 256)
    assert t['no_collapse'] == {'holds': False, 'collapsed': ['masked32g', 'sedd32f'], 'errors': [], 'tolerance_bits': 0.3}
    assert t['few_calls']['methods']['sedd']['holds'] is None          # its only row collapsed
    assert math.isclose(t['few_calls']['methods']['masked']['gap_bits'], 0.1) and t['few_calls']['methods']['masked']['holds']
    assert t['few_calls']['methods']['block']['holds'] is None and t['few_calls']['holds'] is True
    sp = t['block_vs_ar_speed']
    assert sp['batch1']['block'] == 'block64f' and math.isclose(sp['batch1']['ratio'], 2.5) and sp['batch1']['holds']
    assert math.isclose(sp['batch']['ratio'], 900 / 400) and sp['holds'] is True
    d = sampling.defaults(rows, [16, 32, 256], 256, 1.0)
    assert set(d) == {'ar', 'masked', 'block'} and d['masked']['32']['label'] == 'masked32f' and '16' not in d['masked']
    assert d['block']['256']['label'] == 'block256f' and d['ar']['256']['sample_options'] == {'cache': True}
    # <= 128 calls, not collapsed: masked32f 2.5, block64f 2.05 (sedd32f's 1.5 collapsed): block64f, 2.05 - 1.5 = 0.55 <= 0.8
    lc = sampling.targets(rows, [16, 32, 256], 256, text_bits=1.5)['low_calls_near_text']
    assert (lc['best'], lc['holds']) == ('block64f', True) and math.isclose(lc['gap_bits'], 0.55)
    assert sampling.targets(rows, [16, 32, 256], 256, text_bits=1.2)['low_calls_near_text']['holds'] is False  # 0.85 > 0.8


def test_budget_verdict_and_gaps():
    "The verdict compares the gap's 95% interval with the tolerance; gaps are to the largest budget."
    v = sampling_budget.verdict
    assert [v(0.05, 0.04), v(0.05, 0.06), v(0.30, 0.05), v(0.22, 0.03)] == ['met', 'undecided', 'not met', 'not met']
    rows = [{'ar_bits': 5.9, 'ar_bits_se': 0.03}, {'ar_bits': 5.5, 'ar_bits_se': 0.04}]
    sampling_budget.add_gaps(rows)
    assert math.isclose(rows[0]['gap_bits'], 0.4) and math.isclose(rows[0]['gap_se'], 0.05) and rows[0]['verdict'] == 'not met'
    assert (rows[1]['gap_bits'], rows[1]['gap_se'], rows[1]['verdict']) == (0.0, 0.0, '—')


def test_pooled_budget_equals_the_whole_sample():
    "Pooling the summaries of two runs gives the mean and s.e. of all their samples together; other settings are refused."
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(12, generator=g, dtype=torch.float64) + 5, torch.randn(20, generator=g, dtype=torch.float64) + 5.3]
    summary = lambda x: {'n_samples': len(x), 'ar_bits': x.mean().item(), 'ar_bits_se': (x.std() / len(x) ** 0.5).item(),
                         'entropy_bits': 4.8, 'entropy_gap_bits': 0.0, 'chars_per_s_batch1': 100.0}
    r, whole = sampling_budget.pool_row([summary(x) for x in xs]), torch.cat(xs)
    assert r['n_samples'] == 32 and math.isclose(r['ar_bits'], whole.mean().item())
    assert math.isclose(r['ar_bits_se'], (whole.std() / 32 ** 0.5).item())
    res = lambda model, calls: {'model': model, 'sampler': 'random', 'length': 8, 'temperature': 1.0, 'run_id': model, 'seed': 0,
                                'calls': calls, 'rows': [{**summary(xs[0]), 'calls': c} for c in calls]}
    p = sampling_budget.pool([res('masked', [4, 8]), res('masked', [8])])
    assert p['calls'] == [8] and p['rows'][0]['n_samples'] == 24
    with pytest.raises(SystemExit, match='differ in model'): sampling_budget.pool([res('masked', [8]), res('block', [8])])


def test_sampling_budget_quick(tmp_path):
    runs, out = tmp_path / 'runs', tmp_path / 'out'
    run('sampling_budget.py', '--quick', '--out-dir', out, '--runs-dir', runs)
    res = result(out, 'sampling_budget')
    # the quick setting: context 16, budgets 16/4, 16/2, 16; 4 samples in one batch (the batch 8 capped at 4)
    assert (res['length'], res['calls'], res['n_samples'], res['batch']) == (16, [4, 8, 16], 4, 4)
    assert [r['calls'] for r in res['rows']] == [4, 8, 16]
    for r in res['rows']: assert r['nfe_runs'] == [r['calls']] and r['n_samples'] == 4    # the sampler's own count
    # the stored judge scores against the same judge applied here by the chain rule to the stored texts (those whose
    # tokens the text keeps); the gaps' arithmetic: test_budget_verdict_and_gaps
    kept = sampling.read_samples(out / res['samples_file'])
    assert set(kept) == {r['key'] for r in res['rows']}
    checked = 0
    for r in res['rows']:
        k = kept[r['key']]
        assert len(k['texts']) == len(k['sample_bits']) == 4 and all(len(t) <= 16 for t in k['texts'])
        for a, b in zip(k['sample_bits'], rescored(k['texts'], 16)):
            if b is not None: assert math.isclose(a, b, abs_tol=1e-4); checked += 1
    assert checked >= 3                                                   # of 12 (here 6 are whole)
    assert res['rows'][-1]['verdict'] == '—' and {r['verdict'] for r in res['rows'][:-1]} <= {'met', 'not met', 'undecided'}


def test_sampling_quick(tmp_path):
    runs, out = tmp_path / 'runs', tmp_path / 'out'
    run('sampling.py', '--quick', '--out-dir', out, '--runs-dir', runs)
    res = result(out, 'sampling')
    L, calls = res['length'], res['calls']
    # the quick setting: context 16, budgets 16/4, 16/2, 16, blocks of 4; 4 samples a row at batch 2 (2 runs)
    assert (L, calls, res['block_size'], res['n_samples'], res['batch']) == (16, [4, 8, 16], 4, 4, 2)
    assert res['quick'] and set(res['models']) == set(sampling.MODELS)
    assert all(math.isfinite(m['final']['bits']) and Path(m['out_dir']).is_dir() for m in res['models'].values())
    assert res['checks'] == {'ar_cache_equals_no_cache_greedy': True, 'block_cache_equals_no_cache_greedy': True}
    # the grid, counted by hand: AR 2; at each of the 3 budgets masked 4 samplers + order T + remask, SEDD 2, block 4
    # samplers (4, 8, 16 are all multiples of 16/4 blocks) = 12, so 36; masked in blocks of 2 (no cache, prefix, dual)
    # where the budget is a multiple of 16/2 = 8: 2 x 3 = 6; adaptive: masked 5, block 3, block without cache 1
    assert len(res['rows']) == 2 + 36 + 6 + 5 + 3 + 1 == 53
    for r in res['rows']:
        assert 'error' not in r, r
        assert len(r['nfe_runs']) == 2 and r['n_samples'] == 4
        if not r['adaptive']: assert r['nfe_runs'] == [r['calls']] * 2 and r['nfe_batch1'] == r['calls']   # the method's own count
        assert r['chars_per_s'] > 0 and r['chars_per_s_batch1'] > 0        # their arithmetic: test_row_figures_from_a_scripted_sampler
        assert 0 <= r['entropy_bits'] <= math.log2(4 * 16) and 0 < r['distinct_3'] <= 1
    t = res['targets']
    assert set(t) == {'no_collapse', 'few_calls', 'block_vs_ar_speed', 'low_calls_near_text'}   # their arithmetic: by hand above
    # what the run hands them: budgets 8 (the second) and 16 (the last), at most 16 / 2 calls, the judge's score of real text
    assert (t['few_calls']['low_calls'], t['few_calls']['high_calls'], t['low_calls_near_text']['max_calls']) == (8, 16, 8.0)
    assert t['low_calls_near_text']['text_bits'] == res['reference']['judge_bits']
    kept = sampling.read_samples(out / res['samples_file'])                          # every sample, with its score
    assert set(kept) == {r['key'] for r in res['rows']}
    texts = [t for r in res['rows'] for t in kept[r['key']]['texts']]
    assert len(texts) == 4 * 53 and all(len(t) <= L for t in texts)
    # the judge applied here by the chain rule to the stored texts (those of L characters: a shorter one lost an EOS or
    # other special token), against each stored score and, where all 4 texts are whole, the row's mean and entropy
    scores = rescored(texts, L)
    mine, whole = iter(scores), 0
    for r in res['rows']:
        k = kept[r['key']]
        m = [next(mine) for _ in k['texts']]
        assert len(k['sample_bits']) == 4, r['label']
        assert all(math.isclose(a, b, abs_tol=1e-4) for a, b in zip(k['sample_bits'], m) if b is not None), r['label']
        if None not in m:
            whole += 1
            assert math.isclose(r['ar_bits'], statistics.mean(m), abs_tol=1e-4), r['label']
            assert math.isclose(r['entropy_bits'], entropy_of_text(k['texts']), abs_tol=1e-9), r['label']  # of the characters
    assert sum(b is not None for b in scores) >= 53 and whole >= 5, whole   # here 158 of 212 texts and 20 rows whole
    assert (out / res['plot']).stat().st_size > 0
    d = json.loads((out / 'sampling_defaults.json').read_text())
    assert d['defaults'] == res['defaults'] and d['length'] == L
    for m, per in d['defaults'].items():
        for budget, v in per.items():
            assert v['calls'] <= int(budget) and v['sampler'] in ('ancestral', 'confidence', 'margin', 'entropy', 'random', 'analytic', 'euler')
    md = (out / f"sampling__{res['machine']['kind_slug']}.md").read_text()
    assert 'Best sampler per method and budget' in md and '**Targets**' in md
    # --resume: the finished models are reused (no training) and every row is taken from the last result
    t0 = time.time()
    r2 = run('sampling.py', '--quick', '--out-dir', out, '--runs-dir', runs, '--resume')
    assert f"resume: {len(res['rows'])} rows reused" in r2.stdout
    res2 = result(out, 'sampling')
    assert [r['key'] for r in res2['rows']] == [r['key'] for r in res['rows']] and res2['run_id'] != res['run_id']
    assert [r['ar_bits'] for r in res2['rows']] == [r['ar_bits'] for r in res['rows']]


def test_sampling_rejects_unknown_models(tmp_path):
    r = run('sampling.py', '--quick', '--models', 'gpt', '--out-dir', tmp_path, ok=False)
    assert r.returncode == 2 and 'unknown --models' in r.stderr


# ------------------------------------------------------------------ training throughput
RADD = 'sedd-absorbing-radd'


def test_throughput_figures_on_a_scripted_clock():
    "bench_size's figures for two variants whose steps take scripted wall and CPU seconds and memory: answers by hand."
    clock = Clock()
    per_rep = {'ar': [(1, 2), (2, 4), (4, 1)], RADD: [(.25, 4), (2, .5), (1, 2)]}     # (wall, CPU) s of each repetition
    memory = {'ar': (1000, 3000), RADD: (3000, 3000)}                                  # (step peak, static) bytes

    def variant(name, size, tok, data_path, device, seed=0):
        steps = [(w / 2, c / 2) for w, c in per_rep[name] for _ in range(2)]           # 2 steps a repetition, half each
        v = dict(model=name, opt=None, params={'ar': 100, RADD: 90}[name], losses=[])
        def step():
            clock.advance(*steps.pop(0)); v['losses'].append(float(len(v['losses']) + 1))
        v['step'] = step
        return v
    s = train_throughput.bench_size('toy', dict(batch_size=2, context_length=4), ['ar', RADD], torch.device('cpu'), None, None,
                                    reps=3, steps=2, warmup=0, build=variant, memory=lambda v, device: memory[v['model']],
                                    clocks=(clock.perf_counter, clock.process_time))
    assert s['tokens_per_rep'] == 2 * 2 * 4 == 16 and s['params'] == {'ar': 100, RADD: 90}
    assert s['seconds_per_rep'] == {'ar': [1, 2, 4], RADD: [.25, 2, 1]} and s['cpu_seconds_per_rep'] == {'ar': [2, 4, 1], RADD: [4, .5, 2]}
    # wall: AR 16/1, 16/2, 16/4 = 16, 8, 4 tokens/s (median 8); RADD 64, 8, 16 (median 16)
    assert s['tokens_per_s_per_rep'] == {'ar': [16, 8, 4], RADD: [64, 8, 16]} and s['median_tokens_per_s'] == {'ar': 8, RADD: 16}
    # ratio of medians 16 / 8 = 2; per repetition 64/16, 8/8, 16/4 = 4, 1, 4 -> paired 4
    assert s['vs_ar'][RADD] == {'ratio': 2.0, 'paired_ratio': 4.0}
    # CPU time: AR 8, 4, 16 tokens/CPU-s (median 8); RADD 4, 32, 8 (median 8): ratio 1; per repetition .5, 8, .5 -> .5
    assert s['tokens_per_cpu_s_per_rep'] == {'ar': [8, 4, 16], RADD: [4, 32, 8]} and s['vs_ar_cpu_time'][RADD] == {'ratio': 1.0, 'paired_ratio': 0.5}
    # memory: 1000 + 3000 = 4000 and 3000 + 3000 = 6000 bytes: 1.5x AR; losses: one per step, 3 x 2 steps
    assert s['memory'][RADD] == {'step_peak_bytes': 3000, 'static_bytes': 3000, 'peak_bytes': 6000} and s['memory']['ar']['peak_bytes'] == 4000
    assert s['memory_vs_ar'][RADD] == 1.5 and s['final_loss'] == {'ar': 6.0, RADD: 6.0}
    # the target reads the CPU-time paired ratio on the CPU (0.5: fails; the wall-clock one, 4, would pass)
    assert train_throughput.target([s]) == {'variant': RADD, 'at_least': 0.95, 'sizes': {'toy': {'paired_ratio': 0.5, 'holds': False}},
                                            'holds': False}


def test_throughput_target_by_hand():
    "At least 0.95 (0.95 itself passes), per size; the CPU-time ratio where there is one; sizes without the variant left out."
    size = lambda label, wall, cpu=None: {'label': label, 'params': {'ar': 1, RADD: 1}, 'vs_ar': {RADD: {'paired_ratio': wall}},
                                          **({'vs_ar_cpu_time': {RADD: {'paired_ratio': cpu}}} if cpu is not None else {})}
    cpu, gpu, other = size('cpu', 0.5, 0.95), size('gpu', 0.94), {'label': 'ar only', 'params': {'ar': 1}, 'vs_ar': {}}
    t = train_throughput.target([cpu, gpu, other])
    assert t['sizes'] == {'cpu': {'paired_ratio': 0.95, 'holds': True}, 'gpu': {'paired_ratio': 0.94, 'holds': False}} and t['holds'] is False
    assert train_throughput.target([cpu, size('gpu', 1.2)])['holds'] is True and train_throughput.target([other])['holds'] is None


def test_train_throughput_quick(tmp_path):
    "The real quick run: what it measured and how it is laid out (its arithmetic: the scripted clock above)."
    run('train_throughput.py', '--quick', '--out-dir', tmp_path)
    res = result(tmp_path, 'train_throughput')
    s, = res['sizes']
    # the quick size: 2 repetitions of 2 steps of batch 2 x context 16 = 64 training characters a repetition
    assert (s['label'], s['reps'], s['steps_per_rep'], s['tokens_per_rep']) == ('quick-1x32-L16-B2', 2, 2, 2 * 2 * 16)
    names = list(s['params'])
    assert names == list(train_throughput.VARIANTS)
    for n in names:
        assert len(s['seconds_per_rep'][n]) == len(s['cpu_seconds_per_rep'][n]) == 2 and min(s['seconds_per_rep'][n]) > 0
        assert set(s['vs_ar'][n]) == set(s['vs_ar_cpu_time'][n]) == {'ratio', 'paired_ratio'}
        m = s['memory'][n]
        # AdamW keeps 2 float32 moments per parameter: static memory >= 3 x 4 bytes per parameter
        assert m['step_peak_bytes'] > 0 and m['static_bytes'] >= 12 * s['params'][n] and math.isfinite(s['final_loss'][n])
    # without time conditioning SEDD has exactly masked diffusion's parameters; with it, more
    assert s['params'][RADD] == s['params']['masked'] < s['params']['sedd-absorbing']
    t = res['target']
    assert (t['variant'], t['at_least'], set(t['sizes'])) == (RADD, 0.95, {'quick-1x32-L16-B2'})
    assert t['sizes']['quick-1x32-L16-B2']['paired_ratio'] == s['vs_ar_cpu_time'][RADD]['paired_ratio']   # the CPU-time one


# ------------------------------------------------------------------ GPU
def test_gpu_without_cuda_fails_fast(tmp_path):
    if torch.cuda.is_available(): pytest.skip('this machine has CUDA')
    t0 = time.time()
    r = run('gpu.py', '--out-dir', tmp_path, ok=False)
    assert r.returncode == 2 and time.time() - t0 < 20 and not any(tmp_path.iterdir())
    assert r.stderr.count('\n') == 1 and 'no CUDA GPU here' in r.stderr and r.stdout == ''


def test_gpu_peak_table_and_flops():
    import gpu
    assert gpu.peak_bf16('NVIDIA H100 80GB HBM3')[0] == 989.4e12 and gpu.peak_bf16('NVIDIA H100 PCIe')[0] == 756e12
    assert gpu.peak_bf16('NVIDIA H200')[0] == 989.4e12 and gpu.peak_bf16('NVIDIA A100-SXM4-80GB')[0] == 312e12
    assert gpu.peak_bf16('NVIDIA L4')[0] == 121e12 and gpu.peak_bf16('NVIDIA L40S')[0] == 362e12
    assert gpu.peak_bf16('NVIDIA GeForce RTX 3090') == (None, None) and gpu.peak_bf16('NVIDIA A10G') == (None, None)
    d, nl, V, L = 64, 3, 70, 32
    cfg = lambda method, cond=0: method.model_config(n_layer=nl, n_head=4, n_embd=d, context_length=2 * L, cond_dim=cond)
    sedd = DiffusionTransformer(cfg(SEDD(V - 1, 'absorbing'), 16))
    # by hand: q, k, v, out 4 d^2 + MLP 8 d^2 a layer, and the 64 x 70 output layer: 3 x 12 x 4096 + 4480 = 151,936
    # weights; per token 6 x 151,936 + 12 x 3 layers x 64 x 32 positions = 911,616 + 73,728 = 985,344 FLOPs
    # (SEDD's time conditioning acts once a sequence and is not counted)
    assert gpu.train_flops_per_token(sedd, L, L)['matmul_params'] == 151_936 and gpu.train_flops_per_token(sedd, L, L)['total'] == 985_344
    # another method: torch's FLOP counter over one training step (loss forward + backward, math attention so that
    # the attention products are counted) of 2 sequences equals the formula's FLOPs/token x the tokens trained:
    # masked reads its L positions, block diffusion 2L (the clean copy beside the noisy one)
    from torch.utils.flop_counter import FlopCounterMode
    from torch.nn.attention import sdpa_kernel, SDPBackend
    for method, read in ((MaskedDiffusion(V - 1), L), (BlockDiffusion(V - 1, 4), 2 * L)):
        torch.manual_seed(0)
        model = DiffusionTransformer(cfg(method))
        counter = FlopCounterMode(display=False)
        with counter, sdpa_kernel(SDPBackend.MATH):
            loss = method.loss(model, torch.randint(0, V - 1, (2, L)))
            (loss[0] if isinstance(loss, tuple) else loss).backward()
        fl = gpu.train_flops_per_token(model, L, read)
        assert fl['matmul_params'] == 151_936 and fl['read_per_token'] == read / L
        assert counter.get_total_flops() == fl['total'] * 2 * L, type(method).__name__
    p = gpu.gpu_presets(['ar', 'masked', 'block', 'sedd'])
    assert set(p) == {'ar', 'masked', 'block', 'sedd'} and all(v[1]['method'] == m and not v[1].get('init_from') for m, v in p.items())


def test_gpu_cpu_smoke_mfu(tmp_path):
    "The --allow-cpu path: MFU = FLOPs/token x tokens/s / peak, from the run's own numbers."
    run('gpu.py', '--allow-cpu', '--peak-tflops', '1', '--methods', 'ar', 'block', '--out-dir', tmp_path)
    res = result(tmp_path, 'gpu')
    assert [r['method'] for r in res['runs']] == ['ar', 'block'] and res['peak_flops'] == 1e12
    for r in res['runs']:
        assert 'error' not in r, r
        # the CPU smoke run: 5 timed steps of the tiny shape, batch 2 x 16 = 5 x 2 x 16 = 160 tokens, 1 TFLOP/s
        assert (r['steps'], r['config']['batch_size'], r['length'], r['config']['n_layer'], r['config']['n_embd']) == (5, 2, 16, 1, 32)
        assert math.isclose(r['tokens_per_s'] * r['seconds'], 160)
        assert math.isclose(r['mfu'] * 1e12 * r['seconds'], r['flops_per_token']['total'] * 160)
    # AR reads its 16 positions, block diffusion 32 (the clean copy too); FLOPs/token: test_gpu_peak_table_and_flops
    assert [r['flops_per_token']['read_per_token'] for r in res['runs']] == [1.0, 2.0]


def test_llada_steps_on_a_small_shape():
    "The 8B LoRA / FSDP2 step code, run on the CPU at a small shape: it trains what the plan counts."
    import gpu
    from diffusion_lm.memory_plan import ModelShape, lora_params
    shape = ModelShape(64, 2, 4, 4, 128, 256)
    r = gpu.llada_8b_steps(torch.device('cpu'), context_length=16, lora_rank=4, shape=shape)
    assert r['context_length'] == 16
    for mode in ('lora', 'fsdp2'):
        assert 'error' not in r[mode], r[mode]
        assert r[mode]['predicted_bytes'] > 0 and math.isfinite(r[mode]['loss'])
    assert r['lora']['trainable'] == lora_params(shape, 4) and r['fsdp2']['trainable'] == shape.n_params


# ------------------------------------------------------------------ palindromes.py (reads the palindrome evaluation's JSON)
def test_palindromes_reads_and_rechecks(tmp_path):
    ev = tmp_path / 'eval.json'
    ev.write_text(json.dumps({'palindrome_rate': 0.5, 'model': {'steps': 32}, 'name': 'x',
                              'samples': ['racecar', 'abc', 'A man, a plan, a canal: Panama', '!!', 'Racecar']}))
    run('palindromes.py', '--quick', '--out-dir', tmp_path / 'out', '--from', ev)
    res = result(tmp_path / 'out', 'palindromes')
    f, = res['files']
    assert res['status'] == 'ok' and f['figures'] == {'palindrome_rate': 0.5, 'model.steps': 32}
    # non-empty: 4 ('!!' normalises to ''), palindromes: 3, distinct normal forms: 2
    assert f['recomputed'] == {'samples': {'samples': 5, 'non_empty': 4, 'palindromes': 3, 'rate_of_all': 0.6,
                                           'palindrome_rate': 0.75, 'distinct_palindromes': 2}}


def test_palindromes_reads_evaluate_model_rows(tmp_path):
    "diffusion_lm.palindromes.eval.save_results' schema: rows per length and run, samples keyed 'length/run'."
    ev = tmp_path / 'runs' / 'palindromes' / 'eval' / 'palindrome_eval.json'
    ev.parent.mkdir(parents=True)
    ev.write_text(json.dumps({'rows': [{'length': '8', 'run': 'constrained', 'n': 4, 'palindrome_rate': 0.75, 'novel': 1.0},
                                       {'length': 'reference', 'run': 'validation palindromes', 'n': 2, 'palindrome_rate': 1.0}],
                              'samples': {'8/constrained': ['abcddcba', 'Step on no pets', 'ab', 'a b a']},
                              'settings': {'steps': 32}}))
    run('palindromes.py', '--quick', '--out-dir', tmp_path / 'out', '--root', tmp_path)    # found by the search
    f, = result(tmp_path / 'out', 'palindromes')['files']
    assert f['rows'][0] == {'length': '8', 'run': 'constrained', 'n': 4, 'palindrome_rate': 0.75, 'novel': 1.0, 'recomputed_rate': 0.75}
    assert 'recomputed_rate' not in f['rows'][1] and f['settings'] == {'steps': 32}


def test_palindromes_pipeline_targets_and_trials(tmp_path):
    "A pipeline evaluation (a list of results, one per graph): targets checked on the pooled rows, samples rechecked."
    from diffusion_lm.palindromes.eval import evaluate_samples
    def res(graph, texts, repaired, **gaps):
        ev, rep = evaluate_samples(texts, ['step on no pets']), evaluate_samples(repaired, ['step on no pets'])
        row = dict(mode='exact', run='constrained', **ev, **{f'{k}_repaired': v for k, v in rep.items() if k != 'n'},
                   calls_per_sample=65.0, repair_calls_per_sample=10.0, unconstrained_palindrome_rate=0.0, **gaps)
        return dict(rows=[dict(row, length='8'), dict(row, length='all')], settings=dict(graph=graph, repair_rounds=4, lengths=['8']),
                    samples={'8/exact': texts, '8/exact/repaired': repaired, '8/unconstrained': ['abc']})
    good = ['was it a ti saw', 'no on', 'top spot', 'wow', 'a nun a']          # 4 of 5 all English; 'ti' fails
    ev = tmp_path / 'palindrome_eval.json'
    ev.write_text(json.dumps([res('absorbing', good, ['was i a i saw'] + good[1:], judge_gap=-0.3, judge_gap_repaired=0.25),
                              res('uniform', ['abcba', 'xyzzyx'], ['abcba', 'xy'], judge_gap=0.2, judge_gap_repaired=-0.75)]))
    (tmp_path / 'timings.tsv').write_text('pretrain_absorbing\t600\t2026-01-01T00:00:00\t1.00 1.00 1.00\nfinetune_absorbing\t300\t2026-01-01\n')
    trials = tmp_path / 'trials.jsonl'
    trials.write_text(json.dumps(dict(name='t1', graph='absorbing', model=dict(n_layer=4, n_embd=128, max_steps=10, lr=1e-3, dataset='d'),
                                      sampling=dict(steps=8, sampler='analytic', temperature=1.0, shapes='train'), finetune_seconds=1.0,
                                      loadavg=[1.0, 1.0], figures={'exact': res('a', good, good)['rows'][1]})) + '\n')
    run('palindromes.py', '--quick', '--out-dir', tmp_path / 'out', '--from', ev, '--trials', trials)
    out = result(tmp_path / 'out', 'palindromes')
    f, = out['files']
    t = {(x['graph'], x['target']): (x['value'], x['met']) for x in f['targets']}
    assert t[('absorbing', 'all words English >= 60% without repair')] == (0.8, True)
    assert t[('absorbing', 'all words English >= 90% with <= 4 repair rounds')] == (1.0, True)
    assert t[('uniform', 'all words English >= 60% without repair')] == (0.0, False)
    assert t[('uniform', 'constrained palindromes 100%')] == (1.0, True)
    judge = 'judge of English within 0.5 bits/char of real palindromes'       # the farther of before/after repair
    assert (t[('absorbing', judge)], t[('uniform', judge)]) == ((-0.3, True), (-0.75, False))
    assert f['recomputed']['uniform/8/exact/repaired']['rate_of_all'] == 0.5          # 'xy' is no palindrome
    import palindromes as pal
    ref = f['pipeline'][1]['samples']                                               # a reference, not the samples again
    assert ref == {'ref': str(ev.resolve()), 'index': 1, 'key': 'samples', 'keys': ['8/exact', '8/exact/repaired', '8/unconstrained']}
    assert pal.resolve(ref) == {'8/exact': ['abcba', 'xyzzyx'], '8/exact/repaired': ['abcba', 'xy'], '8/unconstrained': ['abc']}
    assert out['timings'][0] == {'step': 'pretrain_absorbing', 'seconds': 600, 'finished': '2026-01-01T00:00:00', 'loadavg': '1.00 1.00 1.00'}
    md = (tmp_path / 'out' / f"palindromes__{out['machine']['kind_slug']}.md").read_text()
    assert 'NOT all palindromes: uniform/8/exact/repaired' in md and '| t1 | absorbing |' in md and '15.0 min' in md
    assert '| uniform | exact | judge of English within 0.5 bits/char of real palindromes | -0.75 bits/char | **no** |' in md


def test_palindromes_missing_says_how(tmp_path):
    r = run('palindromes.py', '--quick', '--out-dir', tmp_path / 'out', '--root', tmp_path / 'empty')
    res = result(tmp_path / 'out', 'palindromes')
    assert res['status'] == 'missing' and res['files'] == [] and 'palindromes.py' in res['how_to'] and 'No palindrome' in r.stdout


# ------------------------------------------------------------------ RESULTS.md and run_all.sh
def test_collect_builds_topic_sections(tmp_path):
    def put(stem, md, res=None):
        (tmp_path / f'{stem}.md').write_text(md)
        if res is not None: (tmp_path / f'{stem}.json').write_text(json.dumps(res))
    put('sampling__cpu-2-cores', '*sampling* on a CPU\n\n### Sampling\n\n![s](sampling__cpu-2-cores.png)\n',
        {'benchmark': 'sampling', 'quick': False})
    (tmp_path / 'sampling__cpu-2-cores.png').write_bytes(b'png')
    put('quality__cpu-2-cores', '*quality* on a CPU\n\n### Quality\n\n| a |\n|---|\n| 1 |\n',
        {'benchmark': 'quality', 'quick': False, 'plot': 'q.png'})
    (tmp_path / 'q.png').write_bytes(b'png')
    put('ablations__cpu-2-cores', '### Ablations (markdown only)\n')
    put('train_throughput__cpu-2-cores', '*train_throughput* quick\n\n### T\n', {'benchmark': 'train_throughput', 'quick': True})
    text = collect.build(tmp_path, {'CPU, 2 cores': 'cores were shared'})
    order = ['cores were shared', '## Quality and ablations', '### Ablations (markdown only)', '### Quality', '## Sampling',
             '![s](results/sampling__cpu-2-cores.png)', '## GPU', 'No GPU run yet']
    assert [text.index(s) for s in order] == sorted(text.index(s) for s in order)
    assert '![q.png](results/q.png)' in text and '<sub>*quality* on a CPU</sub>' in text
    assert '## Training throughput' not in text and '### T' not in text                # a quick result is left out


def test_run_all_quick(tmp_path):
    sh = str(BENCH / 'run_all.sh')
    r = subprocess.run([sh, '--sometimes'], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert r.returncode == 2 and 'usage' in r.stderr
    r = subprocess.run([sh, '--quick', '--out-dir', str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env={**ENV, 'BENCH_ONLY': 'train_throughput gpu nosuch', 'PYTHON': sys.executable})
    assert r.returncode == 1 and 'FAILED: nosuch' in r.stderr, r.stdout[-2000:] + r.stderr[-2000:]
    if not torch.cuda.is_available(): assert 'gpu.py skipped: no CUDA GPU' in r.stdout
    assert len(list(tmp_path.glob('train_throughput__*.json'))) == 1


def test_ablation_rows_and_figure_from_hand_records(tmp_path):
    "Two ARs and one masked run over 3 windows, 2 draws each: the best AR, the ratio and the paired gap by hand."
    import ablations
    def rec(name, grp, draws, bits):
        return {'name': name, 'seed': 0, 'group': grp, 'draw_bits': draws, 'final': {'bits': bits, 'se': 0.1},
                'tokens_per_s_median': None, 'params': 1_000_000}
    recs = {('ar-torch', 0): rec('ar-torch', 'ar', [[2., 2., 2.], [2., 2., 2.]], 2.0),
            ('ar-gates', 0): rec('ar-gates', 'ar', [[1., 2., 3.], [1., 2., 3.]], 1.5),
            ('masked-torch', 0): rec('masked-torch', 'masked', [[2., 3., 4.], [4., 3., 6.]], 3.0)}
    rows = {r['variant']: r for r in ablations.table_rows(recs)}
    # masked per-window means 3, 3, 5 minus ar-gates 1, 2, 3 (the lower final bits): gaps 2, 1, 2 -> 5/3,
    # s.e. = sqrt(((1/3)^2 * 2 + (2/3)^2) / 2 / 3) = sqrt(1/9) = 1/3
    assert rows['masked-torch']['reference'] == ['ar-gates']
    assert math.isclose(rows['masked-torch']['ratio'][0], 2.0)              # 3.0 / 1.5
    assert math.isclose(rows['masked-torch']['gap'][0], 5 / 3) and math.isclose(rows['masked-torch']['gap'][1], 1 / 3)
    png = ablations.plot(recs, list(rows.values()), tmp_path / 'ablations.png')
    assert png.exists() and png.read_bytes()[:4] == b'\x89PNG'


def test_constraints_quick(tmp_path):
    "bench/constraints.py --quick: every constrained sample valid, the same network calls with and without a constraint."
    run('constraints.py', '--quick', '--out-dir', tmp_path)
    res = result(tmp_path, 'constraints')
    pal = [r for r in res['rows'] if r['model'] == 'palindrome-sedd']
    assert [r['variant'] for r in pal] == ['frame only', 'palindrome', 'palindrome + words']
    assert len({r['calls_per_sample'] for r in pal}) == 1 and pal[0]['ratio_to_unconstrained'] == 1.0
    assert pal[1]['palindromes'] == pal[2]['palindromes'] == 1.0 and pal[2]['all_words_strict'] == 1.0
    reg = [r for r in res['rows'] if r['model'] == 'shakespeare-block']
    assert [r['variant'] for r in reg] == ['unconstrained', 'play-format regex'] and reg[1]['accepted'] == 1.0
    assert reg[0]['calls_per_sample'] == reg[1]['calls_per_sample']
    for rows in (pal, reg):                 # every timed run is kept: the reported figures are recomputed from them
        for r in rows:
            assert len(r['timed_seconds']) == 1 and r['timed_seconds'][0] > 0
            assert r['seconds_per_sample'] == statistics.median(r['timed_seconds']) / r['n']
            assert r['ratio_to_unconstrained'] == statistics.median(a / b for a, b in zip(r['timed_seconds'], rows[0]['timed_seconds']))
    # the step clock: one network call and one constraint draw per sampler step, both timed
    assert all(r['timed_calls'] == r['timed_draws'] == r['calls_per_sample'] for r in pal + reg)
    assert all(r['network_ms_per_step'] > 0 and r['check_ms_per_step'] > 0 and 0 < r['check_share'] < 1 for r in pal + reg)


def test_step_clock_keeps_the_draws_signatures():
    "Under bench/constraints.py's step clock a draw keeps its signature, so the samplers still pass it `free`."
    import inspect, constraints
    from diffusion_lm.regular import RegularConstraint
    from diffusion_lm.samplers import draw_tokens
    seen = []
    class Spy(RegularConstraint):
        def sample(self, probs, generator=None, free=None):
            seen.append(free)
            return super().sample(probs, generator, free)
    spy = Spy(constraints.from_regex('[ab]*', ['a', 'b', None]))
    free = torch.tensor([[False, True]])
    with constraints.step_clock(torch.nn.Linear(1, 1), 'cpu', [Spy]) as clock:
        assert 'free' in inspect.signature(Spy.sample).parameters
        draw_tokens(torch.zeros(1, 2, 3).log_softmax(-1), constraint=spy, free=free)
    assert clock['draws'] == 1 and len(seen) == 1 and torch.equal(seen[0], free)


def test_released_steps_on_small_shapes():
    "The sedd-medium / mdlm-owt step code (make gpu-check), run on the CPU at small shapes of the same layouts."
    import gpu
    from dataclasses import replace
    from diffusion_lm.released import released_model_config
    from diffusion_lm.model_size import count_params, memory_estimate
    small = {n: (replace(c, n_embd=32, n_layer=1, n_head=2), m) for n in gpu.RELEASED_CHECK for c, m in [released_model_config(n)]}
    r = gpu.released_steps(torch.device('cpu'), batch_size=2, context_length=16, configs=small)
    assert list(r['models']) == ['sedd-medium', 'mdlm-owt'] and (r['batch_size'], r['context_length']) == (2, 16)
    for n, (cfg, method) in small.items():
        v = r['models'][n]
        assert 'error' not in v, v
        assert v['method'] == {'sedd-medium': 'sedd', 'mdlm-owt': 'masked'}[n] and v['params'] == count_params(cfg)
        assert v['predicted_bytes'] == memory_estimate(cfg, 2, 16, 'fp32', ema=True).total and math.isfinite(v['loss'])
