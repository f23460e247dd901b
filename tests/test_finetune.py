"""Fine-tuning LLaDA-format models end to end, in separate processes (diffusion_lm.finetune, the
`diffusion-lm-finetune` command): exit codes and one-line errors; SIGTERM and Ctrl-C checkpoint a run that then
resumes to the weights of an uninterrupted run, bit for bit; FSDP2 on 2 gloo processes matches one process
(full fine-tuning and LoRA) and its sharded checkpoint resumes on 1 process; the --plan prediction is within
15% of the measured peak of the module's training step; a diffusion-lm-train run fine-tuned on a corpus takes
the steps of pre-training continued from it, exactly (one process, and two DDP ranks)."""
import contextlib, io, json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file
from conftest import ROOT
from diffusion_lm.testing import make_tiny_llada
from diffusion_lm.sft_data import write_jsonl
from diffusion_lm.distributed import DistInfo
from diffusion_lm.optim import make_optimizer, make_scheduler
from diffusion_lm.checkpoint import list_checkpoints
from diffusion_lm.scale import save_sharded, load_sharded_checkpoint
from diffusion_lm.trainer import train_step
from diffusion_lm.memory_plan import measure_step_peak
from diffusion_lm.model_size import fmt_bytes
import diffusion_lm.finetune as ft

ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}
CLI = [sys.executable, '-m', 'diffusion_lm.finetune']
TORCHRUN = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', '-m', 'diffusion_lm.finetune']
WORDS = ['cat', 'dog', 'sun', 'sea', 'red', 'ink', 'owl', 'fig', 'bee', 'elm', 'jar', 'map']


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    "The tiny LLaDA-format model and twelve repeat-a-word conversations."
    d = tmp_path_factory.mktemp('finetune')
    data = write_jsonl(d / 'repeat.jsonl', [{'messages': [{'role': 'user', 'content': f'repeat: {w}'},
                                                          {'role': 'assistant', 'content': f'{w} {w} {w}'}]} for w in WORDS])
    return make_tiny_llada(d / 'tiny'), data


def sets(model, data, out, **kw):
    "--set arguments for a small CPU run."
    c = {**dict(model=model, data=data, out_dir=out, context_length=64, lr=1e-3, warmup_steps=0, lr_schedule='constant',
                weight_decay=0.0, device='cpu', log_interval=1), **kw}
    return ['--no-progress', '--set', *[f'{k}={v}' for k, v in c.items()]]


def here(args) -> dict:
    "The same run as `CLI *args`, in this process (one thread): a reference without a process start."
    torch.set_num_threads(1)
    kv = dict(a.split('=', 1) for a in args[args.index('--set') + 1:])
    return ft.finetune(ft.FinetuneConfig.from_dict(kv), progress=False)


