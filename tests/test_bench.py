"""The benchmarks in bench/: each script in --quick mode (tiny sizes, seconds) writes the JSON schema it promises,
and every derived figure (ratios, gaps, rates, MFU) is recomputed here from the raw numbers of the same run.
The autoregressive baseline is checked against an exact computation. No wall time is asserted."""
import json, math, os, statistics, subprocess, sys
from pathlib import Path
import pytest, torch

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / 'bench'
sys.path.insert(0, str(BENCH))
import benchlib as bl  # noqa: E402

ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}


def run(script, *args, ok=True):
    r = subprocess.run([sys.executable, str(BENCH / script), *map(str, args)], cwd=ROOT, env=ENV, capture_output=True,
                       text=True, timeout=600)
    if ok: assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def result(d: Path, name: str) -> dict:
    files = list(Path(d).glob(f'{name}__*.json'))
    assert len(files) == 1, files
    res = json.loads(files[0].read_text())
    assert files[0].with_suffix('.md').read_text().startswith(f'*{name}*')
    for k in ('cpu', 'logical_cpus', 'torch_threads', 'torch', 'gpu', 'date', 'kind', 'loadavg_start', 'loadavg_end'):
        assert k in res['machine'], k
    assert res['benchmark'] == name and res['quick'] and len(res['run_id']) == 32
    return res


# ------------------------------------------------------------------ the AR baseline, exactly
def tiny_ar(V=7, L=6):
    method = bl.Autoregressive(V, bos_id=V - 1)
    torch.manual_seed(0)
    model = bl.DiffusionTransformer(method.model_config(n_layer=2, n_head=2, n_embd=16, block_size=L)).eval()
    return method, model


def test_ar_nll_is_the_exact_chain_rule():
    "nll_bound = sum_i -log p(x_i | BOS, x_<i), each term from a separate forward pass of the prefix alone."
    method, model = tiny_ar()
    x = torch.randint(0, 6, (3, 6))
    with torch.no_grad():
        got = method.nll_bound(model, x)
        want = torch.zeros(3)
        for i in range(6):
            prefix = torch.cat([torch.full((3, 1), method.bos_id), x[:, :i]], 1)
            logp = model(prefix)[:, -1].log_softmax(-1)
            want -= logp.gather(-1, x[:, i:i + 1])[:, 0]
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(method.loss(model, x), want.sum() / x.numel(), atol=1e-6, rtol=1e-6)
    assert model.cfg.causal and model.cfg.cond_dim == 0


def test_ar_sampler_calls_once_per_token_and_follows_the_model():
    method, model = tiny_ar()
    class Certain(torch.nn.Module):                                       # a model certain of token 3
        def __init__(self, m): super().__init__(); self.m = m
        def forward(self, idx): return torch.nn.functional.one_hot(torch.full_like(idx, 3), 7).float() * 50
    calls = []
    certain = Certain(model)
    certain.register_forward_pre_hook(lambda mod, a: calls.append(a[0].shape[1]))
    x = method.sample(certain, 2, 6, device='cpu', generator=torch.Generator().manual_seed(0))
    assert x.tolist() == [[3] * 6] * 2 and calls == [1, 2, 3, 4, 5, 6]     # 6 calls on growing prefixes
    y = method.sample(model, 2, 6, generator=torch.Generator().manual_seed(1))
    assert y.shape == (2, 6) and y.max() < 7


def test_summarise_bits_formulas():
    bits = torch.tensor([[1., 2., 3., 4.], [3., 2., 1., 4.]], dtype=torch.float64)   # [draws, windows]
    ref = torch.tensor([1., 1., 1., 1.], dtype=torch.float64)
    s = bl.summarise_bits(bits, ref)
    per = bits.mean(0)                                                     # 2, 2, 2, 4
    assert math.isclose(s['bits'], 2.5) and math.isclose(s['se'], per.std().item() / 2)
    assert math.isclose(s['mc_se'], math.sqrt(bits.var(0).sum().item() / 2) / 4)
    assert math.isclose(s['gap_bits'], 1.5) and math.isclose(s['gap_se'], (per - ref).std().item() / 2)
    assert bl.summarise_bits(bits[:1], exact=True)['mc_se'] == 0.0 and bl.summarise_bits(bits[:1])['mc_se'] is None


