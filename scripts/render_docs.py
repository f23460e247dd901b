#!/usr/bin/env python
"""Execute the notebooks the way `nbdev_test` does and render each one to a static HTML page with its figures.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/render_docs.py                 # every notebook in nbs/ -> _docs/
    OMP_NUM_THREADS=1 .venv/bin/python scripts/render_docs.py --only 10_data_analysis 03_model --out /tmp/docs

Execution follows `nbdev_test`: each notebook runs in an execnb `CaptureShell` from inside its folder with
`IN_TEST=1` (the papermill workflow notebooks take their smoke-test path), and a code cell is skipped when its
leading `#|` directives name a flag of `tst_flags` in settings.ini (`#| slow`), when `#| eval: false`, or when it
calls `nbdev_export(`. Each notebook runs in a fresh process (two at a time by default). The executed copies stay
in memory: only the HTML pages and `index.html` (the pages in reading order, with each notebook's title and
summary) are written, under `--out`. Pages are self-contained: figures as data URIs, equations as MathML, no
scripts. A notebook that fails or times out still gets its page (up to the failing cell, with the error), and
the command exits 1 naming the notebook and the cell.
"""
import argparse, concurrent.futures, html, json, os, re, signal, subprocess, sys, tempfile, time, traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORKFLOW_ORDER = ['train', 'sample', 'palindromes']  # after the numbered module notebooks
DIRECTIVE_RE = re.compile(r'^\s*#\s*\|')


# ---------------------------------------------------------------- notebooks, titles, reading order

def page_name(nb_path: Path) -> str:
    "The HTML file of a notebook (`index.ipynb` is the README, `index.html` the table of contents)."
    return 'readme.html' if nb_path.stem == 'index' else nb_path.stem + '.html'


def reading_order(paths):
    "index first, then the numbered notebooks, then the workflow notebooks, then any others by name."
    def key(p):
        if p.stem == 'index': return (0, 0, '')
        if m := re.match(r'^(\d+)[a-z]*_', p.stem): return (1, int(m[1]), p.stem)     # 00_, 00a_, 00b_, ... 16a_
        if p.stem in WORKFLOW_ORDER: return (2, WORKFLOW_ORDER.index(p.stem), '')
        return (3, 0, p.stem)
    return sorted(paths, key=key)


def find_notebooks(nbs: Path):
    "The notebooks `nbdev_test` would run: `*.ipynb` not starting with `_` or `.`, none beside a `.notest` file."
    if (nbs / '.notest').exists(): return []
    return reading_order([p for p in nbs.glob('*.ipynb') if not re.match(r'^[_.]', p.name)])


def title_summary(nb_path: Path):
    "The `# Title` and the `> summary` line of a notebook's first markdown cell."
    cells = json.loads(nb_path.read_text(encoding='utf-8')).get('cells', [])
    src = next((''.join(c['source']) for c in cells if c['cell_type'] == 'markdown'), '')
    title = next((l[2:].strip() for l in src.splitlines() if l.startswith('# ')), nb_path.stem)
    summary = next((l[1:].strip() for l in src.splitlines() if l.startswith('>')), '')
    return title, summary


def select(notebooks, only):
    "The notebooks named in `--only` (with or without `.ipynb`), in reading order."
    if not only: return notebooks
    by_name = {p.stem: p for p in notebooks}
    wanted = [n[:-len('.ipynb')] if n.endswith('.ipynb') else n for n in only]
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise SystemExit(f"render_docs: no notebook named {', '.join(unknown)}; "
                         f"choose from: {' '.join(by_name)}")
    return [p for p in notebooks if p.stem in wanted]


# ---------------------------------------------------------------- execution (in the child process)

def skip_flags(nbs: Path):
    "The flags whose cells `nbdev_test` skips: `tst_flags` of the settings.ini nbdev finds (nbdev's default: notest)."
    import configparser
    for d in [nbs, *nbs.parents, REPO]:
        if (d / 'settings.ini').is_file():
            cfg = configparser.ConfigParser(); cfg.read(d / 'settings.ini', encoding='utf-8')
            return set(cfg['DEFAULT'].get('tst_flags', 'notest').split())
    return {'notest'}