def run(cmd, *args, timeout=600):
    return subprocess.run([*cmd, *map(str, args)], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def ok(r) -> dict:
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def weights(out: Path) -> dict: return load_file(out / 'model' / 'model.safetensors')


def close(a: dict, b: dict, tol: float = 1e-5) -> bool:
    return sorted(a) == sorted(b) and all(torch.allclose(a[k], b[k], atol=tol, rtol=0) for k in a)


def test_exit_codes_and_one_line_errors(tiny, tmp_path):
    "The console entry point: exit 2 with one line on stderr for a mistyped value, a missing model, a bad JSONL line."
    model, data = tiny
    exe = [str(Path(sys.executable).with_name('diffusion-lm-finetune'))]
    r = run(exe, *sets(model, data, tmp_path / 'a', lr='abc'))
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and "TrainConfig.lr='abc' is not a number" in r.stderr
    r = run(exe, *sets(tmp_path / 'nope', data, tmp_path / 'b'))
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'no such folder' in r.stderr
    bad = tmp_path / 'bad.jsonl'
    bad.write_text(data.read_text() + '{"messages": [{"role": "user", "content": "hi"}]}\n')
    r = run(exe, *sets(model, bad, tmp_path / 'c'))
    assert r.returncode == 2 and r.stderr.strip() == (f'diffusion-lm-finetune: {bad}:13: "messages" must be a list of at least two '
                                                      'messages (a user turn, then the assistant answer)')
    assert not any((tmp_path / n).exists() for n in 'abc')                  # nothing was created for a bad input


def wait_for_step(out: Path, proc, step: int, timeout: float = 300):
    "Wait until the run in `out` has logged `step` (or the process ended)."
    t0 = time.time()
    while time.time() - t0 < timeout and proc.poll() is None:
        try: lines = (out / 'metrics.jsonl').read_text().splitlines()
        except OSError: lines = []
        if lines and json.loads(lines[-1])['step'] >= step: return
        time.sleep(0.1)
    raise AssertionError(f'the run did not reach step {step}: {proc.poll()}')


def interrupted(args, out, sig, after) -> dict:
    "Start the CLI, send `sig` once it has logged step `after`; its summary (it must exit 0 with a checkpoint)."
    p = subprocess.Popen([*CLI, *map(str, args)], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_step(out, p, after)
        p.send_signal(sig)
        so, se = p.communicate(timeout=300)
    finally:
        if p.poll() is None: p.kill()
    assert p.returncode == 0, se[-4000:]
    assert 'run the same command again to continue' in se
    return json.loads(so.strip().splitlines()[-1])


def test_signals_checkpoint_and_resume_exactly(tiny, tmp_path):
    "SIGTERM, then Ctrl-C, mid-run: each time a checkpoint and exit 0; resumed, the weights equal an uninterrupted run's."
    model, data = tiny
    args = lambda out: sets(model, data, out, max_steps=120, batch_size=3, checkpoint_interval=1000)
    s1 = interrupted(args(tmp_path / 'cut'), tmp_path / 'cut', signal.SIGTERM, after=3)
    assert not s1['finished'] and s1['stopped_by_signal'] and 3 <= s1['step'] < 120
    assert (tmp_path / 'cut' / 'checkpoints' / f"step_{s1['step']:06d}").is_dir() and not (tmp_path / 'cut' / 'model').exists()
    s2 = interrupted(args(tmp_path / 'cut'), tmp_path / 'cut', signal.SIGINT, after=s1['step'] + 3)
    assert s2['start_step'] == s1['step'] and s1['step'] < s2['step'] < 120 and not s2['finished']
    s3 = ok(run(CLI, *args(tmp_path / 'cut')))
    assert (s3['start_step'], s3['step'], s3['finished']) == (s2['step'], 120, True)
    here(args(tmp_path / 'whole'))
    a, b = weights(tmp_path / 'cut'), weights(tmp_path / 'whole')
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(l)['step'] for l in (tmp_path / 'cut' / 'metrics.jsonl').read_text().splitlines()]
    assert steps == list(range(1, 121))                                       # one record a step, none twice


def test_fsdp_two_ranks_match_one_process_and_resume(tiny, tmp_path):
    """Global batch 4: 2 FSDP2 ranks x 2 examples = 1 process x 2 micro-batches: the same weights, full fine-tuning (2 ranks,
    then resumed from their sharded checkpoint on 1 process) and LoRA."""
    model, data = tiny
    args = lambda out, accum, steps, **kw: sets(model, data, out, fsdp=True, batch_size=2, grad_accum=accum, max_steps=steps,
                                                checkpoint_interval=2, **kw)
    one = here(args(tmp_path / 'one', 2, 4))
    moved = ok(run(TORCHRUN, *args(tmp_path / 'moved', 1, 2)))                # 2 FSDP2 ranks to step 2 ...
    assert (moved['world_size'], moved['step']) == (2, 2)
    assert (tmp_path / 'moved' / 'checkpoints' / 'step_000002' / '__1_0.distcp').is_file()   # (each rank wrote its shards)
    res = ok(run(CLI, *args(tmp_path / 'moved', 2, 4)))                       # ... then 1 process on from its checkpoint
    assert (res['world_size'], res['start_step'], res['step']) == (1, 2, 4)
    w1 = weights(tmp_path / 'one')
    assert close(weights(tmp_path / 'moved'), w1) and not close(w1, load_file(model / 'model.safetensors'), 1e-4)
    assert res['last']['loss'] == pytest.approx(one['last']['loss'], abs=1e-5)
    # LoRA under FSDP2 for all 3 steps: the adapters are gathered for the export, and match one process
    lora = dict(lora=True, lr=1e-2)
    two = ok(run(TORCHRUN, *args(tmp_path / 'lora2', 1, 3, **lora)))
    assert (two['world_size'], two['trainable']) == (2, 8704)
    here(args(tmp_path / 'lora1', 2, 3, **lora))
    a2, a1 = (load_file(tmp_path / n / 'adapter' / 'adapter_model.safetensors') for n in ('lora2', 'lora1'))
    assert len(a2) == 28 and close(a1, a2) and all(a2[k].abs().sum() > 0 for k in a2 if 'lora_B' in k)
    assert close(weights(tmp_path / 'lora2'), weights(tmp_path / 'lora1'))


def test_resume_from_the_old_sharded_layout(tiny, tmp_path):
    """A run folder of the layout before one checkpoint format (FSDP2 checkpoints in sharded/step_N/, written by
    scale.save_sharded with the schedule and data position in its checkpoint.json) resumes exactly; the next
    checkpoint goes to checkpoints/ in the one format."""
    model, data = tiny
    args = lambda out, steps: sets(model, data, out, fsdp=True, batch_size=2, grad_accum=2, max_steps=steps,
                                   checkpoint_interval=2, keep_last=2)
    out = tmp_path / 'old'
    here(args(out, 2))
    kv = dict(a.split('=', 1) for a in args(out, 2)[2:])                 # the run's state at step 2, in the old layout
    cfg = ft.FinetuneConfig.from_dict(kv)
    m, _ = ft.load_model(cfg, torch.device('cpu'))
    opt = make_optimizer(m, cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2))
    sched = make_scheduler(opt, cfg.warmup_steps, 4, cfg.min_lr / cfg.lr, cfg.lr_schedule)
    info = load_sharded_checkpoint(out, m, opt, sched)
    save_sharded(out / 'sharded' / 'step_000002', m, opt, 2, {**info['extra'], 'scheduler': sched.state_dict()})
    (out / 'sharded' / 'latest').write_text('step_000002\n')
    shutil.rmtree(out / 'checkpoints'); shutil.rmtree(out / 'model')
    assert sorted(p.name for p in (out / 'sharded' / 'step_000002').iterdir()) == ['.metadata', '__0_0.distcp',
                                                                                  'checkpoint.json']
    res = here(args(out, 4))
    assert (res['start_step'], res['step'], res['finished']) == (2, 4, True)
    assert [p.name for p in list_checkpoints(out)] == ['step_000004'] and (out / 'sharded' / 'step_000002').is_dir()
    here(args(tmp_path / 'whole', 4))
    a, b = weights(out), weights(tmp_path / 'whole')
    assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_ddp_two_ranks_match_one_process(tiny, tmp_path):
    "torchrun without fsdp: DDP, each rank 2 examples, the same weights as 1 process accumulating 2 micro-batches."
    model, data = tiny
    args = lambda out, accum: sets(model, data, out, batch_size=2, grad_accum=accum, max_steps=2, gradient_checkpointing=True)
    two = ok(run(TORCHRUN, *args(tmp_path / 'ddp', 1)))
    assert (two['world_size'], two['gradient_checkpointing'], two['step']) == (2, True, 2)
    assert (tmp_path / 'ddp' / 'checkpoints' / 'step_000002').is_dir()     # rank 0 wrote the library's checkpoint
    here(args(tmp_path / 'one', 2))
    assert close(weights(tmp_path / 'ddp'), weights(tmp_path / 'one'))


