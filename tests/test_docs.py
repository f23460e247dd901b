"""The rendered documentation (`make docs`, scripts/render_docs.py), checked in a real browser.

Two fast notebooks with figures are rendered into a temporary folder: 04_model_size (a matplotlib plot, equations)
and sample (a papermill workflow notebook on its IN_TEST path; its figure is an animated GIF). The folder is served
over http on localhost and opened in headless Chromium (Debian's `chromium`, driven through the DevTools protocol
on a pipe): every <img> must have loaded, each page must show a figure and load nothing from elsewhere, and the
index must link every page. Without chromium the browser test skips, unless `CI` is set: then it fails
(`.ci/run` installs chromium). The failure path (a broken notebook, a notebook past `--timeout`) is checked on
tiny notebooks made here, without a browser.
"""
import base64, fcntl, functools, http.server, json, os, re, select, shutil, subprocess, sys, threading, time
from pathlib import Path
import pytest
from conftest import ROOT

SCRIPT = ROOT / 'scripts' / 'render_docs.py'
PAGES = {'04_model_size': '04_model_size.html', 'sample': 'sample.html'}
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync']


def render(*args, timeout=300):
    "Run scripts/render_docs.py with one thread per notebook process."
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def chromium_path():
    "`$CHROMIUM`, else Debian's chromium; a skip when there is none (a failure when CI is set)."
    exe = os.environ.get('CHROMIUM') or shutil.which('chromium') or '/usr/bin/chromium'
    if not os.access(exe, os.X_OK):
        msg = f'chromium not found ({exe}): apt-get install -y chromium (.ci/run does)'
        if os.environ.get('CI'): pytest.fail(msg)
        pytest.skip(msg)
    return exe


