"""Released checkpoints through the user's entry point: a tiny model written here in each released layout (official
SEDD, MDLM, BD3-LM; the hub is not reachable from the test machines) is sampled by `nbs/sample.ipynb` given the folder
as `checkpoint`, which tells the formats apart; a folder of none of them is refused in one line naming the formats.
The exactness of each conversion is proven in nbs/13b_released.ipynb."""
import json
from pathlib import Path
import pytest, torch
from conftest import run_papermill
from diffusion_lm.model import DiffusionTransformer
from diffusion_lm.released import sedd_config, dit_config, save_release, load_release, release_kind
from diffusion_lm.testing import make_tiny_tokenizer
from diffusion_lm.errors import UserError

SIZES = dict(hidden_dim=32, cond_dim=16, model_length=32, n_blocks=1, n_heads=2, dropout=0.0, time_conditioning=False)


def tiny_release(folder: Path, kind: str) -> Path:
    "A random tiny model of `kind` written as a release folder, with a small character tokenizer in place of GPT-2's."
    tok = make_tiny_tokenizer(chat_template=False)
    if kind == 'sedd':
        cfg, method = sedd_config({'tokens': len(tok), 'model': {'hidden_size': 32, 'cond_dim': 16, 'length': 32,
                                   'n_blocks': 1, 'n_heads': 2, 'scale_by_sigma': True, 'dropout': 0.0},
                                   'graph': {'type': 'absorb'}, 'noise': {'type': 'loglinear'}})
    else:
        cfg, method = dit_config({'model_type': kind, 'vocab_size': len(tok) + 1, 'block_size': 4, **SIZES})
    torch.manual_seed(0)
    model = DiffusionTransformer(cfg)
    with torch.no_grad():
        for p in model.parameters(): p.normal_(0, 0.2)
    return save_release(model, method, folder, tok)


@pytest.mark.parametrize('kind', ['sedd', 'mdlm', 'bd3lm'])
def test_sample_notebook_takes_a_release_folder(tmp_path, kind):
    folder = tiny_release(tmp_path / f'{kind}-tiny', kind)
    assert release_kind(folder) == kind
    before = sorted(p.name for p in folder.iterdir())
    out = tmp_path / 'samples.json'
    nb = run_papermill('sample.ipynb', tmp_path / 'sample.ipynb', {'checkpoint': str(folder), 'n_samples': 2, 'steps': 8,
                                                                    'out_file': str(out), 'gif': False, 'eval_batches': 1})
    s = json.loads(out.read_text())
    assert len(s['samples']) == 2 and s['method'] == {'sedd': 'sedd', 'mdlm': 'masked', 'bd3lm': 'block'}[kind]
    assert 'validation bound skipped' in nb.read_text()
    assert sorted(p.name for p in folder.iterdir()) == before           # the release folder is never written into


def test_a_folder_of_no_format_names_the_formats(tmp_path):
    (tmp_path / 'config.json').write_text(json.dumps({'model_type': 'gpt2'}))
    with pytest.raises(UserError, match='the formats are: an official SEDD release .*an MDLM or BD3-LM release'):
        load_release(tmp_path)
