"""JupyterLab in a real headless browser: open notebook 02, Run All, no error, the figure renders; with
``PROFILE = "tiny"`` (after ``make reproduce``) the notebook shows the tracked verdict of reports/tiny/c1.json.

The notebook is a copy with its outputs cleared, in a temporary directory that JupyterLab serves as its
root: the tracked notebooks/02_reward_overfitting.ipynb is never opened, hence never re-saved. JupyterLab's
user settings, workspaces and runtime files live in that temporary directory too. The smoke runs the
notebook reads are trained first when missing or stale (``train-all --profile smoke --replace-stale`` for
its three experiments, several minutes on 2 cores; cached afterwards). Skips, with the reason, where there
is no browser: selenium not installed, or no chromium / chromedriver on PATH (``make test-browser``
installs both when root). The tiny test skips, with the reason, where tiny's runs are missing or stale (run
``make reproduce`` first); its outputs go to a scratch directory under the test's temporary directory, never to
the tracked reports/tiny/.

Run it with ``make test-browser``; ``RLVR_BROWSER_TIMEOUT`` (s, default 600) bounds Run All.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import nbformat
import pytest

from rlvr_lowrank import paths

pytestmark = pytest.mark.slow

STEM = "02_reward_overfitting"
RUN_ALL_TIMEOUT = float(os.environ.get("RLVR_BROWSER_TIMEOUT", "600"))


def _browser_or_skip() -> tuple[str, str]:
    pytest.importorskip("selenium", reason="selenium is not installed (requirements.txt pins it)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        hint = ("run `make test-browser`, which installs them" if os.geteuid() == 0 else
                "install chromium and chromium-driver (needs root: apt-get install -y chromium chromium-driver)")
        pytest.skip(f"no headless browser: chromium={chromium}, chromedriver={driver}; {hint}")
    return chromium, driver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unfinished_runs(profile: str, seeds=None) -> list[tuple[str, int, str]]:
    """The runs notebook 02 reads for ``profile`` (every seed of each arm, or ``seeds``) that are missing,
    incomplete or made from other inputs, each as (experiment, seed, why)."""
    from rlvr_lowrank.pipeline import reproduce
    from rlvr_lowrank.training import config, runs

    out = []
    for e in reproduce.experiments_read(STEM, profile):
        for seed in seeds if seeds is not None else config.seeds_of(profile, e):
            try:
                runs.require_run(profile, e, seed)
            except Exception as exc:  # missing, incomplete or made from other inputs
                out.append((e, seed, str(exc).splitlines()[0][:120]))
    return out


def _ensure_smoke_runs() -> None:
    """Train the smoke runs notebook 02 reads when missing or stale (a stale one is moved aside, as
    ``train-all --replace-stale`` does), so a failure in the browser is the notebook's, not the cache's."""
    todo = sorted({e for e, _, _ in _unfinished_runs("smoke", seeds=[0])})
    if not todo:
        return
    env = {**os.environ, "PYTHONPATH": str(paths.ROOT / "lib") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run([sys.executable, "-m", "rlvr_lowrank", "train-all", "--profile", "smoke", "--replace-stale",
                    "--experiments", *todo], cwd=paths.ROOT, env=env, check=True)


def _cleared_copy(dest_dir, profile: str | None = None) -> None:
    """Notebook 02 with its outputs cleared; with ``profile``, its parameters cell edited as a reader would
    (``PROFILE = "<profile>"``, every other line as committed)."""
    nb = nbformat.read(paths.NOTEBOOKS / f"{STEM}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    if profile is not None:
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        lines = cell.source.splitlines()
        at = [i for i, line in enumerate(lines) if line.startswith("PROFILE = ")]
        assert len(at) == 1, f"no single PROFILE line in the parameters cell: {lines}"
        lines[at[0]] = f'PROFILE = "{profile}"  # edited by the test, as a reader would'
        cell.source = "\n".join(lines)
    nbformat.write(nb, dest_dir / f"{STEM}.ipynb")


@contextlib.contextmanager
def _serve(tmp_path, root, app_settings_dir, *extra):
    """A JupyterLab server on a free port with a token, serving ``root``; yields (url, token). Its user
    settings, workspaces and runtime files go to tmp_path."""
    token, port = uuid.uuid4().hex, _free_port()
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "user-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
           "PYTHONPATH": str(paths.ROOT / "lib") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop(paths.WRITE_TRACKED_ENV, None)
    env[paths.SCRATCH_ENV] = str(tmp_path / "scratch")  # a tracked profile's outputs: here, not runs/scratch
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
           f"--LabApp.app_settings_dir={app_settings_dir}", "--ServerApp.port_retries=0", *extra]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    logfile = tmp_path / f"jupyter-{port}.log"
    log = open(logfile, "w")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.time() > deadline:
                pytest.fail(f"jupyter lab did not start: {logfile.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _tiny_runs_or_skip() -> None:
    """Skip unless every run notebook 02 reads for tiny is finished and made from today's inputs."""
    missing = _unfinished_runs("tiny")
    if missing:
        e, seed, why = missing[0]
        pytest.skip(f"tiny's runs are missing or stale ({len(missing)}, e.g. {e}/seed{seed}: {why}); "
                    f"run `make reproduce` (PROFILE=tiny) first")


