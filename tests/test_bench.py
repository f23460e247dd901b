"""The benchmarks in bench/: the --quick paths of sampling.py, train_throughput.py, gpu.py and run_all.sh, the JSON
they promise, every derived figure recomputed from the raw numbers of the same run, and the invariants that hold
for any weights (network calls equal the step count for the non-adaptive samplers; cached and uncached greedy
decoding agree). No wall time is asserted."""
import json, math, os, statistics, subprocess, sys, time
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


def tiny(method, L=12, dtype=torch.float64, **kw):
    "A small random model for `method` (GPT-2 init: the output layer is not zero, so the logits are not all tied)."
    torch.manual_seed(0)
    cfg = method.model_config(n_layer=2, n_head=2, n_embd=16, context_length=2 * L, init='gpt2', **kw)
    return DiffusionTransformer(cfg).to(dtype).eval()


# ------------------------------------------------------------------ benchlib
def test_summarise_bits_formulas():
    bits = torch.tensor([[1., 2., 3., 4.], [3., 2., 1., 4.]], dtype=torch.float64)   # [draws, windows]
    ref = torch.tensor([1., 1., 1., 1.], dtype=torch.float64)
    s = bl.summarise_bits(bits, ref)
    per = bits.mean(0)                                                     # 2, 2, 2, 4
    assert math.isclose(s['bits'], 2.5) and math.isclose(s['se'], per.std().item() / 2)
    assert math.isclose(s['mc_se'], math.sqrt(bits.var(0).sum().item() / 2) / 4)
    assert math.isclose(s['gap_bits'], 1.5) and math.isclose(s['gap_se'], (per - ref).std().item() / 2)
    assert bl.summarise_bits(bits[:1], exact=True)['mc_se'] == 0.0 and bl.summarise_bits(bits[:1])['mc_se'] is None