def _no_eval(cell, flags):
    "nbdev_test's rule: skip markdown, `nbdev_export(` calls, `#| eval: false` and cells flagged with a skip flag."
    if cell.cell_type != 'code': return True
    if 'nbdev_export' + '(' in cell.source: return True
    direc = getattr(cell, 'directives_', {}) or {}
    if direc.get('eval:', [''])[0].lower() == 'false': return True
    return bool(flags & direc.keys())


def execute(src: Path, flags, timeout: float):
    "Run `src` like nbdev_test; return the executed notebook (execnb form) and the error (None when all ran)."
    from execnb.nbio import read_nb
    from execnb.shell import CaptureShell
    from nbdev.process import NBProcessor, extract_directives, nb_lang
    from nbdev.frontmatter import FrontmatterProc
    from fastcore.basics import str2bool
    os.environ['IN_TEST'] = '1'
    nb = read_nb(src)
    for cell in nb.cells:  # directives removed from the source, as nbdev_test runs it
        cell.directives_ = extract_directives(cell, remove=True) if cell.cell_type == 'code' else {}
    fm = getattr(NBProcessor(src, procs=FrontmatterProc, process=True).nb, 'frontmatter_', {})
    if str2bool(fm.get('skip_exec', False)) or nb_lang(nb) != 'python':
        return nb, None
    os.chdir(src.parent)
    sys.path.insert(0, str(REPO))
    shell, deadline, error = CaptureShell(src), time.monotonic() + timeout, None
    for cell in nb.cells:
        if _no_eval(cell, flags):
            if cell.cell_type == 'code' and flags & cell.directives_.keys():
                names = ' '.join(sorted(flags & cell.directives_.keys()))
                cell.metadata['docs_note'] = (f'Not run here: a <code>#| {html.escape(names)}</code> cell '
                                              '(nbdev_test skips it too).')
            continue
        left = deadline - time.monotonic()
        if left < 1:
            error = dict(cell=cell.idx_ + 1, id=cell.get('id'), line=_first_line(cell.source),
                         error=f'TimeoutError: the notebook ran past --timeout {timeout:g} s before this cell')
            break
        shell.timeout = int(left)
        shell.cell(cell)
        cell.ran_ = True
        if shell.exc is not None:
            exc = shell.exc
            msg = f'TimeoutError: the notebook ran past --timeout {timeout:g} s' if isinstance(exc, TimeoutError) \
                else ''.join(traceback.format_exception_only(type(exc), exc)).strip()
            error = dict(cell=cell.idx_ + 1, id=cell.get('id'), line=_first_line(cell.source), error=msg,
                         traceback=_strip_ansi(shell.prettytb(fname=src)))
            break
    return nb, error


def _first_line(source):
    return next((l for l in source.splitlines() if l.strip()), '')[:100]


def _strip_ansi(s): return re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', s)


def run_notebook(spec):
    "Execute one notebook (in the child process); return its result record with the page-ready notebook."
    src = Path(spec['src'])
    t0 = time.monotonic()
    nb, error = execute(src, set(spec['flags']), spec['timeout'])
    seconds = time.monotonic() - t0
    n_fig = sum(1 for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', [])
                if any(k.startswith('image/') for k in o.get('data', {})))
    unshown = [c.idx_ + 1 for c in nb.cells if c.get('ran_') and FIGURE_RE.search(c.source) and not _has_image(c)]
    return dict(name=src.name, ok=error is None, error=error, seconds=round(seconds, 1), figures=n_fig,
                unshown=unshown, nb=page_dict(clean_for_page(nb)))


FIGURE_RE = re.compile(r'^\S.*\bplt\.(subplots|figure)\(', re.M)  # a figure made at top level, not inside a def


def _has_image(cell):
    return any(k.startswith('image/') for o in cell.get('outputs', []) for k in o.get('data', {}))