@pytest.mark.parametrize('mode', ['full', 'lora'])
def test_plan_within_15_percent_of_the_measured_step(tmp_path, mode):
    "The --plan figure against the measured peak of this module's training step (hidden 256, 4 layers, batch 4 x 256)."
    torch.set_num_threads(1)
    model = make_tiny_llada(tmp_path / 'mid', d_model=256, n_layers=4, n_heads=4, mlp_hidden_size=768)
    text = (ROOT / 'data' / 'tinyshakespeare' / 'input.txt').read_text()[:8 * 256]
    data = write_jsonl(tmp_path / 'text.jsonl', [{'text': text[i:i + 256]} for i in range(0, len(text), 256)])
    cfg = ft.FinetuneConfig(model=str(model), data=str(data), context_length=256, batch_size=4, device='cpu', lora=mode == 'lora',
                            lora_rank=16, gradient_checkpointing=mode == 'lora')
    tok, mask_id, sft, _ = ft.prepare_data(cfg)
    batches = ft.step_batches(sft, cfg, 0, 0, DistInfo(), tok.eos_token_id)
    assert batches[0][0].shape == (4, 256) and batches[0][1].tolist() == [0] * 4

    def build():
        m, gc = ft.build_model(cfg, torch.device('cpu'))
        assert gc == cfg.gradient_checkpointing
        return m, make_optimizer(m, cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2))
    loss_fn = ft.make_loss(mask_id, cfg.min_mask_rate, 'cpu')
    step = lambda m, o: train_step(m, loss_fn, batches, o, None, None, cfg.grad_clip, 'cpu', 'fp32')
    measured = measure_step_peak(build, step)
    rows, mine, _ = ft.plan_rows(cfg, [100.0], gpu=False)
    print(f"{mode}: plan {fmt_bytes(mine['peak'])}, measured {fmt_bytes(measured)} ({100 * (mine['peak'] / measured - 1):+.1f}%)")
    assert abs(mine['peak'] / measured - 1) < 0.15
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert ft.main(['--plan', '--set', f'model={model}', 'context_length=256',
                        'batch_size=4', 'precision=fp32', f'lora={mode == "lora"}', 'lora_rank=16',
                        f'gradient_checkpointing={mode == "lora"}']) == 0
    assert f"{fmt_bytes(mine['peak'])} per device" in out.getvalue()          # (this CPU's memory: float32, unfused AdamW)