def test_paired_ratios():
    r = bl.paired_ratios([2., 4., 9.], [1., 4., 3.])
    assert r == {'ratio': 4 / 3, 'paired_ratio': 2.0}


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
            row('masked', 256, 2.4, 4.0), row('block', 64, 2.05, 4.1, 250, 900), row('block', 256, 1.95, 4.0, 90, 300)]
    sampling.mark_collapse(rows, ref)
    assert [r['collapsed'] for r in rows] == [False, False, True, False, False, False]
    assert sampling.best_at(rows, 'masked', 32)['label'] == 'masked32f' and sampling.best_at(rows, 'masked', 16) is None
    t = sampling.targets(rows, [16, 32, 256], 256)
    assert t['no_collapse'] == {'holds': False, 'collapsed': ['masked32g'], 'errors': [], 'tolerance_bits': 0.3}
    assert math.isclose(t['few_calls']['methods']['masked']['gap_bits'], 0.1) and t['few_calls']['methods']['masked']['holds']
    assert t['few_calls']['methods']['block']['holds'] is None and t['few_calls']['holds'] is True
    sp = t['block_vs_ar_speed']
    assert sp['batch1']['block'] == 'block64f' and math.isclose(sp['batch1']['ratio'], 2.5) and sp['batch1']['holds']
    assert math.isclose(sp['batch']['ratio'], 900 / 400) and sp['holds'] is True
    d = sampling.defaults(rows, [16, 32, 256], 256, 1.0)
    assert set(d) == {'ar', 'masked', 'block'} and d['masked']['32']['label'] == 'masked32f' and '16' not in d['masked']
    assert d['block']['256']['label'] == 'block256f' and d['ar']['256']['sample_options'] == {'cache': True}
    lc = sampling.targets(rows, [16, 32, 256], 256, text_bits=1.5)['low_calls_near_text']   # <= 128 calls: block64f
    assert (lc['best'], lc['holds']) == ('block64f', True) and math.isclose(lc['gap_bits'], 0.55)
    assert sampling.targets(rows, [16, 32, 256], 256, text_bits=1.2)['low_calls_near_text']['holds'] is False


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
    L = res['length']
    assert res['calls'] == [L // 4, L // 2, L] and [r['calls'] for r in res['rows']] == res['calls']
    for r in res['rows']:
        assert r['nfe_runs'] == [r['calls']] * (res['n_samples'] // res['batch']) and r['n_samples'] == res['n_samples']
        assert math.isclose(r['gap_bits'], r['ar_bits'] - res['rows'][-1]['ar_bits'])
    assert res['rows'][-1]['verdict'] == '—' and {r['verdict'] for r in res['rows'][:-1]} <= {'met', 'not met', 'undecided'}


def test_sampling_quick(tmp_path):
    runs, out = tmp_path / 'runs', tmp_path / 'out'
    run('sampling.py', '--quick', '--out-dir', out, '--runs-dir', runs)
    res = result(out, 'sampling')
    L, calls = res['length'], res['calls']
    assert res['quick'] and set(res['models']) == set(sampling.MODELS)
    assert all(math.isfinite(m['final']['bits']) and Path(m['out_dir']).is_dir() for m in res['models'].values())
    assert res['checks'] == {'ar_cache_equals_no_cache_greedy': True, 'block_cache_equals_no_cache_greedy': True}
    assert len(res['rows']) == len(sampling.sampler_grid(L, calls, res['block_size']))
    for r in res['rows']:
        assert 'error' not in r, r
        assert len(r['nfe_runs']) == res['n_samples'] // res['batch'] and r['n_samples'] == res['n_samples']
        if not r['adaptive']: assert r['nfe_runs'] == [r['calls']] * len(r['nfe_runs']) and r['nfe_batch1'] == r['calls']
        assert math.isclose(r['chars_per_s'], res['batch'] * L / min(r['seconds_runs']))
        assert math.isclose(r['chars_per_s_batch1'], L / r['seconds_batch1'])
        assert 0 <= r['entropy_bits'] <= math.log2(res['n_samples'] * L) and 0 < r['distinct_3'] <= 1
        assert math.isclose(r['entropy_gap_bits'], r['entropy_bits'] - res['reference']['entropy_bits'])
        assert r['collapsed'] == (abs(r['entropy_gap_bits']) > sampling.COLLAPSE_BITS)
    assert set(res['targets']) == {'no_collapse', 'few_calls', 'block_vs_ar_speed', 'low_calls_near_text'}
    assert res['targets'] == sampling.targets(res['rows'], calls, L, res['reference']['judge_bits'])   # from the rows
    kept = sampling.read_samples(out / res['samples_file'])                          # every sample, with its score
    assert set(kept) == {r['key'] for r in res['rows']}
    for r in res['rows']:
        k = kept[r['key']]
        assert len(k['texts']) == len(k['sample_bits']) == res['n_samples'] and all(len(t) <= L for t in k['texts'])
        assert math.isclose(sum(k['sample_bits']) / len(k['sample_bits']), r['ar_bits'], abs_tol=1e-4)
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
def test_train_throughput_quick(tmp_path):
    run('train_throughput.py', '--quick', '--out-dir', tmp_path)
    res = result(tmp_path, 'train_throughput')
    assert res['sizes']
    for s in res['sizes']:
        names = list(s['params'])
        assert names == list(train_throughput.VARIANTS)
        for n in names:
            secs, tps = s['seconds_per_rep'][n], s['tokens_per_s_per_rep'][n]
            assert len(secs) == s['reps'] and all(math.isclose(t, s['tokens_per_rep'] / x) for t, x in zip(tps, secs))
            assert math.isclose(s['median_tokens_per_s'][n], statistics.median(tps))
            assert s['vs_ar'][n] == bl.paired_ratios(tps, s['tokens_per_s_per_rep']['ar'])      # this run's own AR numbers
            cps = s['tokens_per_cpu_s_per_rep'][n]
            assert s['vs_ar_cpu_time'][n] == bl.paired_ratios(cps, s['tokens_per_cpu_s_per_rep']['ar'])
            m = s['memory'][n]
            assert m['peak_bytes'] == m['static_bytes'] + m['step_peak_bytes'] and m['step_peak_bytes'] > 0
            assert math.isclose(s['memory_vs_ar'][n], m['peak_bytes'] / s['memory']['ar']['peak_bytes'])
            # AdamW keeps 2 float32 moments per parameter: static memory >= 3 x 4 bytes per parameter
            assert m['static_bytes'] >= 12 * s['params'][n] and math.isfinite(s['final_loss'][n])
        assert s['vs_ar']['ar'] == {'ratio': 1.0, 'paired_ratio': 1.0}
        # without time conditioning SEDD has exactly masked diffusion's parameters; with it, more
        assert s['params']['sedd-absorbing-radd'] == s['params']['masked'] < s['params']['sedd-absorbing']
    t = res['target']
    r = res['sizes'][0]['vs_ar_cpu_time']['sedd-absorbing-radd']['paired_ratio']
    assert t['sizes'][res['sizes'][0]['label']] == {'paired_ratio': r, 'holds': r >= 0.95} and t['holds'] == (r >= 0.95)


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
    for method in (MaskedDiffusion(V - 1), SEDD(V - 1, 'absorbing')):
        model = DiffusionTransformer(method.model_config(n_layer=nl, n_head=4, n_embd=d, context_length=2 * L, cond_dim=16))
        n = nl * 12 * d * d + d * model.cfg.vocab_size                       # q, k, v, out: 4 d^2; MLP: 8 d^2; the output layer
        fl = gpu.train_flops_per_token(model, L, L)
        assert fl['matmul_params'] == n and fl['total'] == 6 * n + 12 * nl * d * L
        assert gpu.train_flops_per_token(model, L, 2 * L)['total'] == 2 * (6 * n + 12 * nl * d * 2 * L)   # block: 2L read
    p = gpu.gpu_presets(['ar', 'masked', 'block', 'sedd'])
    assert set(p) == {'ar', 'masked', 'block', 'sedd'} and all(v[1]['method'] == m and not v[1].get('init_from') for m, v in p.items())


def test_gpu_cpu_smoke_mfu(tmp_path):
    "The --allow-cpu path: MFU = FLOPs/token x tokens/s / peak, from the run's own numbers."
    run('gpu.py', '--allow-cpu', '--peak-tflops', '1', '--methods', 'ar', 'block', '--out-dir', tmp_path)
    res = result(tmp_path, 'gpu')
    assert [r['method'] for r in res['runs']] == ['ar', 'block'] and res['peak_flops'] == 1e12
    for r in res['runs']:
        assert 'error' not in r, r
        tokens = r['steps'] * r['config']['batch_size'] * r['length']
        assert math.isclose(r['tokens_per_s'], tokens / r['seconds'])
        assert math.isclose(r['mfu'], r['flops_per_token']['total'] * r['tokens_per_s'] / 1e12)
    assert res['runs'][1]['flops_per_token']['read_per_token'] == 2.0 and res['runs'][0]['flops_per_token']['read_per_token'] == 1.0


def test_llada_steps_on_a_small_shape():
    "The 8B LoRA / FSDP2 step code, run on the CPU at a small shape: it trains what the plan counts."
    import gpu
    from diffusion_lm.memory_plan import ModelShape, lora_params
    shape = ModelShape(64, 2, 4, 4, 128, 256)
    r = gpu.llada_8b_steps(torch.device('cpu'), seq_len=16, lora_rank=4, shape=shape)
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
    "diffusion_lm.palindromes.save_results' schema: rows per length and run, samples keyed 'length/run'."
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
    from diffusion_lm.palindrome_eval import evaluate_samples
    def res(graph, texts, repaired):
        ev, rep = evaluate_samples(texts, ['step on no pets']), evaluate_samples(repaired, ['step on no pets'])
        row = dict(mode='exact', run='constrained', **ev, **{f'{k}_repaired': v for k, v in rep.items() if k != 'n'},
                   calls_per_sample=65.0, repair_calls_per_sample=10.0, unconstrained_palindrome_rate=0.0)
        return dict(rows=[dict(row, length='8'), dict(row, length='all')], settings=dict(graph=graph, repair_rounds=4, lengths=['8']),
                    samples={'8/exact': texts, '8/exact/repaired': repaired, '8/unconstrained': ['abc']})
    good = ['was it a ti saw', 'no on', 'top spot', 'wow', 'a nun a']          # 4 of 5 all English; 'ti' fails
    ev = tmp_path / 'palindrome_eval.json'
    ev.write_text(json.dumps([res('absorbing', good, ['was i a i saw'] + good[1:]), res('uniform', ['abcba', 'xyzzyx'], ['abcba', 'xy'])]))
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
    assert f['recomputed']['uniform/8/exact/repaired']['rate_of_all'] == 0.5          # 'xy' is no palindrome
    assert out['timings'][0] == {'step': 'pretrain_absorbing', 'seconds': 600, 'finished': '2026-01-01T00:00:00', 'loadavg': '1.00 1.00 1.00'}
    md = (tmp_path / 'out' / f"palindromes__{out['machine']['kind_slug']}.md").read_text()
    assert 'NOT all palindromes: uniform/8/exact/repaired' in md and '| t1 | absorbing |' in md and '15.0 min' in md


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
