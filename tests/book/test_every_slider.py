"""Every position of every control of every explorer shows its chart: on each page of the built
book that has an explorer (calcas.render.interactive), and on an own-data report page
(calcas.user_report, written here from three small synthetic models).

The rule is the same for every chart; nothing here knows what a chart draws:

- the explorer's controls (the Vega-Lite params bound in its ``.vega-bindings``) take every
  value they offer: a range slider every value from min to max by step, as the browser's own
  ``stepUp()`` computes it (the value a reader's drag or arrow key gives), a drop-down every
  option, a radio group every button; with two controls or more, every combination;
- at the starting position (the page as loaded) the test records which mark groups hold at
  least one item (Vega gives a data mark's SVG group the classes ``mark-<type> role-mark
  <name>_marks``), the read-out (the text of every data-driven text mark: the read-out panel
  and the labels drawn in the plot) and how the read-out names each control's value;
- at every position each of those mark groups still holds an item, the read-out is not blank,
  and it names each control's current value as it named the starting one: a number as
  ``<words> = <value>`` (or ``≈``) after the same words, in one of the number formats that wrote
  the starting value there (``K = 7``, ``log₂ T = -0.5``, ``δ = 0.10``, ``n ≈ 3.125``); a choice
  by its value or its label anywhere (``equal-count``). A control the starting read-out does
  not name is only checked for marks and a read-out.

One Chromium serves the whole module; each page is loaded once and each explorer swept in one
call into the page (set the controls, wait two animation frames for Vega's redraw, read the SVG).
Without a built book the book tests skip ("run make book first"), or fail under
``CALCAS_REQUIRE_BOOK=1``; without Chromium or Playwright every test skips with the reason.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from test_book_browser import ALL_DRAWN, CHROMIUM, CHROMIUM_ARGS, HTML, NOT_PAGES, _book, _Quiet

# Sweeps every explorer below ``root`` and returns what each position showed. Controls are
# grouped by their .vega-bind element (one per param); a range slider's values come from a
# detached clone stepped with stepUp(), so they are the strings the browser itself computes.
SWEEP = """async root => {
  const frames = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const markName = g => g.getAttribute('class').split(/\\s+/).filter(c => c !== 'role-mark').join(' ');
  const snap = () => {
    const marks = {};
    for (const g of root.querySelectorAll('svg g.role-mark')) {
      const k = markName(g); marks[k] = (marks[k] || 0) + g.children.length;
    }
    const readout = Array.from(root.querySelectorAll('svg g.mark-text.role-mark > text'), t => t.textContent);
    return {marks, readout: readout.join('\\n')};
  };
  const fire = el => { el.dispatchEvent(new Event('input', {bubbles: true}));
                       el.dispatchEvent(new Event('change', {bubbles: true})); };
  const controls = [];
  for (const bind of root.querySelectorAll('.vega-bindings .vega-bind')) {
    const range = bind.querySelector('input[type=range]'), select = bind.querySelector('select');
    const radios = Array.from(bind.querySelectorAll('input[type=radio]'));
    const label = (bind.querySelector('.vega-bind-name') || bind).textContent.trim();
    if (range) {
      const probe = range.cloneNode();
      probe.value = range.getAttribute('min') ?? '0';
      const values = [probe.value];
      for (let i = 0; i < 10000; i++) {
        const before = probe.value;
        try { probe.stepUp(); } catch (e) { break; }
        if (probe.value === before) break;
        values.push(probe.value);
      }
      controls.push({name: range.name || label, kind: 'slider', options: values.map(v => ({value: v, label: v})),
                     get: () => range.value, set: v => { range.value = v; fire(range); }});
    } else if (select) {
      controls.push({name: select.name || label, kind: 'drop-down',
                     options: Array.from(select.options, o => ({value: o.value, label: o.textContent.trim()})),
                     get: () => select.value, set: v => { select.value = v; fire(select); }});
    } else if (radios.length) {
      controls.push({name: radios[0].name || label, kind: 'radio',
                     options: radios.map(r => ({value: r.value,
                                                label: (r.labels && r.labels[0] ? r.labels[0].textContent : r.value).trim()})),
                     get: () => (radios.find(r => r.checked) || {value: null}).value,
                     set: v => radios.find(r => r.value === v).click()});
    }
  }
  await frames();
  const start = {values: controls.map(c => c.get()), ...snap()};
  const positions = [];
  const index = controls.map(() => 0);
  while (controls.length) {
    controls.forEach((c, i) => { const v = c.options[index[i]].value; if (c.get() !== v) c.set(v); });
    await frames();
    positions.push({values: controls.map(c => c.get()), ...snap()});
    let i = controls.length - 1;
    while (i >= 0 && ++index[i] === controls[i].options.length) index[i--] = 0;
    if (i < 0) break;
  }
  return {label: root.getAttribute('aria-label'),
          controls: controls.map(c => ({name: c.name, kind: c.kind, options: c.options})), start, positions};
}"""

_NUMBER_FORMATS = ("g", *(f".{d}f" for d in range(5)), *(f",.{d}f" for d in range(5)))
# a value named in a read-out: "<words> = value" or "<words> ≈ value"; the words start with a
# letter and hold no digit, "=", or separator ("ECE = 0.0036 with N = 15": "with N = "), and stay
# on one line (read-out lines are wrapped after ", " and ": ", never inside "name = value")
_NAMED = re.compile(r"([^\W\d][^\n,:;(=≈\d]*?\s[=≈]\s)$")
# a number ends where no digit (nor a decimal point and digit) follows
_END = r"(?![0-9]|\.[0-9])"


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _label(control: dict[str, Any], value: str) -> str:
    return next((o["label"] for o in control["options"] if o["value"] == value), value)


def _written(number: float, formats: set[str]) -> set[str]:
    """``number`` in each of ``formats`` that writes it exactly, or in all of them if none does:
    the starting value 0 matches both "g" and ".0f", but only "g" writes -0.5."""
    exact = {format(number, fmt) for fmt in formats if float(format(number, fmt).replace(",", "")) == number}
    return exact or {format(number, fmt) for fmt in formats}


def _times(control: dict[str, Any], value: str, readout: str, context: str, formats: set[str]) -> tuple[int, str]:
    """How many times ``readout`` names ``value`` after ``context`` in one of ``formats`` (the
    most of any one format), and what was looked for."""
    number = _number(value)
    if number is None:
        texts = {value if how == "value" else _label(control, value) for how in formats}
        patterns = {t: rf"(?<![\w-]){re.escape(t)}(?![\w-])" for t in texts}
    else:
        patterns = {context + t: rf"(?<!\w){re.escape(context + t)}{_END}" for t in _written(number, formats)}
    return (max(len(re.findall(p, readout)) for p in patterns.values()),
            " or ".join(repr(t) for t in sorted(patterns)))


def _mentions(control: dict[str, Any], value: str, readout: str) -> dict[str, set[str]]:
    """How ``readout`` names ``value`` of ``control``: context -> formats. A number: the words
    naming it (:data:`_NAMED`) -> the formats of :data:`_NUMBER_FORMATS` that write it there;
    a choice: "" -> "value" and/or "label", where its value or label stands as a word."""
    found: dict[str, set[str]] = {}
    number = _number(value)
    if number is None:
        for how, text in (("value", value), ("label", _label(control, value))):
            if text and re.search(rf"(?<![\w-]){re.escape(text)}(?![\w-])", readout):
                found.setdefault("", set()).add(how)
        return found
    for fmt in _NUMBER_FORMATS:
        for hit in re.finditer(rf"(?<![0-9.]){re.escape(format(number, fmt))}{_END}", readout):
            named = _NAMED.search(readout[:hit.start()])
            if named:
                found.setdefault(named.group(1).lstrip(), set()).add(fmt)
    return found


def check_sweep(where: str, sweep: dict[str, Any]) -> list[str]:
    """The failures of one explorer's sweep: one line per position that lost a mark group, its
    read-out, or a naming of a control's value (as many times as at the start: one per series)."""
    head = f"{where}: explorer {sweep['label']!r}"
    controls, start = sweep["controls"], sweep["start"]
    if not controls:
        return [f"{head}: no control to move"]
    drawn = {name for name, n in start["marks"].items() if n > 0}
    if not drawn or not start["readout"].strip():
        return [f"{head}: nothing drawn at the starting position ({start['marks']}, read-out {start['readout']!r})"]
    named = []  # (control index, context, formats, times) per way the start read-out names a start value
    for i, (control, value) in enumerate(zip(controls, start["values"])):
        for context, formats in _mentions(control, value, start["readout"]).items():
            named.append((i, context, formats, _times(control, value, start["readout"], context, formats)[0]))
    failures = []
    for position in sweep["positions"]:
        at = ", ".join(f"{c['kind']} {c['name']} = {v}" for c, v in zip(controls, position["values"]))
        missing = sorted(name for name in drawn if position["marks"].get(name, 0) == 0)
        problems = [f"no items in mark group {', '.join(missing)}"] if missing else []
        if not position["readout"].strip():
            problems.append("blank read-out")
        else:
            for i, context, formats, times in named:
                now, what = _times(controls[i], position["values"][i], position["readout"], context, formats)
                if now < times:
                    problems.append(f"read-out names {controls[i]['name']} as {what} {now} "
                                    f"time{'s' * (now != 1)}, {times} at the start")
        if problems:
            failures.append(f"{head} at {at}: {'; '.join(problems)}")
    return failures