def test_a_training_run_fine_tuned_on_a_corpus_through_the_command(tmp_path):
    """`diffusion-lm-finetune` with model= a diffusion-lm-train run and data= a corpus data set: the losses of
    pre-training continued from init_from= the same run with the same settings, exactly, and a model/ that
    load_newest reads; a folder of no known format is refused in one line that names every format."""
    from diffusion_lm.trainer import train, load_newest
    from diffusion_lm.train_config import config_from_preset
    from diffusion_lm.runs import read_jsonl
    from diffusion_lm.model_formats import MODEL_FORMATS
    torch.set_num_threads(1)
    tiny = dict(n_layer=1, n_embd=32, n_head=2, context_length=32, batch_size=4, warmup_steps=0, lr_schedule='constant',
                eval_batches=1, n_samples=1, sample_steps=2, log_interval=1, device='cpu', compile=False)
    same = dict(lr=1e-3, min_lr=1e-4, weight_decay=0.1, beta1=0.9, beta2=0.95, grad_clip=1.0, seed=5, grad_accum=2, max_steps=4)
    run_dir = tmp_path / 'run'
    train(config_from_preset('shakespeare-llada', **tiny, max_steps=3, out_dir=str(run_dir)), progress=False)
    train(config_from_preset('shakespeare-llada', **{**tiny, **same, 'out_dir': str(tmp_path / 'again'),
                                                     'init_from': str(run_dir), 'eval_interval': 1000}), progress=False)
    s = ok(run(CLI, '--no-progress', '--set', f'model={run_dir}', 'data=shakespeare-char', f'out_dir={tmp_path / "ft"}',
               'context_length=32', 'batch_size=4', 'warmup_steps=0', 'lr_schedule=constant', 'device=cpu',
               'log_interval=1', *[f'{k}={v}' for k, v in same.items()]))
    assert (s['dataset'], s['step'], s['finished'], s['model_dir']) == ('shakespeare-char', 4, True, str(tmp_path / 'ft' / 'model'))
    assert ([r['loss'] for r in read_jsonl(tmp_path / 'ft' / 'metrics.jsonl')] ==
            [r['train_loss'] for r in read_jsonl(tmp_path / 'again' / 'metrics.jsonl') if 'train_loss' in r])
    _, (a, *_) = load_newest(tmp_path / 'ft' / 'model')
    _, (b, *_) = load_newest(tmp_path / 'again', which='model')
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    (tmp_path / 'photos').mkdir(); (tmp_path / 'photos' / 'cat.jpg').write_bytes(b'')
    exe = [str(Path(sys.executable).with_name('diffusion-lm-finetune'))]
    r = run(exe, '--set', f'model={tmp_path / "photos"}', 'data=shakespeare-char', f'out_dir={tmp_path / "no"}')
    assert r.returncode == 2 and r.stderr.count('\n') == 1, r.stderr
    assert 'is not a model folder this library reads (it holds cat.jpg)' in r.stderr
    assert all(f'{k}: {v}' in r.stderr for k, v in MODEL_FORMATS.items()) and not (tmp_path / 'no').exists()