class Chromium:
    "Headless Chromium driven through the DevTools protocol on a pipe (fds 3 and 4, messages ending in NUL)."
    def __init__(self, exe, user_data_dir):
        to_chrome, self._out = os.pipe()
        self._in, from_chrome = os.pipe()
        # numbers >= 10 so that bash's `3<&A 4>&B` cannot overwrite one with the other
        hi = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome, from_chrome)]
        os.close(to_chrome); os.close(from_chrome)
        self._log = open(Path(user_data_dir).parent / 'chromium.log', 'w')
        self.proc = subprocess.Popen(
            ['/bin/bash', '-c', f'exec "$0" "$@" 3<&{hi[0]} 4>&{hi[1]} {hi[0]}<&- {hi[1]}>&-', exe, *CHROMIUM_FLAGS,
             f'--user-data-dir={user_data_dir}', '--remote-debugging-pipe', 'about:blank'],
            pass_fds=hi, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        for fd in hi: os.close(fd)
        self._buf, self._id, self.events = b'', 0, []

    def _read(self, deadline):
        while b'\0' not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise TimeoutError('no answer from chromium')
            chunk = os.read(self._in, 1 << 20)
            if not chunk: raise RuntimeError(f'chromium closed the pipe (exit {self.proc.poll()})')
            self._buf += chunk
        msg, self._buf = self._buf.split(b'\0', 1)
        return json.loads(msg)

    def send(self, method, params=None, session=None, timeout=30):
        "Send one command and return its result (events that arrive meanwhile are kept in `events`)."
        self._id += 1
        msg = dict(id=self._id, method=method, params=params or {}, **({'sessionId': session} if session else {}))
        os.write(self._out, json.dumps(msg).encode() + b'\0')
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(deadline)
            if m.get('id') == self._id:
                if 'error' in m: raise RuntimeError(f'{method}: {m["error"]}')
                return m['result']
            self.events.append(m)

    def wait_event(self, method, session, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.events):
                if m.get('method') == method and m.get('sessionId') == session: return self.events.pop(i)
            self.events.append(self._read(deadline))

    def inspect(self, url, expression):
        "Open `url` in a new tab, wait for its load event, return `expression` evaluated there."
        target = self.send('Target.createTarget', {'url': 'about:blank'})['targetId']
        sid = self.send('Target.attachToTarget', {'targetId': target, 'flatten': True})['sessionId']
        try:
            self.send('Page.enable', session=sid)
            nav = self.send('Page.navigate', {'url': url}, session=sid)
            assert 'errorText' not in nav, f'{url}: {nav["errorText"]}'
            self.wait_event('Page.loadEventFired', sid)
            res = self.send('Runtime.evaluate', {'expression': expression, 'awaitPromise': True,
                                                 'returnByValue': True}, session=sid)
            assert 'exceptionDetails' not in res, res['exceptionDetails']
            return res['result']['value']
        finally:
            self.send('Target.closeTarget', {'targetId': target})

    def close(self):
        try: self.send('Browser.close', timeout=10)
        except Exception: pass
        try: self.proc.wait(10)
        except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        os.close(self._in); os.close(self._out); self._log.close()


PAGE_JS = r"""(async () => {
  const imgs = [...document.images];
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  const math = [...document.querySelectorAll('math')];
  return {
    images: imgs.map(i => ({src: i.getAttribute('src').slice(0, 40), width: i.naturalWidth})),
    figures: document.querySelectorAll('.jp-OutputArea-output img').length,
    math: math.length, math_laid_out: math.filter(m => m.getBoundingClientRect().width > 0).length,
    code: [...document.querySelectorAll('.jp-InputArea-editor')].map(e => e.innerText),
    links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
    resources: performance.getEntriesByType('resource').map(e => e.name),
    title: document.title,
  };
})()"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "Two notebooks rendered by scripts/render_docs.py and served over http on localhost."
    out = tmp_path_factory.mktemp('docs') / 'site'
    r = render('--only', *PAGES, '--out', str(out), '--timeout', '240')
    assert r.returncode == 0, f'render_docs failed:\n{r.stdout}\n{r.stderr[-6000:]}'
    handler = functools.partial(QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield out, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown(); server.server_close()


@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    exe = chromium_path()
    c = Chromium(exe, tmp_path_factory.mktemp('chromium') / 'profile')
    yield c
    c.close()


def test_pages_show_their_figures(browser, site):  # browser first: no rendering when it is missing
    out, base = site
    for name, page in PAGES.items():
        p = browser.inspect(f'{base}/{page}', PAGE_JS)
        assert p['images'], f'{page}: no <img> at all'
        broken = [i['src'] for i in p['images'] if i['width'] == 0]
        assert not broken, f'{page}: images that did not load: {broken}'
        assert p['figures'] >= 1, f'{page}: no figure among the cell outputs'
        foreign = [u for u in p['resources'] if not u.startswith(base + '/')]
        assert not foreign, f'{page}: loads resources from elsewhere: {foreign}'
        directives = [c for c in p['code'] if re.search(r'^\s*#\s*\|', c, re.M)]
        assert not directives, f'{page}: nbdev directives left in the code: {directives[:2]}'
        assert {'index.html'} <= set(p['links']), f'{page}: no link back to the contents'
    model_size = browser.inspect(f'{base}/04_model_size.html', PAGE_JS)
    assert model_size['title'] == 'Model size'
    assert model_size['math'] > 10, 'equations not rendered as MathML'
    assert model_size['math_laid_out'] == model_size['math'], 'MathML elements the browser did not lay out'
    assert any(i['src'].startswith('data:image/png') for i in model_size['images'])
    sample = browser.inspect(f'{base}/sample.html', PAGE_JS)
    assert any(i['src'].startswith('data:image/gif') for i in sample['images']), 'the denoising GIF is missing'


def test_index_links_every_page(browser, site):
    out, base = site
    idx = browser.inspect(f'{base}/index.html', PAGE_JS)
    pages = [l for l in idx['links'] if l.endswith('.html')]
    test_pages = list(PAGES.values())
    assert pages == test_pages, f'index links {pages}, expected {test_pages} in reading order'
    assert sorted(p.name for p in out.glob('*.html')) == sorted([*test_pages, 'index.html'])
    text = (out / 'index.html').read_text()
    assert 'Model size' in text and 'Parameters, training and inference memory' in text  # title and summary


# ---------------------------------------------------------------- the failure path, on tiny notebooks, no browser

PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=='


def write_nb(path, cells):
    "A minimal notebook from (kind, source) pairs."
    nb = dict(nbformat=4, nbformat_minor=5, metadata=dict(kernelspec=dict(name='python3', language='python',
                                                                           display_name='Python 3')),
              cells=[dict(cell_type=k, id=f'c{i}', metadata={}, source=s,
                          **(dict(outputs=[], execution_count=None) if k == 'code' else {}))
                     for i, (k, s) in enumerate(cells)])
    path.write_text(json.dumps(nb, indent=1))


def test_failures_are_named_and_the_other_pages_written(tmp_path):
    nbs, out = tmp_path / 'nbs', tmp_path / 'out'
    nbs.mkdir()
    (tmp_path / 'settings.ini').write_text('[DEFAULT]\ntst_flags = slow\n')  # the project root, as nbdev finds it
    (tmp_path / 'pic.png').write_bytes(base64.b64decode(PNG_1X1))
    write_nb(nbs / '00_fine.ipynb', [
        ('markdown', '# Fine\n\n> A notebook that runs.\n\n![pic](pic.png) Next: [the broken one](01_broken.ipynb).'),
        ('code', '#| export\nanswer = 6 * 7'),
        ('code', "#| slow\nprint('SLOW' + 'RAN')"),
        ('code', '#| hide\nhidden_marker = 1'),
        ('code', "import os\nprint('IN_TEST is', os.environ.get('IN_TEST'), 'answer', answer)")])
    write_nb(nbs / '01_broken.ipynb', [
        ('markdown', '# Broken\n\n> A notebook that fails.'),
        ('code', 'x = 1'),
        ('code', "raise ValueError('broken on purpose')"),
        ('code', "print('NEVER' + 'PRINTED')")])
    write_nb(nbs / '02_stuck.ipynb', [
        ('markdown', '# Stuck\n\n> A notebook past the timeout.'),
        ('code', 'import time\ntime.sleep(60)')])
    before = {p.name: p.read_bytes() for p in nbs.iterdir()}
    r = render('--nbs', str(nbs), '--out', str(out), '--timeout', '4', '--workers', '3', timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "01_broken.ipynb failed at cell #3" in r.stderr and 'ValueError: broken on purpose' in r.stderr
    assert '02_stuck.ipynb failed at cell #2' in r.stderr and 'TimeoutError' in r.stderr
    assert '00_fine' not in r.stderr
    assert {p.name: p.read_bytes() for p in nbs.iterdir()} == before, 'the notebook folder changed'
    fine = (out / '00_fine.html').read_text()
    assert 'IN_TEST is 1 answer 42' in fine
    assert 'SLOWRAN' not in fine, 'a #| slow cell ran'
    assert 'Not run here' in fine and 'hidden_marker' not in fine and '#| export' not in fine
    assert '<img alt="pic" src="data:image/png;base64,' in fine, 'an image relative to the project root not embedded'
    assert '<a href="01_broken.html">the broken one</a>' in fine
    broken = (out / '01_broken.html').read_text()
    assert 'This page is incomplete' in broken and 'broken on purpose' in broken and 'NEVERPRINTED' not in broken
    index = (out / 'index.html').read_text()
    assert all(f'href="{n}.html"' in index for n in ('00_fine', '01_broken', '02_stuck'))
    assert index.count('incomplete: execution failed') == 2


def test_bad_arguments_are_refused(tmp_path):
    r = render('--only', 'no_such_notebook', '--out', str(tmp_path / 'out'))
    assert r.returncode != 0 and 'no notebook named no_such_notebook' in r.stderr and '04_model_size' in r.stderr
    r = render('--out', str(ROOT / 'nbs' / 'site'))
    assert r.returncode != 0 and 'inside the notebook folder' in r.stderr
    assert not (ROOT / 'nbs' / 'site').exists()
