#!/usr/bin/env python
"""Real-browser test of the Fig. A.1 explorer: JupyterLab + Debian's chromium driven by Playwright.

Installs what is missing (Debian `chromium` with apt-get when running as root, pip `playwright`; Playwright never
downloads a browser: it drives the system chromium through `executable_path`), starts JupyterLab on 127.0.0.1 on a
free port with a random token in a scratch folder (a copy of the notebook beside links to the repo's folders, so
the repo's notebook is never saved over), opens the widgets notebook (nbs/*_widgets.ipynb), runs all cells, checks that the widgets
rendered (no "Error displaying widget", no error output), moves the real explorer's `T after` slider and checks
that the image changed, saves screenshots under benchmarks/results/browser/ and stops the server.

    python tools/browser_test.py            # exit status 0 = passed; about a minute
"""
import argparse, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = str(next(ROOT.glob('nbs/*_widgets.ipynb')).relative_to(ROOT))  # found by name: renumbering must not break it
EXPLORER = '.metaaug-figa1'  # CSS class of FigA1Explorer.widget

def log(*a): print('[browser-test]', *a, flush=True)

def ensure_chromium() -> str:
    "Path of a chromium binary; installs Debian's package when missing (needs root)."
    for name in ('chromium', 'chromium-browser'):
        if shutil.which(name): return shutil.which(name)
    if os.geteuid() != 0: sys.exit('browser test: chromium is missing and we are not root: apt-get install chromium')
    log('installing chromium with apt-get')
    env = {**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'}
    subprocess.run(['apt-get', 'update', '-q'], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(['apt-get', 'install', '-y', '-q', '--no-install-recommends', 'chromium', 'fonts-dejavu-core'], check=True, env=env, stdout=subprocess.DEVNULL)
    return shutil.which('chromium')

def ensure_playwright():
    "Import playwright, pip-installing it (package only, no browser download) when missing."
    try: import playwright  # noqa: F401
    except ImportError:
        log('installing playwright with pip')
        subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', 'playwright'], check=True)

def free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def scratch_tree(tmp:Path, inject_error:bool=False) -> Path:
    "A folder with a copy of the notebook folder and links to the repo's other folders it reads."
    work = tmp/'work'; work.mkdir()
    shutil.copytree(ROOT/'nbs', work/'nbs', ignore=shutil.ignore_patterns('.ipynb_checkpoints'))
    (work/'benchmarks').symlink_to(ROOT/'benchmarks')
    if inject_error:  # self-check: a last cell that raises must make the test fail
        nb = json.loads((work/NOTEBOOK).read_text())
        nb['cells'].append({'cell_type': 'code', 'execution_count': None, 'id': 'injected', 'metadata': {}, 'outputs': [],
                            'source': ["raise RuntimeError('injected by browser_test --inject_error')"]})
        (work/NOTEBOOK).write_text(json.dumps(nb))
    return work

def lab_settings(cfg:Path):
    "User settings: no autosave, no windowed notebook (every cell in the DOM), no news check."
    s = cfg/'lab'/'user-settings'/'@jupyterlab'
    files = {'docmanager-extension/plugin': {'autosave': False},
             'notebook-extension/tracker': {'windowingMode': 'none'},
             'apputils-extension/notification': {'fetchNews': 'false', 'checkForUpdates': False}}
    for name, v in files.items():
        p = s/f'{name}.jupyterlab-settings'; p.parent.mkdir(parents=True, exist_ok=True); p.write_text(json.dumps(v))

def start_lab(work:Path, tmp:Path, port:int, token:str):
    env = {**os.environ, 'JUPYTER_CONFIG_DIR': str(tmp/'cfg'), 'JUPYTER_DATA_DIR': str(tmp/'data'),
           'JUPYTER_RUNTIME_DIR': str(tmp/'rt'), 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '1')}
    env.pop('MPLBACKEND', None)  # the kernel uses the inline backend
    lab_settings(tmp/'cfg')
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--ServerApp.ip=127.0.0.1', f'--ServerApp.port={port}',
           '--ServerApp.port_retries=0', f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={work}',
           '--LabApp.news_url=', '--allow-root']
    proc = subprocess.Popen(cmd, env=env, stdout=open(tmp/'lab.log', 'w'), stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}'
    for _ in range(120):
        if proc.poll() is not None: break
        try:
            urllib.request.urlopen(f'{url}/api/status?token={token}', timeout=2); return proc, url
        except OSError: time.sleep(0.5)
    proc.terminate(); sys.exit(f'browser test: JupyterLab did not start:\n' + (tmp/'lab.log').read_text()[-3000:])

def n_code_cells(path:Path) -> int: return sum(c['cell_type'] == 'code' for c in json.loads(path.read_text())['cells'])

def accept_dialogs(page, wait_ms:int=3000) -> list[str]:
    "Accept any JupyterLab dialog (the notebooks carry no kernelspec, so Lab asks which kernel: the default, python3)."
    seen, t0 = [], time.time()
    while time.time() - t0 < wait_ms / 1000:
        d = page.locator('.jp-Dialog')
        if d.count():
            seen.append(d.first.inner_text().replace('\n', ' ')[:200])
            d.first.locator('.jp-Dialog-button.jp-mod-accept').first.click(); page.wait_for_timeout(500)
        else: page.wait_for_timeout(250)
    return seen

