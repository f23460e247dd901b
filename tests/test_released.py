"""Released checkpoints through the user's entry points: a tiny model written here in each released layout (official
SEDD, MDLM, BD3-LM; the hub is not reachable from the test machines) is sampled and scored by `nbs/sample.ipynb` given
the folder as `checkpoint`, which tells the formats apart; a folder of none of them is refused in one line naming the
formats. Each format round-trips: load, sample, score (the bound is the method's own loss on the converted model),
train a few steps from it (`init_from`), save, reload. The exactness of each conversion is proven in
nbs/13b_released.ipynb."""
import json, math
from pathlib import Path
import pytest, torch
from conftest import run_papermill
from diffusion_lm.model import DiffusionTransformer
from diffusion_lm.released import (sedd_config, dit_config, save_release, load_release, release_kind,
                                   is_release)
from diffusion_lm.data import prepare_shakespeare, load_tokenizer, open_split
from diffusion_lm.trainer import TrainConfig, train, load_newest, evaluate_release
from diffusion_lm.testing import make_tiny_tokenizer
from diffusion_lm.errors import UserError
from diffusion_lm.released import HFTokenizer
from diffusion_lm.finetune import FinetuneConfig, pick_sources, main as finetune_main
from diffusion_lm.sources import CorpusWindows

SIZES = dict(hidden_dim=32, cond_dim=16, model_length=32, n_blocks=1, n_heads=2, dropout=0.0, time_conditioning=False)


def release_model(kind: str, n_real: int) -> tuple:
    "A random tiny model of `kind` in its release layout over `n_real` real ids, and its method."
    if kind == 'sedd':
        cfg, method = sedd_config({'tokens': n_real, 'model': {'hidden_size': 32, 'cond_dim': 16, 'length': 32,
                                   'n_blocks': 1, 'n_heads': 2, 'scale_by_sigma': True, 'dropout': 0.0},
                                   'graph': {'type': 'absorb'}, 'noise': {'type': 'loglinear'}})
    else:
        cfg, method = dit_config({'model_type': kind, 'vocab_size': n_real + 1, 'block_size': 4, **SIZES})
    torch.manual_seed(0)
    model = DiffusionTransformer(cfg)
    with torch.no_grad():
        for p in model.parameters(): p.normal_(0, 0.2)
    return model, method


def tiny_release(folder: Path, kind: str) -> Path:
    "A random tiny model of `kind` written as a release folder, with a small character tokenizer in place of GPT-2's."
    tok = make_tiny_tokenizer(chat_template=False)
    return save_release(*release_model(kind, len(tok)), folder, tok)


TEXT = 'To be, or not to be, that is the question: whether tis nobler in the mind to suffer\n'
METHOD_OF = {'sedd': 'sedd', 'mdlm': 'masked', 'bd3lm': 'block'}


@pytest.mark.parametrize('kind', ['sedd', 'mdlm', 'bd3lm'])
def test_sample_notebook_takes_a_release_folder(tmp_path, kind):
    folder = tiny_release(tmp_path / f'{kind}-tiny', kind)
    assert release_kind(folder) == kind and is_release(folder)
    before = sorted(p.name for p in folder.iterdir())
    out, text = tmp_path / 'samples.json', tmp_path / 'text.txt'
    text.write_text(TEXT * 2)
    params = {'checkpoint': str(folder), 'n_samples': 2, 'steps': 8, 'out_file': str(out), 'gif': False,
              'eval_batches': 1}
    if kind != 'mdlm': params['eval_text'] = str(text)                # the bound on a text, in the release's tokenizer
    if kind == 'sedd': params['sampler'] = 'low_confidence'            # SEDD absorbing with LLaDA's masked sampler
    nb = run_papermill('sample.ipynb', tmp_path / 'sample.ipynb', params)
    s = json.loads(out.read_text())
    assert len(s['samples']) == 2 and s['method'] == METHOD_OF[kind]
    assert s['sampler'] == ('low_confidence' if kind == 'sedd' else 'confidence' if kind == 'bd3lm' else 'random')
    shown = ''.join(''.join(o.get('text', '')) for c in json.loads(nb.read_text())['cells'] for o in c.get('outputs', []))
    assert ('validation bound skipped' in shown) == (kind == 'mdlm')
    assert ('validation NLL bound: ' in shown) == (kind != 'mdlm')
    assert sorted(p.name for p in folder.iterdir()) == before           # the release folder is never written into


