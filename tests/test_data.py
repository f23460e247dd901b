"""Data preparation from outside a notebook: the real offline failure of `datasets`, bad input, the analysis notebook in batch."""
import json, os, subprocess, sys
import pytest
from conftest import run_papermill
from diffusion_lm.data import prepare_byte_data, load_metadata
from diffusion_lm.palindromes.data import prepare_palindromes


def test_wikipedia_offline_fails_clearly(tmp_path):
    "`datasets` itself fails offline (HF_*_OFFLINE set before import); the message points to the shipped sample."
    code = ('from diffusion_lm.data import prepare_byte_data\n'
            f'prepare_byte_data({str(tmp_path / "wp")!r}, source="wikipedia", cache_dir={str(tmp_path / "cache")!r})')
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'HF_DATASETS_OFFLINE': '1'}
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode != 0
    assert "source='wikitext-2'" in r.stderr and 'ConnectionError' in r.stderr
    assert not (tmp_path / 'wp').exists()            # nothing half-written


def test_bad_inputs_never_destroy_prepared_data(tmp_path):
    out = prepare_palindromes(tmp_path / 'p')
    before = (out / 'train.bin').read_bytes()
    with pytest.raises(FileExistsError, match='overwrite=True'): prepare_palindromes(tmp_path / 'p', row_width=16)
    bad = tmp_path / 'bad.json'; bad.write_text(json.dumps(['abba', 3]))
    with pytest.raises(ValueError, match='list of strings'): prepare_palindromes(tmp_path / 'q', source=bad)
    with pytest.raises(ValueError, match='no entry'): prepare_palindromes(tmp_path / 'r', row_width=3)
    assert (out / 'train.bin').read_bytes() == before
    assert not (tmp_path / 'q').exists()


def test_byte_data_num_proc_matches_single_process(tmp_path):
    a = prepare_byte_data(tmp_path / 'a', dataset_percent=20, cache_dir=tmp_path / 'c')
    b = prepare_byte_data(tmp_path / 'b', dataset_percent=20, num_proc=2, cache_dir=tmp_path / 'c')
    assert (a / 'train.bin').read_bytes() == (b / 'train.bin').read_bytes()
    assert load_metadata(a)['train_rows'] == load_metadata(b)['train_rows'] > 0


def test_data_analysis_notebook_in_batch(tmp_path):
    out = run_papermill('10_data_analysis.ipynb', tmp_path / 'analysis.ipynb', {'fig_dir': str(tmp_path / 'figs'), 'batch_size': 8})
    assert sorted(p.name for p in (tmp_path / 'figs').iterdir()) == ['batches.png', 'byte_values.png', 'lengths.png', 'token_frequencies.png']
    nb = json.loads(out.read_text())
    assert any('injected-parameters' in c['metadata'].get('tags', []) for c in nb['cells'])