def _lab(tmp_path, profile: str | None = None):
    """JupyterLab serving a temporary directory that holds a cleared copy of notebook 02."""
    _browser_or_skip()
    if profile is None:
        _ensure_smoke_runs()
    else:
        _tiny_runs_or_skip()
    root = tmp_path / "root"
    root.mkdir()
    _cleared_copy(root, profile)
    settings = tmp_path / "app-settings"
    settings.mkdir()
    # every cell in the DOM (JupyterLab otherwise only renders the cells near the viewport); no news fetch
    (settings / "overrides.json").write_text(json.dumps(
        {"@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
         "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}))
    return _serve(tmp_path, root, settings), root


@pytest.fixture
def lab(tmp_path):
    server, root = _lab(tmp_path)
    with server as (url, token):
        yield url, token, root


@pytest.fixture
def lab_tiny(tmp_path):
    server, root = _lab(tmp_path, "tiny")
    with server as (url, token):
        yield url, token, root


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = _browser_or_skip()
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(executable_path=chromedriver), options=opts)


def _wait(driver, cond, timeout, what):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5).until(cond)
    except Exception as exc:  # TimeoutException: say what we waited for
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}") from exc


def _text(el) -> str:
    return el.get_attribute("textContent") or ""


NB = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"


def _run_all(driver, url: str, token: str) -> list[str]:
    """Open notebook 02, Run All through the menu bar as a reader would, wait until it finishes, check that no
    cell failed and that a figure loaded; return the texts of the stderr outputs."""
    from selenium.webdriver.common.by import By

    t0 = time.time()
    driver.get(f"{url}/lab/tree/{STEM}.ipynb?token={token}")
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"{NB} .jp-CodeCell"), 120, "the notebook")

    def status(_d) -> str:  # the kernel's execution state, as the server reports it
        with urllib.request.urlopen(f"{url}/api/kernels?token={token}", timeout=5) as r:
            kernels = json.load(r)
        return kernels[0]["execution_state"] if len(kernels) == 1 else f"{len(kernels)} kernels"

    _wait(driver, lambda d: status(d) == "idle", 180, "the kernel to start (idle)")
    n_cells = len(driver.find_elements(By.CSS_SELECTOR, f"{NB} .jp-CodeCell"))

    menu = [m for m in driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item") if m.text.strip() == "Run"]
    assert menu, "no Run menu in the menu bar"
    menu[0].click()
    item = _wait(driver, lambda d: d.find_elements(
        By.CSS_SELECTOR, '#jp-mainmenu-run .lm-Menu-item[data-command="runmenu:run-all"]'), 20, "Run All Cells")
    item[0].click()

    seen_idle, prompt_css = [], f"{NB} .jp-CodeCell .jp-InputPrompt"

    def done(d):  # nothing queued or running ("[*]:"), the kernel idle on two polls in a row; Run All
        # stops at the first error, so the cells after one keep an empty prompt
        prompts = [_text(p).strip() for p in d.find_elements(By.CSS_SELECTOR, prompt_css)]
        quiet = bool(prompts) and "*" not in "".join(prompts) and any(p.strip("[]: ") for p in prompts)
        seen_idle.append(quiet and status(d) == "idle")
        return seen_idle[-2:] == [True, True]

    _wait(driver, done, RUN_ALL_TIMEOUT, "Run All to finish (nothing queued, kernel idle)")
    stderr = [_text(e) for e in driver.find_elements(
        By.CSS_SELECTOR, f'{NB} .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    errors = [s for s in stderr if "Traceback" in s]  # error outputs render as stderr with their traceback
    assert not errors, "error output in the notebook:\n" + "\n---\n".join(e[-2000:] for e in errors)
    prompts = [_text(p).strip() for p in driver.find_elements(By.CSS_SELECTOR, prompt_css)]
    assert all(p.strip("[]: ").isdigit() for p in prompts), f"cells not run: {prompts}"
    assert not driver.find_elements(By.CSS_SELECTOR, f"{NB} .jp-OutputArea-executeResult.jp-mod-error, "
                                                     f"{NB} .jp-Cell.jp-mod-error"), "an error cell"
    imgs = driver.find_elements(By.CSS_SELECTOR, f"{NB} .jp-OutputArea-output img")
    assert imgs, "no figure rendered (no img in any output area)"
    assert any(driver.execute_script("return arguments[0].naturalWidth", i) > 100 for i in imgs), \
        "the figure images did not load"
    print(f"[browser] Run All of {STEM}: {n_cells} code cells, {len(imgs)} figure(s), "
          f"{len(stderr)} stderr output(s), {time.time() - t0:.0f} s in the browser")
    return stderr


def test_run_all_notebook_02_in_jupyterlab(lab):
    url, token, _root = lab
    driver = _driver()
    try:
        stderr = _run_all(driver, url, token)
        if _has_ipywidgets():
            assert not [s for s in stderr if "IProgress not found" in s], "tqdm cannot render: " + str(stderr)
    finally:
        driver.quit()


def test_notebook_02_with_profile_tiny_shows_the_tracked_verdict(lab_tiny):
    """The re-run a reader makes: set ``PROFILE = "tiny"``, Run All. The notebook takes tiny's parameters (the
    ones ``make reproduce`` passes), so its printed verdict, seed count and Δreward are the tracked ones."""
    from selenium.webdriver.common.by import By

    tracked = json.loads((paths.REPORTS / "tiny" / "c1.json").read_text())
    url, token, _root = lab_tiny
    driver = _driver()
    try:
        _run_all(driver, url, token)
        texts = [_text(e) for e in driver.find_elements(
            By.CSS_SELECTOR, f'{NB} .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stdout"]')]
    finally:
        driver.quit()
    shown = [t for t in texts if t.startswith("C1 over ")]
    assert len(shown) == 1, f"no single verdict output among {len(texts)} stdout outputs"
    r = tracked["reward_gap"]
    assert shown[0].startswith(f"C1 over {len(tracked['seeds'])} seed(s): Δreward (Full - PR1S, last quarter) = "
                               f"{r['mean']:.2f} [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]"), shown[0][:300]
    assert f"\nverdict: {tracked['verdict']} - " in shown[0], (tracked["verdict"], shown[0][-600:])


def _has_ipywidgets() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def test_make_lab_lands_on_the_results(tmp_path):
    """What `make lab` serves (repository root, its default URL and settings) lands on START_HERE.md
    rendered as Markdown, with its figure loaded. Nothing is saved: a Markdown preview is read-only."""
    _browser_or_skip()
    from selenium.webdriver.common.by import By

    default_url = "/lab/tree/START_HERE.md"
    with _serve(tmp_path, paths.ROOT, paths.ROOT / ".jupyter" / "lab" / "settings",
                f"--LabApp.default_url={default_url}") as (url, token):
        driver = _driver()
        try:
            driver.get(f"{url}/?token={token}")
            md = _wait(driver, lambda d: [e for e in d.find_elements(
                By.CSS_SELECTOR, ".jp-MarkdownViewer .jp-RenderedMarkdown") if "Start here" in _text(e)],
                       120, "START_HERE.md rendered in the Markdown preview")[0]
            assert default_url in driver.current_url
            links = [a.get_attribute("href") or "" for a in md.find_elements(By.CSS_SELECTOR, "a")]
            assert any("reports/tiny/claims.md" in h for h in links), links
            _wait(driver, lambda d: any(d.execute_script("return arguments[0].naturalWidth", i) > 100
                                        for i in md.find_elements(By.CSS_SELECTOR, "img")), 60, "the figure")
        finally:
            driver.quit()