def _char_data(tmp_path):
    (tmp_path / 'corpus.txt').write_text(TEXT * 40)
    data = prepare_shakespeare(tmp_path / 'data', source=tmp_path / 'corpus.txt')
    return data, load_tokenizer(data)


def _run_config(kind, data, folder, out, **over) -> TrainConfig:
    return TrainConfig(**{**dict(method=METHOD_OF[kind], dataset=str(data), n_layer=1, n_head=2, n_embd=32, cond_dim=16,
                                 block_size=4, context_length=32, batch_size=4, max_steps=3, warmup_steps=1,
                                 eval_interval=3, eval_batches=1, n_samples=1, sample_steps=8, precision='fp32',
                                 device='cpu', init_from=str(folder), out_dir=str(out)), **over})


def _same(a: dict, b: dict, kind: str) -> bool:
    "Equal weights (MDLM/BD3-LM store the modulations through a float64 product: equal to float32 rounding)."
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) if kind == 'sedd' else
                                        torch.allclose(a[k], b[k], rtol=0, atol=1e-6) for k in a)


@pytest.mark.parametrize('kind', ['sedd', 'mdlm', 'bd3lm'])
def test_each_format_round_trips(tmp_path, kind):
    "Load, sample, score, train 3 steps from it (init_from), save, reload: a release whose vocabulary is the data's."
    data, dtok = _char_data(tmp_path)
    src, src_method = release_model(kind, dtok.n_real)
    folder = save_release(src, src_method, tmp_path / 'release')
    model, method, _, found = load_release(folder, tokenizer=False)
    assert found == kind and _same(model.state_dict(), src.state_dict(), kind)
    for sampler in ([None, 'confidence'] if kind == 'sedd' else [None]):     # SEDD absorbing: the masked samplers too
        x = method.sample(model, 2, 16, steps=8, sampler=sampler, generator=torch.Generator().manual_seed(0))
        assert x.shape == (2, 16) and bool((x < dtok.n_real).all())
    # score: the bound is the method's own loss on the converted model, with the same seed
    ids = torch.from_numpy(open_split(data, 'val')[:64].astype('int64'))
    ev = evaluate_release(folder, ids, batch_size=2, context_length=16, seed=5, loaded=(model, method, None, kind))
    g = torch.Generator().manual_seed(5)
    per = torch.cat([method.sequence_nll(model, b, generator=g).double() for b in ids.view(4, 16).split(2)]) / 16
    assert ev['val_sequences'] == 4 and ev['val_nats'] == pytest.approx(per.mean().item(), rel=1e-12, abs=0)
    # fine-tune: three steps of train() from the release, its checkpoint written back as a release and read again
    summary = train(_run_config(kind, data, folder, tmp_path / 'run'), progress=False)
    assert summary['step'] == 3
    _, (tuned, tuned_method, _, _) = load_newest(tmp_path / 'run')
    assert not _same(tuned.state_dict(), src.state_dict(), kind)            # it trained
    back = save_release(tuned, tuned_method, tmp_path / 'tuned')
    again, _, _, found = load_release(back, tokenizer=False)
    assert found == kind and _same(again.state_dict(), tuned.state_dict(), kind)


def test_init_from_a_release_that_does_not_fit(tmp_path):
    data, dtok = _char_data(tmp_path)
    folder = save_release(*release_model('mdlm', dtok.n_real), tmp_path / 'release')
    with pytest.raises(UserError, match=r"init_from='.*release': the release does not fit the model being trained: "
                                        r"blocks\.0\.modulation: checkpoint \(6, 32\), model \(6, 64\)"):
        train(_run_config('mdlm', data, folder, tmp_path / 'run', n_embd=64), progress=False)
    with pytest.raises(UserError, match=r"a mdlm release, but the run trains method 'block', the release 'masked': "
                                        r"train it with method='masked'"):
        train(_run_config('bd3lm', data, folder, tmp_path / 'run2'), progress=False)


def test_a_folder_of_no_format_names_the_formats(tmp_path):
    (tmp_path / 'config.json').write_text(json.dumps({'model_type': 'gpt2'}))
    with pytest.raises(UserError, match='the formats are: an official SEDD release .*an MDLM or BD3-LM release'):
        load_release(tmp_path)


