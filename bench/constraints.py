"""The cost of sampling under constraints (issue 25): network calls and wall time per sample with the palindrome
constraint, with palindromes of dictionary words (`--words`), and with a regular expression (the play format), each
beside the same sampler without the constraint, in the same process on the same network.

Each run also splits its time between the network's forward calls and the constraint's draws (the `sample` and
`argmax` of its class, where the automaton's check lives), per sampler step: the check must not dominate a step.
The variants take turns (one run of each per repeat), so a change in the load of a shared machine falls on all of
them alike; each ratio to the unconstrained sampler is the median of the ratios within a repeat.

The networks are the presets' sizes with random weights: the cost of a call and of a constrained draw does not
depend on training (the draw's work depends on the automaton and on how many tokens carry mass, and random weights
spread mass over every token, the slow case). Each variant runs `--repeats` times; the table gives medians, and
each row of the JSON keeps every timed run (`timed_seconds`, seconds of the whole batch of `n` samples, one per round)
from which `seconds_per_sample` (median / n) and `ratio_to_unconstrained` (the median over rounds of the ratio to the
unconstrained call of the same round) are computed.

  python bench/constraints.py            # palindrome-sedd and shakespeare-block sizes (minutes at 2 threads)
  python bench/constraints.py --quick    # tiny sizes, seconds (a smoke run, not a measurement)
"""
from __future__ import annotations
import argparse, contextlib, functools, statistics, sys, time
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl
from diffusion_lm.model import DiffusionTransformer
from diffusion_lm.train_config import config_from_preset
from diffusion_lm.trainer import model_config
from diffusion_lm.methods import make_method
from diffusion_lm.tokenizers import ByteTokenizer, CharTokenizer
from diffusion_lm.constraints import Constraint
from diffusion_lm.regular import RegularConstraint, from_regex, token_chars
from diffusion_lm.palindromes import (sample_palindromes, PalindromeWords, PalindromeConstraint, strict_words,
                                      all_strict_words, MIN_ZIPF)

PLAY = r"[A-Z][A-Z]+:\n[A-Z][a-z ,.;:'!?-]*(\n[A-Z][a-z ,.;:'!?-]*)*"
SHAKESPEARE_CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def random_network(preset: str, tok, quick: bool, seed: int = 0, **sizes):
    "The preset's method and network, weights drawn at random (N(0, 0.05)), in eval mode."
    cfg = config_from_preset(preset, **sizes)
    method = make_method(cfg, tok)
    torch.manual_seed(seed)
    net = DiffusionTransformer(model_config(cfg, method))
    with torch.no_grad():
        for p in net.parameters(): p.normal_(0, 0.05)
    return cfg, method, net.eval()


def in_turns(runs: dict, repeats: int, clock_args) -> dict:
    ("`repeats` rounds of one call of each of `runs` (name -> (fn, constraint classes)), each inside `step_clock`: "
     "per name the seconds of each call, the clocks and the last result.")
    out = {name: dict(secs=[], clocks=[], result=None) for name in runs}
    for _ in range(repeats):
        for name, (fn, classes) in runs.items():
            with step_clock(*clock_args, classes) as clock:
                t = time.perf_counter(); res = fn(); sec = time.perf_counter() - t
            out[name]['secs'].append(sec); out[name]['clocks'].append(clock); out[name]['result'] = res
    return out


def medians(turns: dict, base: str) -> dict:
    "Per name: the median seconds of a call and the median, over the rounds, of its ratio to `base`'s call."
    return {name: dict(secs=statistics.median(v['secs']),
                       ratio=statistics.median(a / b for a, b in zip(v['secs'], turns[base]['secs'])))
            for name, v in turns.items()}