# ------------------------------------------------------------------ the scripts, quick mode
def test_train_throughput_quick(tmp_path):
    run('train_throughput.py', '--quick', '--threads', '1', '--out-dir', tmp_path)
    res = result(tmp_path, 'train_throughput')
    assert res['sizes']
    for s in res['sizes']:
        assert set(s['median_tokens_per_s']) == set(bl.METHODS)
        for n in bl.METHODS:
            secs, tps = s['seconds_per_rep'][n], s['tokens_per_s_per_rep'][n]
            assert len(secs) == s['reps'] and all(math.isclose(t, s['tokens_per_rep'] / x) for t, x in zip(tps, secs))
            assert math.isclose(s['median_tokens_per_s'][n], statistics.median(tps))
            # the ratios come from this run's own AR numbers
            assert math.isclose(s['ratio_vs_ar'][n], statistics.median(tps) / statistics.median(s['tokens_per_s_per_rep']['ar']))
            paired = statistics.median(a / b for a, b in zip(tps, s['tokens_per_s_per_rep']['ar']))
            assert math.isclose(s['paired_ratio_vs_ar'][n], paired)
            m = s['memory'][n]
            assert m['peak_bytes'] == m['static_bytes'] + m['step_peak_bytes'] and m['step_peak_bytes'] > 0
            assert math.isclose(s['memory_ratio_vs_ar'][n], m['peak_bytes'] / s['memory']['ar']['peak_bytes'])
            assert math.isfinite(s['final_loss'][n])
        assert s['ratio_vs_ar']['ar'] == 1.0
        # AdamW keeps 2 float32 moments per parameter: static memory >= 3 x 4 bytes per parameter
        assert all(s['memory'][n]['static_bytes'] >= 12 * s['params'][n] for n in bl.METHODS)


def test_quality_quick(tmp_path):
    runs = tmp_path / 'runs'
    run('quality.py', '--quick', '--threads', '1', '--out-dir', tmp_path, '--runs-dir', runs)
    res = result(tmp_path, 'quality')
    c = res['config']
    assert list(res['methods']) == list(bl.METHODS)
    ar = res['methods']['ar']['final']
    for n, r in res['methods'].items():
        assert r['tokens'] == res['train_tokens'] == c['max_steps'] * c['batch_size'] * c['sequence_length']
        h = r['history']
        assert [x['tokens'] for x in h] == [x['step'] * c['batch_size'] * c['sequence_length'] for x in h]
        assert h[-1]['step'] == c['max_steps'] and all(math.isfinite(x['val_bits']) for x in h)
        f = r['final']
        assert f['windows'] == ar['windows'] and f['se'] > 0
        if n != 'ar':   # the paired gap over the same windows is the difference of the means
            assert f['draws'] == res['draws'] and math.isclose(f['gap_bits'], f['bits'] - ar['bits'], abs_tol=1e-9)
    assert ar['mc_se'] == 0.0 and (tmp_path / res['plot']).stat().st_size > 0
    # the saved AR checkpoint reproduces its exact validation figure
    data_path, tok = bl.shakespeare()
    model, method, info = bl.load_model(runs / 'ar', tok)
    bits = bl.per_sequence_bits(model, method, bl.open_split(data_path, 'val'), c['sequence_length'], 256, torch.device('cpu'),
                                max_windows=ar['windows'])
    assert math.isclose(bits.mean().item(), ar['bits'], rel_tol=1e-5)