def _ids_of(prepared: Path) -> list[int]:
    "Every token id of a prepared stream, training split then validation split."
    return [int(i) for s in ('train', 'val') for i in open_split(prepared, s)]


def _is_window(row: torch.Tensor, ids: list[int]) -> bool:
    r = row.tolist()
    return any(ids[s:s + len(r)] == r for s in range(len(ids) - len(r) + 1))


@pytest.mark.parametrize('kind', ['sedd', 'mdlm', 'bd3lm'])
def test_finetune_a_release_on_text_in_its_tokenizer(tmp_path, monkeypatch, kind):
    ("diffusion-lm-finetune model=<release> data=<text file>: the text is tokenized with the release's own tokenizer, "
     "a few steps train on its windows, the tuned release is saved, read again, sampled and scored.")
    monkeypatch.setenv('DIFFUSION_LM_DATA', str(tmp_path / 'data'))      # the tokenized text's cache: here
    folder = tiny_release(tmp_path / 'release', kind)
    corpus = tmp_path / 'hamlet.txt'
    corpus.write_text(TEXT * 30)
    _, _, tok, _ = load_release(folder)
    out = tmp_path / 'ft'
    args = ['--no-progress', '--set', f'model={folder}', f'data={corpus}', f'out_dir={out}', 'context_length=16',
            'batch_size=2', 'max_steps=3', 'warmup_steps=0', 'lr=1e-3', 'precision=fp32', 'device=cpu', 'log_interval=1',
            'checkpoint_interval=2', 'eval_draws=1', 'eval_examples=4']
    assert finetune_main(args) == 0
    res = json.loads((out / 'result.json').read_text())
    assert (res['step'], res['finished'], res['dataset'], res['model_dir']) == (3, True, str(corpus), str(out / 'model'))
    prepared = Path(res['data_path'])
    assert prepared.parent == tmp_path / 'data' / 'prepared'
    ids = _ids_of(prepared)
    assert ids == tok.encode(TEXT * 30)                                  # exactly the release tokenizer's encoding
    # the windows the run drew (its data source, rebuilt): each a window of those ids
    cfg = FinetuneConfig(model=str(folder), data=str(corpus), context_length=16, batch_size=2, max_steps=3)
    src, data = pick_sources(cfg)
    assert isinstance(data, CorpusWindows) and data.path == prepared
    rows = torch.cat(data.batches(0))
    assert rows.shape == (2, 16) and all(_is_window(r, ids) for r in rows)
    # the tuned release: its format, new weights, read again the same, sampled, scored on the text
    tuned, method, ttok, found = load_release(out / 'model')
    assert found == kind and ttok.encode(TEXT) == tok.encode(TEXT)
    assert not _same(tuned.state_dict(), src.model.state_dict(), kind)
    again = load_release(save_release(tuned, method, tmp_path / 'again'), tokenizer=False)[0]
    assert _same(again.state_dict(), tuned.state_dict(), kind)
    x = method.sample(tuned, 2, 16, steps=4, generator=torch.Generator().manual_seed(0))
    assert x.shape == (2, 16) and bool((x < tok.n_real).all())
    ev = evaluate_release(out / 'model', TEXT * 4, batch_size=2, context_length=16)
    assert ev['val_sequences'] == len(tok.encode(TEXT * 4)) // 16 and math.isfinite(ev['val_nats'])


def test_text_cache_is_keyed_by_the_tokenizer(tmp_path, monkeypatch):
    "The same text and tokenizer reuse the prepared folder; a release with another tokenizer never reads it."
    monkeypatch.setenv('DIFFUSION_LM_DATA', str(tmp_path / 'data'))
    corpus = tmp_path / 'hamlet.txt'
    corpus.write_text(TEXT * 30)
    a = tiny_release(tmp_path / 'a', 'mdlm')
    cfg = lambda m: FinetuneConfig(model=str(m), data=str(corpus), context_length=16, batch_size=2)
    first = pick_sources(cfg(a))[1].path
    stamp = (first / 'train.npy').stat().st_mtime_ns
    assert pick_sources(cfg(a))[1].path == first and (first / 'train.npy').stat().st_mtime_ns == stamp
    other = make_tiny_tokenizer(chat_template=False)
    other.add_tokens(['To be'])                                       # one more token: another tokenizer
    b = save_release(*release_model('mdlm', len(other)), tmp_path / 'b', other)
    second = pick_sources(cfg(b))[1].path
    assert second != first and second.parent == first.parent
    assert _ids_of(second) == HFTokenizer(other).encode(TEXT * 30) != _ids_of(first)
    assert _ids_of(second)[0] == len(other) - 1                       # 'To be', one id of the other tokenizer