def run_all(page, n_code:int, timeout_s:float):
    "Run > Run All Cells, then wait until every code cell has an execution count."
    page.locator('.lm-MenuBar-itemLabel', has_text='Run').first.click()
    page.locator('.lm-Menu-itemLabel', has_text='Run All Cells').first.click()
    t0 = time.time()
    while time.time() - t0 < timeout_s:
        prompts = page.locator('.jp-CodeCell .jp-InputArea-prompt').all_inner_texts()
        done = [p for p in prompts if p.strip().startswith('[') and p.strip()[1:-2].strip().isdigit()]
        if len(done) == n_code and not any('*' in p for p in prompts): return time.time() - t0
        time.sleep(1)
    raise AssertionError(f'cells did not finish in {timeout_s}s: prompts {prompts}')

def check_outputs(page):
    body = page.locator('.jp-Notebook').inner_text()
    assert 'Error displaying widget' not in body, 'a widget failed to render'
    stderr = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').all_inner_texts()
    errs = [t for t in stderr if 'Error' in t] + [t for t in page.locator('.jp-OutputArea-output').all_inner_texts() if 'Traceback' in t]
    assert not errs, f'error output in the notebook: {errs[0][:2000]}'

def img_src(el) -> str: return el.locator('img').first.get_attribute('src') or ''

def move_slider(page, explorer, out:Path) -> dict:
    "Move the real explorer's 'T after' slider one step left with the keyboard; the image must change."
    explorer.scroll_into_view_if_needed()
    before_src = img_src(explorer); before_png = explorer.locator('img').first.screenshot(path=str(out/'figa1_before.png'))
    handle = explorer.locator('.widget-hslider').first.locator('.noUi-handle').first
    handle.focus(); handle.press('ArrowLeft')
    t0 = time.time()
    while time.time() - t0 < 30 and img_src(explorer) == before_src: time.sleep(0.5)
    after_src = img_src(explorer)
    assert after_src and after_src != before_src, 'the image did not change after moving the slider'
    page.wait_for_timeout(500)
    after_png = explorer.locator('img').first.screenshot(path=str(out/'figa1_after.png'))
    assert before_png != after_png, 'the screenshots of the image are identical'
    readout = explorer.locator('.widget-readout').first.inner_text()
    return {'changed_in_s': round(time.time() - t0, 1), 'readout_after': readout}

def drive(page, url:str, token:str, work:Path, out:Path, timeout_s:float) -> dict:
    "Open the notebook, run it, check the widgets, move the explorer's slider; returns what it saw."
    page.goto(f'{url}/lab/tree/{NOTEBOOK}?token={token}')
    page.wait_for_selector('.jp-Notebook .jp-Cell', timeout=60_000)
    dialogs = accept_dialogs(page)
    took = run_all(page, n_code_cells(work/NOTEBOOK), timeout_s)
    log(f'all cells ran in {took:.0f}s (dialogs accepted: {dialogs})')
    page.wait_for_timeout(1500)
    check_outputs(page)
    explorers = page.locator(EXPLORER)
    n = explorers.count(); assert n >= 1, 'no Fig. A.1 explorer rendered'
    n_img = page.locator('.jp-Notebook .widget-image').count()
    status = [t for t in page.locator('.metaaug-dashboard .widget-html').all_inner_texts()]
    assert status and all('units done' in t for t in status), f'dashboards: {status}'
    a, b = status[0].split(' units done')[0].split(' / ')
    assert a == b, f'the live dashboard did not see the whole run: {status[0]}'
    res = move_slider(page, explorers.nth(n - 1), out)
    explorers.nth(n - 1).screenshot(path=str(out/'figa1_explorer.png'))
    page.screenshot(path=str(out/'figa1_page.png'))
    return {'cells_s': round(took, 1), 'explorers': n, 'image_widgets': n_img, 'dashboards': status, **res}

def main(a):
    out = (ROOT/a.out).resolve(); out.mkdir(parents=True, exist_ok=True)
    exe = ensure_chromium(); ensure_playwright()
    from playwright.sync_api import sync_playwright
    tmp = Path(tempfile.mkdtemp(prefix='metaaug-browser-'))
    work, port, token = scratch_tree(tmp, a.inject_error), free_port(), os.urandom(16).hex()
    proc, url = start_lab(work, tmp, port, token)
    log(f'JupyterLab on {url} (pid {proc.pid}), chromium {exe}')
    t0 = time.time()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=exe, args=['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'])
            page = browser.new_page(viewport={'width': 1400, 'height': 1000})
            try: res = drive(page, url, token, work, out, a.timeout)
            except Exception:
                page.screenshot(path=str(out/'failure.png')); log(f'FAILED: screenshot {out/"failure.png"}, server log {tmp/"lab.log"}'); raise
            finally: browser.close()
        log(json.dumps({'status': 'passed', **res, 'wall_s': round(time.time() - t0, 1), 'screenshot': str(out/'figa1_explorer.png')}))
    finally:
        proc.terminate()
        try: proc.wait(20)
        except subprocess.TimeoutExpired: proc.kill()
        if not a.keep: shutil.rmtree(tmp, ignore_errors=True)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default='benchmarks/results/browser', help='folder for the screenshots (relative to the repo)')
    ap.add_argument('--timeout', type=float, default=150, help='seconds allowed for running all cells')
    ap.add_argument('--keep', action='store_true', help='keep the scratch folder (server log, notebook copy)')
    ap.add_argument('--inject_error', action='store_true', help='self-check: add a failing last cell; the test must then fail')
    main(ap.parse_args())