def test_sampling_quick(tmp_path):
    runs = tmp_path / 'runs'
    run('sampling.py', '--quick', '--threads', '1', '--out-dir', tmp_path, '--runs-dir', runs)
    res = result(tmp_path, 'sampling')
    L = res['length']
    assert all(m['trained_now'] and math.isfinite(m['val_bits']) for m in res['models'].values())
    seen = set()
    for r in res['rows']:
        seen.add((r['method'], r['sampler']))
        assert r['chars'] == res['n_samples'] * L and math.isclose(r['chars_per_s'], r['chars'] / r['seconds'])
        assert math.isfinite(r['ar_bits']) and 0 <= r['unigram_entropy_bits'] <= math.log2(L * res['n_samples'])
        if r['method'] == 'ar' or r['sampler'] == 'random': assert r['nfe'] == L
        elif r['method'] == 'masked' and r['sampler'] == 'low_confidence': assert r['nfe'] == r['steps']
        elif r['method'] == 'masked': assert 1 <= r['nfe'] <= L            # threshold: at least one token per call
        else: assert r['nfe'] == r['steps'] + 1                          # SEDD: steps + the final denoising call
    assert {('masked', 'threshold'), ('sedd-absorbing', 'euler'), ('sedd-absorbing', 'analytic'), ('sedd-uniform', 'euler'),
            ('sedd-uniform', 'analytic'), ('masked', 'low_confidence'), ('ar', 'ancestral')} <= seen
    # a second run reuses the saved models: same AR model, same reference figure
    out2 = tmp_path / 'again'
    run('sampling.py', '--quick', '--threads', '1', '--out-dir', out2, '--runs-dir', runs)
    res2 = result(out2, 'sampling')
    assert not any(m['trained_now'] for m in res2['models'].values())
    assert math.isclose(res2['reference']['val_ar_bits'], res['reference']['val_ar_bits'], rel_tol=1e-6)


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


def test_gpu_without_cuda_writes_nothing(tmp_path):
    if torch.cuda.is_available(): pytest.skip('this machine has CUDA')
    r = run('gpu.py', '--out-dir', tmp_path)
    assert 'no CUDA' in r.stdout and not any(tmp_path.iterdir())


def test_gpu_flops_and_mfu(tmp_path):
    import gpu
    assert gpu.peak_bf16('NVIDIA H100 80GB HBM3')[0] == 989.4e12 and gpu.peak_bf16('NVIDIA H100 PCIe')[0] == 756e12
    assert gpu.peak_bf16('NVIDIA H200')[0] == 989.4e12 and gpu.peak_bf16('NVIDIA A100-SXM4-80GB')[0] == 312e12
    assert gpu.peak_bf16('NVIDIA GeForce RTX 3090') == (None, None)
    _, tok = bl.shakespeare()
    d, nl, V, L = 768, 12, tok.vocab_size, 1024
    for n in bl.METHODS:   # 6N + 12 n_layer d L with N = 12 d^2 per block (no biases) + the output head
        m = bl.make_bench_method(n, tok)
        model = bl.DiffusionTransformer(m.model_config(n_layer=nl, n_head=12, n_embd=d, block_size=L, cond_dim=128))
        out_V = model.cfg.vocab_size
        fl = gpu.train_flops_per_token(model, L)
        assert fl['matmul_params'] == nl * 12 * d * d + d * out_V
        assert fl['total'] == 6 * (nl * 12 * d * d + d * out_V) + 12 * nl * d * L
    # the CPU smoke path: MFU = FLOPs/token x tokens/s / peak from the run's own numbers
    run('gpu.py', '--allow-cpu', '--peak-tflops', '1', '--threads', '1', '--out-dir', tmp_path)
    res = json.loads(next(tmp_path.glob('gpu__*.json')).read_text())
    for n, r in res['methods'].items():
        assert r['tokens_per_s'] == res['throughput']['median_tokens_per_s'][n]
        assert math.isclose(r['mfu'], r['flops_per_token']['total'] * r['tokens_per_s'] / 1e12)


def test_collect_builds_one_section_per_machine(tmp_path):
    import collect
    res = {'benchmark': 'quality', 'quick': False, 'machine': {'kind': 'CPU, 2 cores'}}
    (tmp_path / 'quality__cpu-2-cores.json').write_text(json.dumps(res))
    (tmp_path / 'quality__cpu-2-cores.md').write_text('*quality* on a machine\n\n### Quality\n\n| a |\n|---|\n| 1 |\n')
    (tmp_path / 'gpu__h100.json').write_text(json.dumps({**res, 'benchmark': 'gpu', 'machine': {'kind': 'NVIDIA H100 80GB HBM3'}}))
    (tmp_path / 'gpu__h100.md').write_text('*gpu* on H100\n\n### GPU\n\n| b |\n|---|\n| 2 |\n')
    text = collect.build(tmp_path, {'CPU, 2 cores': 'cores were shared'})
    assert text.index('## CPU, 2 cores') < text.index('cores were shared') < text.index('### Quality') < text.index('## NVIDIA H100')
    assert '<sub>*quality* on a machine</sub>' in text and '## GPU\n\nNo GPU run yet' not in text