@contextlib.contextmanager
def step_clock(net, device, classes):
    ("Seconds spent in `net`'s forward calls and in the draws (`sample`, `argmax`) of the constraint `classes` while "
     "inside: {'network', 'constraint' (seconds), 'calls', 'draws'}; CUDA is synchronised around each.")
    t = dict(network=0.0, constraint=0.0, calls=0, draws=0)
    dev = torch.device(device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == 'cuda' else (lambda: None)
    t0 = {}
    def pre(m, a): sync(); t0['net'] = time.perf_counter()
    def post(m, a, o):
        sync(); t['network'] += time.perf_counter() - t0['net']; t['calls'] += 1
    hooks = [net.register_forward_pre_hook(pre), net.register_forward_hook(post)]
    def timed_draw(f):
        @functools.wraps(f)        # the same signature: the samplers pass `free` only to a draw that takes it
        def draw(*a, **k):
            sync(); start = time.perf_counter(); out = f(*a, **k); sync()
            t['constraint'] += time.perf_counter() - start; t['draws'] += 1
            return out
        return draw
    originals = [(c, n, c.__dict__[n]) for c in classes for n in ('sample', 'argmax') if n in c.__dict__]
    for c, n, f in originals: setattr(c, n, timed_draw(f))
    try: yield t
    finally:
        for h in hooks: h.remove()
        for c, n, f in originals: setattr(c, n, f)


def split(clocks: list[dict]) -> dict:
    ("Per sampler step: milliseconds in the network and in the constraint's draw (medians over the runs' `clocks`), "
     "the draw's share of the two, and one run's timed calls and draws.")
    net = statistics.median(t['network'] / max(t['calls'], 1) for t in clocks)
    con = statistics.median(t['constraint'] / max(t['draws'], 1) for t in clocks)
    return dict(network_ms_per_step=net * 1e3, check_ms_per_step=con * 1e3, check_share=con / max(net + con, 1e-12),
                timed_calls=clocks[-1]['calls'], timed_draws=clocks[-1]['draws'])


def palindrome_rows(args, device) -> list[dict]:
    tok = ByteTokenizer()
    # rows of 32 bytes, as the palindromes-mix rows the trained models read (the preset leaves the config's default)
    sizes = dict(n_layer=1, n_embd=32, n_head=2, cond_dim=16) if args.quick else {}
    cfg, method, net = random_network('palindrome-sedd', tok, args.quick, context_length=32, **sizes)
    words = PalindromeWords(strict_words(MIN_ZIPF), token_chars(tok))
    n, steps = (4, 4) if args.quick else (args.n_samples, args.steps)
    rows = []
    for length in ([7] if args.quick else args.lengths):
        runs = {}
        for name, kw, cls in (('frame only', dict(constrained=False), Constraint), ('palindrome', {}, PalindromeConstraint),
                              ('palindrome + words', dict(words=words), PalindromeConstraint)):
            runs[name] = (lambda kw=kw: sample_palindromes(net, method, tok, [length] * n, steps=steps,
                                                           generator=torch.Generator().manual_seed(0), device=device,
                                                           batch_size=n, return_stats=True, **kw), [cls])
        turns = in_turns(runs, args.repeats, (net, device))
        for name, m in medians(turns, 'frame only').items():
            texts, st = turns[name]['result']
            rows.append(dict(model='palindrome-sedd', length=length, variant=name, n=n, steps=steps,
                             calls_per_sample=st['calls'], timed_seconds=turns[name]['secs'], seconds_per_sample=m['secs'] / n, ratio_to_unconstrained=m['ratio'],
                             palindromes=sum(t == t[::-1] for t in texts) / n, **split(turns[name]['clocks']),
                             all_words_strict=sum(map(all_strict_words, texts)) / n, examples=texts[:4]))
            print(f"{length:3d} {name:20s} {m['secs'] / n * 1e3:8.1f} ms/sample  x{m['ratio']:.2f}  calls {st['calls']}  "
                  f"network {rows[-1]['network_ms_per_step']:.1f} ms/step, draw {rows[-1]['check_ms_per_step']:.1f} ms/step")
    return rows


def regex_rows(args, device) -> list[dict]:
    tok = CharTokenizer(SHAKESPEARE_CHARS)
    sizes = dict(n_layer=1, n_embd=32, n_head=2, cond_dim=16, context_length=16, block_size=4) if args.quick else {}
    cfg, method, net = random_network('shakespeare-block', tok, args.quick, **sizes)
    n, L = (2, 16) if args.quick else (args.n_samples, args.regex_length or cfg.context_length)
    con = RegularConstraint(from_regex(PLAY, token_chars(tok)))
    runs = {name: (lambda c=c: method.sample(net, n, L, steps=L, generator=torch.Generator().manual_seed(0), device=device,
                                             constraint=c, return_stats=True), [Constraint, RegularConstraint])
            for name, c in (('unconstrained', None), ('play-format regex', con))}
    turns, rows = in_turns(runs, args.repeats, (net, device)), []
    for name, m in medians(turns, 'unconstrained').items():
        x, st = turns[name]['result']
        ok = con.check(x).double().mean().item()
        rows.append(dict(model='shakespeare-block', length=L, variant=name, n=n, steps=L, calls_per_sample=st['nfe'],
                         timed_seconds=turns[name]['secs'], seconds_per_sample=m['secs'] / n, ratio_to_unconstrained=m['ratio'], accepted=ok,
                         **split(turns[name]['clocks']), examples=tok.decode_batch(x[:2].cpu())))
        print(f"{L:3d} {name:20s} {m['secs'] / n * 1e3:8.1f} ms/sample  x{m['ratio']:.2f}  calls {st['nfe']}  "
              f"accepted {ok:.2f}  network {rows[-1]['network_ms_per_step']:.1f} ms/step, "
              f"draw {rows[-1]['check_ms_per_step']:.1f} ms/step")
    return rows


def main(argv=None):
    ap = bl.common_args(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument('--n-samples', type=int, default=32, help='samples per variant and length (one batch)')
    ap.add_argument('--steps', type=int, default=64, help='palindrome sampler steps')
    ap.add_argument('--repeats', type=int, default=3, help='timed runs per variant (the median is reported)')
    ap.add_argument('--lengths', type=int, nargs='+', default=[8, 16, 24], help='palindrome text lengths')
    ap.add_argument('--regex-length', type=int, default=None,
                    help="rows of the play-format regex (a multiple of the block size; default the preset's context)")
    args = ap.parse_args(argv)
    if args.quick: args.repeats = 1
    device = bl.setup(args)
    res = bl.new_result('constraints', args, device)
    res['rows'] = palindrome_rows(args, device) + regex_rows(args, device)
    table = bl.md_table(['model', 'length', 'variant', 'calls/sample', 'ms/sample', 'x unconstrained', 'network ms/step',
                         'draw ms/step', 'draw share', 'valid'],
                        [[r['model'], r['length'], r['variant'], r['calls_per_sample'], bl.fmt(r['seconds_per_sample'] * 1e3, 1),
                          bl.fmt(r['ratio_to_unconstrained'], 2), bl.fmt(r['network_ms_per_step'], 2),
                          bl.fmt(r['check_ms_per_step'], 2), f"{r['check_share']:.0%}",
                          bl.fmt(r.get('all_words_strict', r.get('accepted')), 2)] for r in res['rows']])
    md = ('### Sampling under constraints: cost\n\nRandom-weight networks of the presets\' sizes (the cost does not depend '
          'on training); the variants take turns, one run of each per repeat; "ms/sample": median of the runs; "x '
          'unconstrained": median of the ratios within a repeat; "network ms/step" and "draw ms/step": the time of one '
          'sampler step in the network\'s forward call and in the constraint\'s draw (where the automaton works; '
          'unconstrained: the plain draw), medians of the runs; "draw share": the draw\'s share of the two; "valid": '
          'share of samples of strict dictionary words (palindromes) or accepted by the regular expression.\n\n' + table)
    bl.save_result(res, md, bl.out_dir(args))


if __name__ == '__main__':
    main()