def sweep_page(page: Any) -> list[dict[str, Any]]:
    """Every explorer of an open page, swept (see :data:`SWEEP`)."""
    page.wait_for_function(ALL_DRAWN, timeout=20_000)
    return [root.evaluate(SWEEP) for root in page.query_selector_all(".calcas-explorer")]


def _report(where: str, sweeps: list[dict[str, Any]], errors: list[str]) -> list[str]:
    print(f"{where}: {len(sweeps)} explorers, {sum(len(s['positions']) for s in sweeps)} positions")
    for s in sweeps:
        print(f"  {s['label']}: {' x '.join(str(len(c['options'])) for c in s['controls'])} positions")
    failures = [f"{where}: script error {e}" for e in errors]
    return failures + [f for s in sweeps for f in check_sweep(where, s)]


def _explorer_pages(html: Path) -> list[str]:
    """The book's pages with an explorer (relative paths), Sphinx's asset folders skipped."""
    pages = []
    for folder, dirs, files in os.walk(html):
        dirs[:] = sorted(d for d in dirs if d not in NOT_PAGES)
        for name in sorted(files):
            path = Path(folder) / name
            if name.endswith(".html") and 'class="calcas-explorer"' in path.read_text(errors="replace"):
                pages.append(path.relative_to(html).as_posix())
    return pages