def test_train_from_a_release_on_text_in_its_tokenizer(tmp_path, monkeypatch):
    "train's init_from=<release> with dataset=<text file>: the text in the release's tokenizer, and the run reads it back."
    monkeypatch.setenv('DIFFUSION_LM_DATA', str(tmp_path / 'data'))
    folder = tiny_release(tmp_path / 'release', 'bd3lm')
    corpus = tmp_path / 'hamlet.txt'
    corpus.write_text(TEXT * 30)
    summary = train(_run_config('bd3lm', corpus, folder, tmp_path / 'run', context_length=16), progress=False)
    assert summary['step'] == 3
    _, (model, method, tok, cfg) = load_newest(tmp_path / 'run')
    want = load_release(folder)[2]
    assert isinstance(tok, HFTokenizer) and tok.encode(TEXT) == want.encode(TEXT) and method.block_size == 4
    (prepared,) = (tmp_path / 'data' / 'prepared').iterdir()                # the text, tokenized once
    assert _ids_of(prepared) == want.encode(TEXT * 30)


def test_text_is_for_a_model_with_its_own_tokenizer(tmp_path):
    "A release given a data set of characters is told to give text, which it tokenizes with its own tokenizer."
    data, _ = _char_data(tmp_path)
    folder = tiny_release(tmp_path / 'release', 'mdlm')
    with pytest.raises(UserError, match=r"is tokenized with chars tokens but the model .* with hf tokens .*give text "
                                        r"to tokenize with it: dataset=wikitext-2 or tinyshakespeare or a text file"):
        pick_sources(FinetuneConfig(model=str(folder), data=str(data)))
    with pytest.raises(UserError, match=r"nor text for a release's tokenizer \(wikitext-2, tinyshakespeare, or a text "
                                        r"file\)"):
        pick_sources(FinetuneConfig(model=str(folder), data=str(tmp_path / 'missing.txt')))


@pytest.mark.parametrize('model', ['sedd-medium', 'bd3lm-owt-block4', 'folder'])
def test_plan_of_a_released_model(tmp_path, capsys, model):
    ("diffusion-lm-finetune --plan model=<a released model's name or a release folder>: the figures of "
     "model_size.memory_estimate for a fine-tuning step (no EMA), which is memory_plan.released_plan's less the EMA.")
    from diffusion_lm.memory_plan import released_plan, model_row
    from diffusion_lm.model_size import memory_estimate, param_breakdown, fmt_bytes
    from diffusion_lm.released import released_model_config
    name = str(tiny_release(tmp_path / 'bd3lm-tiny', 'bd3lm')) if model == 'folder' else model
    L, B = (16, 4) if model == 'folder' else (1024, 8)
    assert finetune_main(['--plan', '--devices', '2', '--device-memory', '80GB', '--set', f'model={name}',
                          f'context_length={L}', f'batch_size={B}', 'precision=bf16']) == 0
    head, table, row, choice = capsys.readouterr().out.splitlines()
    mc, method = released_model_config(name)
    est = memory_estimate(mc, B, (2 if method.name == 'block' else 1) * L, 'bf16', ema=False)
    pb = param_breakdown(mc)
    P, non_emb = sum(pb.values()), sum(pb.values()) - pb['embedding'] - pb['output']
    label = 'bd3lm-tiny (bd3lm release)' if model == 'folder' else f'{model} (released)'
    assert head.startswith(f'{label}: {P / 1e6:.1f} M parameters; one fine-tuning step (AdamW, no EMA) of '
                           f'batch_size={B} x context_length={L} per device; devices: 2 x 80.0 GiB (as named)')
    assert row.split() == [*label.split(), f'{P / 1e6:.1f}M', f'{non_emb / 1e6:.1f}M', *fmt_bytes(est.total).split(), 'yes']
    assert choice == f'this configuration: full fine-tuning, {fmt_bytes(est.total)} per device, fits'
    assert model_row(label, mc, method, L, B, 1e15, 'bf16', ema=False)['peak'] == est.total
    if model != 'folder':
        assert released_plan(L, B, (80,), 'bf16', names=[model])[0]['peak'] == est.total + 4 * P