def test_a_training_run_fine_tuned_under_ddp_takes_the_steps_of_ddp_pretraining(tmp_path):
    "Two DDP ranks fine-tuning a diffusion-lm-train run on a corpus: the losses of 2-rank pre-training from init_from=, exactly."
    from diffusion_lm.runs import read_jsonl
    tiny = ['n_layer=1', 'n_embd=32', 'n_head=2', 'context_length=32', 'batch_size=4', 'warmup_steps=0', 'lr_schedule=constant',
            'log_interval=1', 'device=cpu']
    same = ['lr=1e-3', 'min_lr=1e-4', 'weight_decay=0.1', 'beta1=0.9', 'beta2=0.95', 'grad_clip=1.0', 'seed=5', 'grad_accum=2',
            'max_steps=3']
    train_cli = [sys.executable, '-m', 'diffusion_lm.trainer', '--no-progress', '--preset', 'shakespeare-llada', '--set', *tiny,
                 'eval_batches=1', 'n_samples=1', 'sample_steps=2', 'compile=False']
    ok(run(train_cli, 'max_steps=3', f'out_dir={tmp_path / "run"}'))
    ok(run([*TORCHRUN[:-1], 'diffusion_lm.trainer'], *train_cli[3:], *same, f'out_dir={tmp_path / "again"}',
           f'init_from={tmp_path / "run"}', 'eval_interval=1000'))
    s = ok(run(TORCHRUN, '--no-progress', '--set', *tiny[3:], *same, f'model={tmp_path / "run"}', 'data=shakespeare-char',
               f'out_dir={tmp_path / "ft"}'))
    assert (s['world_size'], s['step']) == (2, 3)
    assert ([r['loss'] for r in read_jsonl(tmp_path / 'ft' / 'metrics.jsonl')] ==
            [r['train_loss'] for r in read_jsonl(tmp_path / 'again' / 'metrics.jsonl') if 'train_loss' in r])


# the config.json / finetune_config.json that FinetuneConfig, fine-tuning's own config type before one TrainConfig,
# wrote into a run folder (with the still older name max_length for context_length), as it was written
OLD_FINETUNE_CONFIG = {
    "model": "models/tiny", "data": "chat.jsonl", "out_dir": "runs/ft_old", "val_data": None, "max_length": 64,
    "truncate": False, "mask_id": None, "batch_size": 4, "grad_accum": 1, "lr": 2.5e-05, "min_lr": 2.5e-06,
    "warmup_steps": 50, "lr_schedule": "cosine", "max_steps": 1000, "epochs": None, "weight_decay": 0.1, "beta1": 0.9,
    "beta2": 0.95, "grad_clip": 1.0, "min_mask_rate": 0.001, "lora": True, "lora_rank": 4, "lora_alpha": 16.0,
    "lora_dropout": 0.0, "lora_targets": None, "gradient_checkpointing": False, "fsdp": False, "precision": "auto",
    "dtype": "auto", "device": "auto", "seed": 0, "checkpoint_interval": 100, "keep_last": 2, "resume": "auto",
    "log_interval": 10, "eval_draws": 0, "eval_examples": 64, "trust_remote_code": True}


def test_old_finetune_config_reads_as_the_one_config(tmp_path):
    """An old fine-tuning run's config (FinetuneConfig's fields, `data` and `max_length` among them) reads as the one
    TrainConfig with the same values; its run folder is a fine-tuning run that the same run (given with today's names)
    continues and another is refused from."""
    from diffusion_lm.train_config import TrainConfig
    from diffusion_lm.runs import is_finetune_config, check_same_run, folder_kind
    cfg = TrainConfig.for_finetune(OLD_FINETUNE_CONFIG)
    assert type(cfg) is TrainConfig and type(ft.FinetuneConfig.from_dict(OLD_FINETUNE_CONFIG)) is TrainConfig
    assert (cfg.model, cfg.dataset, cfg.context_length, cfg.lora, cfg.lora_rank, cfg.lr) == ('models/tiny', 'chat.jsonl',
                                                                                              64, True, 4, 2.5e-5)
    assert cfg == ft.FinetuneConfig(model='models/tiny', dataset='chat.jsonl', out_dir='runs/ft_old', context_length=64,
                                    lora=True, lora_rank=4)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg and {'data', 'max_length'} & set(cfg.to_dict()) == set()
    assert is_finetune_config(OLD_FINETUNE_CONFIG) and is_finetune_config(cfg.to_dict())
    assert not is_finetune_config(TrainConfig().to_dict())
    assert not is_finetune_config({**TrainConfig().to_dict(), 'model': {'n_layer': 4}})   # a pre-training checkpoint's
    run = tmp_path / 'old_run'
    run.mkdir()
    (run / 'finetune_config.json').write_text(json.dumps(OLD_FINETUNE_CONFIG))
    (run / 'metrics.jsonl').write_text('{"step": 10, "loss": 1.0}\n')
    assert folder_kind(run) == 'finetune'
    check_same_run(run, cfg.to_dict())                                            # the same run: resumed
    with pytest.raises(ValueError, match='holds another fine-tuning run .*lora_rank: 4 there, 8 here'):
        check_same_run(run, ft.FinetuneConfig(**{**cfg.to_dict(), 'lora_rank': 8}).to_dict())
    with pytest.raises(ValueError, match='holds a fine-tuning run, not a pre-training run'):
        check_same_run(run, TrainConfig().to_dict())