PAGES = _explorer_pages(HTML) if (HTML / "index.html").is_file() else []


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (set CALCAS_CHROMIUM): the browser checks need one")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def book_origin(browser: Any) -> Iterator[str]:
    html = _book()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def _open(browser: Any, url: str, inside: tuple[str, ...], errors: list[str]) -> Any:
    """A new page at ``url``; requests outside ``inside`` are aborted, script errors collected."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(inside) else r.abort())
    page.goto(url, wait_until="networkidle")
    return page


@pytest.mark.parametrize("relative", PAGES or [None])
def test_every_position_of_every_explorer_on_the_book_page(browser: Any, book_origin: str, relative: str | None) -> None:
    assert relative is not None, f"no page of the built book {HTML} has an explorer"
    errors: list[str] = []
    page = _open(browser, book_origin + relative, (book_origin, "data:", "blob:"), errors)
    try:
        sweeps = sweep_page(page)
    finally:
        page.close()
    assert sweeps, f"{relative}: no explorer drawn"
    failures = _report(relative, sweeps, errors)
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures)


@pytest.fixture(scope="module")
def report_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from calcas.user_report import user_report
    from test_user_report import _as, _csv, _outputs

    folder = tmp_path_factory.mktemp("every_slider_report")
    paths = [_csv(folder, f"m{i}", _as("prob", _outputs(seed=i, skill=1 + i))) for i in range(3)]
    user_report(paths, folder / "out", n_boot=20, progress=False)
    return folder / "out"


def test_every_position_of_every_explorer_on_an_own_data_report(browser: Any, report_folder: Path) -> None:
    folder = report_folder.as_uri() + "/"
    errors: list[str] = []
    page = _open(browser, folder + "index.html", (folder, "data:", "blob:"), errors)
    try:
        sweeps = sweep_page(page)
    finally:
        page.close()
    kinds = {s["label"].split(":")[0] for s in sweeps}
    assert {"calcas reliability explorer", "calcas cascade explorer", "calcas cleaning explorer"} <= kinds, kinds
    failures = _report("own-data report", sweeps, errors)
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures)