def clean_for_page(nb):
    "Drop what nbdev's docs hide (`#| hide`, `#| include: false`, empty cells) and the directive lines left."
    keep = []
    for cell in nb.cells:
        d = cell.get('directives_', {}) or {}
        if cell.cell_type == 'code':
            if 'hide' in d or d.get('include:', [''])[0].lower() == 'false': continue
            lines = cell.source.splitlines(True)
            while lines and DIRECTIVE_RE.match(lines[0]): lines.pop(0)
            cell.source = ''.join(lines).strip('\n')
            if d.get('echo:', [''])[0].lower() == 'false': cell.metadata['transient'] = {'remove_source': True}
            if d.get('output:', [''])[0].lower() == 'false': cell.outputs = []
            if not cell.source and not cell.get('outputs'): continue
            outs = cell.get('outputs', [])
            if any(o.get('output_type') == 'stream' and 'Traceback' in ''.join(o.get('text', '')) for o in outs):
                cell.outputs = [o for o in outs if o.get('output_type') != 'error']  # IPython printed it already
        keep.append(cell)
    nb.cells = keep
    return nb


def page_dict(nb):
    "The executed notebook as a plain notebook dict, execnb's bookkeeping attributes dropped."
    from execnb.nbio import nb2dict
    d = nb2dict(nb)
    for c in d['cells']:
        for k in [k for k in c if k.endswith('_')]: c.pop(k)
        if c['cell_type'] == 'code':
            c.setdefault('outputs', []); c.setdefault('execution_count', None)
    d.pop('path_', None)
    return d


# ---------------------------------------------------------------- rendering (in the parent process)

TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block extra_css %}<style type="text/css">{{ resources.docs_css }}</style>{% endblock extra_css %}
{%- block body_header -%}{{ super() }}{{ resources.docs_nav }}{{ resources.docs_banner }}{%- endblock body_header -%}
{% block body_footer %}{{ resources.docs_nav }}{{ super() }}{% endblock body_footer %}
{% block data_priority scoped %}{%- if 'image/gif' in output.get('data', {}) -%}
<div class="jp-RenderedImage jp-OutputArea-output">
<img src="data:image/gif;base64,{{ output.data['image/gif'] | escape_html }}"></div>
{%- else -%}{{ super() }}{%- endif -%}{% endblock data_priority %}
{% block input_group %}{{ super() }}{%- if cell.metadata.get('docs_note') -%}
<div class="docs-note">{{ cell.metadata.docs_note }}</div>{%- endif -%}{% endblock input_group %}
"""

CSS = """
body.jp-Notebook { max-width: 1100px; margin: 0 auto; padding: 0 1em; }
nav.docs-nav { display: flex; justify-content: space-between; gap: 1em; padding: .6em 0; margin: .5em 0;
  border-bottom: 1px solid #ddd; font: 14px/1.4 system-ui, sans-serif; }
nav.docs-nav:last-child { border-bottom: none; border-top: 1px solid #ddd; }
nav.docs-nav a { text-decoration: none; color: #0b5cad; }
.docs-note { font: 12px system-ui, sans-serif; color: #666; padding: .2em .6em; }
.docs-failed { background: #fde8e8; border: 1px solid #e0a0a0; padding: .6em 1em; margin: 1em 0;
  font: 14px/1.4 system-ui, sans-serif; white-space: pre-wrap; }
math[display="block"] { margin: .6em 0; }
.jp-RenderedHTMLCommon img, .jp-OutputArea-output img { max-width: 100%; height: auto; }
"""


def _math_renderer():
    "nbconvert's markdown renderer with equations converted to MathML (no script needed to read them)."
    import latex2mathml.converter
    from nbconvert.filters.markdown_mistune import IPythonRenderer

    class MathMLRenderer(IPythonRenderer):
        def _mathml(self, tex, display, fallback):
            try: return latex2mathml.converter.convert(tex.strip(), display='block' if display else 'inline')
            except Exception: return f'<code class="docs-tex">{self.escape_html(fallback)}</code>'
        def block_math(self, body): return self._mathml(body, True, f'$${body}$$')
        def inline_math(self, body): return self._mathml(body, False, f'${body}$')
        def latex_environment(self, name, body):
            tex = f'\\begin{{{name}}}{body}\\end{{{name}}}'
            return self._mathml(tex, True, tex)
        def link(self, text, url, title=None):
            "A relative link to a notebook goes to its page; to another project file, to that file from the page."
            if not re.match(r'^[a-z][a-z0-9+.-]*:|^#|^/', url, re.I):
                target, _, frag = url.partition('#')
                for root in self.image_roots:
                    f = Path(root, target)
                    if f.suffix == '.ipynb' and f.is_file():
                        url = page_name(f) + ('#' + frag if frag else ''); break
                    if f.exists() and self.out_dir:
                        url = os.path.relpath(f, self.out_dir) + ('#' + frag if frag else ''); break
            return super().link(text, url, title)
        def _src_to_base64(self, src):
            "Embed an image found beside the notebook, or else under the project root (README-relative links)."
            for root in self.image_roots:
                self.path = root
                if (url := super()._src_to_base64(src)) is not None: return url
            return None
    return MathMLRenderer


def make_exporter():
    "nbconvert's HTML exporter (lab template) without prompts or external scripts, equations as MathML."
    import jinja2
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import MarkdownWithMath
    renderer_cls = _math_renderer()

    class DocsExporter(HTMLExporter):
        @jinja2.pass_context
        def markdown2html(self, context, source):
            cell = context.get('cell', {})
            resources = context.get('resources', {})
            path = resources.get('metadata', {}).get('path', '')
            renderer = renderer_cls(escape=False, attachments=cell.get('attachments', {}),
                                    embed_images=self.embed_images, path=path,
                                    anchor_link_text=self.anchor_link_text,
                                    exclude_anchor_links=self.exclude_anchor_links)
            renderer.image_roots = resources.get('docs_image_roots') or [path]
            renderer.out_dir = resources.get('docs_out')
            return MarkdownWithMath(renderer=renderer).render(source)

    return DocsExporter(template_name='lab', template_file='docs.html.j2', embed_images=True,
                        exclude_input_prompt=True, exclude_output_prompt=True,
                        extra_loaders=[jinja2.DictLoader({'docs.html.j2': TEMPLATE})])


def image_roots(src: Path):
    "Where a notebook's images and links are looked for: its folder, then the project root (with settings.ini)."
    root = next((d for d in src.parents if (d / 'settings.ini').is_file()), None)
    return [str(src.parent)] + ([str(root)] if root and root != src.parent else [])


def write_page(spec, result, exporter):
    "Render an executed notebook (parent process) to its HTML page."
    import nbformat
    from nbformat.v4.rwbase import rejoin_lines
    src, out = Path(spec['src']), Path(spec['out'])
    node = rejoin_lines(nbformat.from_dict(result['nb']))  # line lists joined, as reading a file does; not validated
    node.metadata['title'] = spec['title']
    body, _ = exporter.from_notebook_node(node, resources=dict(
        metadata=dict(name=src.stem, path=str(src.parent)), docs_image_roots=image_roots(src),
        docs_out=str(out.parent), docs_css=CSS, docs_nav=nav_html(spec.get('prev'), spec.get('next')),
        docs_banner=banner_html(src.name, result['error'])))
    write_atomic(out, body)


def nav_html(prev, nxt):
    "Links to the previous page, the contents and the next page."
    link = lambda l, text: f'<a href="{html.escape(l[0])}">{text}</a>' if l else '<span></span>'
    return (f'<nav class="docs-nav">{link(prev, "&larr; " + html.escape(prev[1]) if prev else "")}'
            f'<a href="index.html">Contents</a>{link(nxt, html.escape(nxt[1]) + " &rarr;" if nxt else "")}</nav>')


def banner_html(name, error):
    if not error: return ''
    return (f'<div class="docs-failed"><b>This page is incomplete:</b> executing {html.escape(name)} failed at cell '
            f'#{error["cell"]} (id {html.escape(str(error["id"]))}, <code>{html.escape(error["line"])}</code>):\n'
            f'{html.escape(error["error"])}</div>')


def write_atomic(path: Path, text: str):
    "Write `text` to `path` through a temporary file in the same folder, fsync, rename."
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', dir=path.parent)
    umask = os.umask(0); os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # a page, not a secret: the mode a plain open() would give
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(text); f.flush(); os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True); raise


# ---------------------------------------------------------------- the index and the driver (parent process)

def index_html(entries, project, description):
    "The table of contents: every page in reading order with its title and summary."
    import mistune
    md = mistune.create_markdown(escape=True)
    inline = lambda s: re.sub(r'^<p>|</p>\s*$', '', md(s).strip())
    items = []
    for e in entries:
        status = '' if e.get('ok', True) else ' <span class="failed">(incomplete: execution failed)</span>'
        items.append(f'<li><a href="{html.escape(e["page"])}">{html.escape(e["title"])}</a>{status}'
                     f'<div class="summary">{inline(e["summary"])}</div>'
                     f'<div class="src">{html.escape(e["name"])}</div></li>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{html.escape(project)}: contents</title>
<style>
body {{ max-width: 900px; margin: 2em auto; padding: 0 1em; font: 16px/1.5 system-ui, sans-serif; color: #222; }}
ol {{ padding-left: 1.5em; }} li {{ margin: .8em 0; }} a {{ color: #0b5cad; font-weight: 600; text-decoration: none; }}
.summary {{ color: #444; }} .src {{ color: #888; font-size: 12px; font-family: monospace; }} .failed {{ color: #b00; }}
code {{ background: #f3f3f3; padding: 0 .2em; }} .note {{ color: #666; font-size: 14px; }}
</style></head><body>
<h1>{html.escape(project)}</h1>
<p>{inline(description)}</p>
<p class="note">The notebooks of <code>nbs/</code>, executed as <code>nbdev_test</code> runs them
(<code>IN_TEST=1</code>: small settings; cells marked <code>#| slow</code> are not run), in reading order.</p>
<ol>
{chr(10).join(items)}
</ol></body></html>
"""


def run_child(spec, timeout):
    "Execute one notebook in a fresh process (its own session, so a hung one is killed with its children)."
    fail = lambda msg, log: dict(name=Path(spec['src']).name, ok=False, figures=0, seconds=None, unshown=[],
                                 nb=None, error=dict(cell='?', id=None, line='', error=msg), log=log)
    with tempfile.NamedTemporaryFile('r', suffix='.json') as res:
        cmd = [sys.executable, str(Path(__file__).resolve()), '--child', json.dumps(spec), '--result', res.name]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try: log, _ = proc.communicate(timeout=timeout + 120)  # the child stops itself at `timeout`; a backstop
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL); log, _ = proc.communicate()
            return fail(f'killed: no answer {timeout + 120:g} s after start', log)
        text = Path(res.name).read_text()
    if proc.returncode != 0 or not text: return fail(f'the notebook runner exited with status {proc.returncode}', log)
    return dict(json.loads(text), log=log)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--only', nargs='+', metavar='NAME', help='render only these notebooks (e.g. 10_data_analysis)')
    ap.add_argument('--out', default=str(REPO / '_docs'), help='output folder (default: _docs)')
    ap.add_argument('--nbs', default=str(REPO / 'nbs'), help='notebook folder (default: nbs)')
    ap.add_argument('--timeout', type=float, default=600, help='seconds one notebook may run (default: 600)')
    ap.add_argument('--workers', type=int, default=2, help='notebooks executed at once (default: 2)')
    ap.add_argument('--child', help=argparse.SUPPRESS)
    ap.add_argument('--result', help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        Path(args.result).write_text(json.dumps(run_notebook(json.loads(args.child))))
        return 0

    nbs, out = Path(args.nbs).resolve(), Path(args.out).resolve()
    if not nbs.is_dir(): raise SystemExit(f'render_docs: notebook folder {nbs} not found; pass --nbs DIR')
    if out == nbs or nbs in out.parents:
        raise SystemExit(f'render_docs: --out {out} is inside the notebook folder, which stays clean; '
                         'choose another folder')
    if args.timeout <= 0 or args.workers < 1: raise SystemExit('render_docs: --timeout must be > 0 and --workers >= 1')
    notebooks = find_notebooks(nbs)
    if not notebooks: raise SystemExit(f'render_docs: no notebooks in {nbs}')
    chosen = select(notebooks, args.only)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    flags = sorted(skip_flags(nbs))
    meta = {p: (page_name(p), *title_summary(p)) for p in notebooks}
    # pages linked from prev/next and the index: the ones rendered now and the ones an earlier run left in --out
    linked = [p for p in notebooks if p in chosen or (out / meta[p][0]).exists()]
    specs = []
    for p in chosen:
        i = linked.index(p)
        prev = (meta[linked[i - 1]][0], meta[linked[i - 1]][1]) if i > 0 else None
        nxt = (meta[linked[i + 1]][0], meta[linked[i + 1]][1]) if i + 1 < len(linked) else None
        specs.append(dict(src=str(p), out=str(out / meta[p][0]), title=meta[p][1], prev=prev, next=nxt,
                          flags=flags, timeout=args.timeout))

    t0, results = time.monotonic(), {}
    print(f'render_docs: {len(specs)} notebook(s) -> {out} ({args.workers} at a time)', flush=True)
    with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
        futures = {pool.submit(run_child, s, args.timeout): s for s in specs}
        exporter = make_exporter()  # nbconvert loads while the first notebooks run
        for fut in concurrent.futures.as_completed(futures):  # pages are written here while the others run
            spec = futures[fut]
            r = results[Path(spec['src'])] = fut.result()
            r['page_written'] = False
            if r['nb'] is not None:
                try: write_page(spec, r, exporter); r['page_written'] = True
                except Exception as e:
                    r.update(ok=False, log=traceback.format_exc(),
                             error=dict(cell='?', id=None, line='', error=f'rendering the page failed: {e!r}'))
            took = f"{r['seconds']:6.1f} s" if r['seconds'] is not None else '     ? s'
            status = 'ok    ' if r['ok'] else 'FAILED'
            print(f"  {status} {r['name']:<28} {took}  {r['figures']} figure(s)", flush=True)
            if r.get('unshown'):
                cells = ', #'.join(map(str, r['unshown']))
                print(f"         {r['name']}: cell(s) #{cells} make a figure but show none "
                      "(saved or closed instead of displayed?)", flush=True)

    entries = [dict(name=p.name, page=meta[p][0], title=meta[p][1], summary=meta[p][2],
                    ok=results[p]['ok'] if p in results else True)
               for p in linked if p not in results or results[p]['page_written']]
    readme = nbs / 'index.ipynb'
    project, description = title_summary(readme) if readme.exists() else (REPO.name, '')
    write_atomic(out / 'index.html', index_html(entries, project, description))
    failed = [results[p] for p in chosen if not results[p]['ok']]
    written = sum(results[p]['page_written'] for p in chosen)
    print(f'render_docs: {written} page(s) written, {len(failed)} notebook(s) failed, '
          f'{time.monotonic() - t0:.0f} s; open {out / "index.html"}')
    for r in failed:
        e = r['error']
        where = f" at cell #{e['cell']} (id {e['id']}: {e['line']!r})" if e['cell'] != '?' else ''
        sys.stderr.write(f"\n{'=' * 70}\n{r['name']} failed{where}:\n{e['error']}\n"
                         f"{e.get('traceback', '') or r.get('log', '')[-4000:]}\n")
    if failed:
        names = [r['name'] + (f" (cell #{r['error']['cell']})" if r['error']['cell'] != '?' else '') for r in failed]
        sys.stderr.write(f"\nrender_docs: failed: {', '.join(names)}\n")
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
