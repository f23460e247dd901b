"""Released checkpoints through the user's entry points: a tiny model written here in each released layout (official
SEDD, MDLM, BD3-LM; the hub is not reachable from the test machines) is sampled and scored by `nbs/sample.ipynb` given
the folder as `checkpoint`, which tells the formats apart; a folder of none of them is refused in one line naming the
formats. Each format round-trips: load, sample, score (the bound is the method's own loss on the converted model),
train a few steps from it (`init_from`), save, reload. The exactness of each conversion is proven in
nbs/13b_released.ipynb."""
import json
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
