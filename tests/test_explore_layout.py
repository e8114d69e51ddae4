"""The explorer's layout in headless Chromium at a laptop's 1400x900 and a phone's 400x800
(issue 27): the features table's key columns (feature, polytope, D_i, fit error) in view, one
column of cards under 900 px, and no clipped text, asserted on the DOM's layout boxes (and on
the boxes of the text the phase map draws on its canvas). Screenshots are written beside the
test's temporary files; the browser tests are skipped only where no Chromium is installed."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from browser import Browser, BrowserError, find_chromium
from test_explore import (
    AXES_2D,
    SAE_TOYS,
    hidden_weights,
    plane_weights,
    write_results,
    write_sae_results,
)

from geomtoy.viz import explore

SIZES = [(1400, 900), (400, 800)]
KEY = ["feature", "polytope", "dimensionality", "fit_error"]
SCROLLERS = "#tablewrap, .sae-tablewrap, .sae-recwrap, .stackwrap"
"""Boxes that scroll by design: text out of their view is reached by scrolling, not clipped
(the features table's key columns are checked separately: pinned, always in view)."""


def w_forty(idx, seed, rng):
    """n = 40, m = 10: a sweep as wide as the bundled uniform_40x10."""
    return rng.standard_normal((10, 40)) * rng.uniform(0.05, 1.0, size=40), rng.uniform(
        -0.3, 0.5, size=40
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("layout")
    dirs = [
        write_results(root / "plane", name="plane", kind="relu_output", n=5, m=2, axes=AXES_2D,
                      seeds=3, weights=plane_weights),
        write_results(root / "uniform_40x10", name="uniform_40x10", kind="relu_output", n=40,
                      m=10, axes={"data.feature_probability": list(np.geomspace(1, 0.01, 6))},
                      seeds=2, weights=w_forty),
        write_results(root / "hidden", name="hidden", kind="relu_hidden", n=8, m=4,
                      axes={"data.feature_probability": [0.1, 0.5]}, seeds=2,
                      weights=hidden_weights),
    ]  # fmt: skip
    write_sae_results(root / "sae_plane", dirs[0], SAE_TOYS)  # found beside its toy sweep
    return explore.build_explorer(dirs, root / "explorer.html")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if find_chromium() is None:
        pytest.skip(
            "no Chromium on this machine (install Debian's `chromium` package; `make test` does)"
        )
    try:
        b = Browser(tmp_path_factory.mktemp("profile"))
    except BrowserError as e:
        pytest.skip(f"Chromium does not start here: {e}")
    yield b
    b.close()


def resize(browser: Browser, width: int, height: int) -> None:
    browser.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        session=True,
    )


CLIPPED = """(() => {
  const out = [], W = innerWidth, eps = 1;
  const scroller = (el) => el.closest('__SCROLLERS__');
  const visible = (r) => r.width > 0 && r.height > 0;
  // every text node: inside the viewport's width and inside each ancestor that clips it
  const walk = document.createTreeWalker(document.querySelector('main').parentNode, NodeFilter.SHOW_TEXT);
  for (let t = walk.nextNode(); t; t = walk.nextNode()) {
    const el = t.parentElement;
    if (!t.textContent.trim() || el.closest('script, style, #state, #tip, option, select, [hidden]')) continue;
    const range = document.createRange(); range.selectNodeContents(t);
    const r = range.getBoundingClientRect();
    if (!visible(r) || scroller(el)) continue;
    if (r.left < -eps || r.right > W + eps) out.push(['outside the page', t.textContent.slice(0, 40), r.left, r.right]);
    for (let a = el; a && a !== document.body; a = a.parentElement) {
      const cs = getComputedStyle(a);
      if (cs.overflowX === 'visible' && cs.overflowY === 'visible' && a.tagName !== 'svg') continue;
      const b = a.getBoundingClientRect();
      if (r.left < b.left - eps || r.right > b.right + eps || r.top < b.top - eps || r.bottom > b.bottom + eps)
        out.push(['clipped by ' + a.tagName + '#' + a.id + '.' + a.className, t.textContent.slice(0, 40)]);
    }
  }
  // every table cell: its text fits (no ellipsis); every control: inside its card
  for (const c of document.querySelectorAll('#features th, #features td, #sae-table td, #sae-table th'))
    if (c.scrollWidth > c.clientWidth + eps) out.push(['cell text cut', c.textContent]);
  for (const s of document.querySelectorAll('main select, main input')) {
    const r = s.getBoundingClientRect(), card = s.closest('.card').getBoundingClientRect();
    if (visible(r) && (r.left < card.left - eps || r.right > card.right + eps)) out.push(['control outside its card', s.id]);
  }
  // the phase map's canvas text
  const map = window.explorer.state().map;
  for (const [text, l, t, r, b] of map.text)
    if (l < -eps || t < -eps || r > map.width + eps || b > map.height + eps) out.push(['map text cut', text, l, t, r, b]);
  if (document.documentElement.scrollWidth > W + eps) out.push(['page scrolls sideways', document.documentElement.scrollWidth]);
  return out;
})()""".replace("__SCROLLERS__", SCROLLERS)

KEY_BOXES = """(() => {
  const wrap = document.getElementById('tablewrap'), w = wrap.getBoundingClientRect();
  const view = [w.left + wrap.clientLeft, w.left + wrap.clientLeft + wrap.clientWidth];
  const head = [...document.querySelectorAll('#features thead th')].map((th) => th.dataset.col);
  const boxes = (sel) => [...document.querySelectorAll(sel)].map((c) => { const r = c.getBoundingClientRect(); return [r.left, r.right]; });
  const row = document.querySelector('#features tbody tr:not(.spacer)');
  return { view, head, th: boxes('#features thead th'), td: [...row.cells].map((c) => { const r = c.getBoundingClientRect(); return [r.left, r.right]; }),
           scroll: [wrap.scrollWidth, wrap.clientWidth],
           cards: [...document.querySelectorAll('main > .card:not([hidden])')].map((c) => { const r = c.getBoundingClientRect(); return [c.id, r.left, r.right]; }) };
})()"""


def key_columns_in_view(browser: Browser) -> dict:
    got = browser.eval(KEY_BOXES)
    lo, hi = got["view"]
    for name in KEY:
        k = got["head"].index(name)
        for box in (got["th"][k], got["td"][k]):
            assert lo - 1 <= box[0] and box[1] <= hi + 1, (name, box, got["view"])
    return got


@pytest.mark.parametrize("width,height", SIZES)
@pytest.mark.parametrize("fragment", [
    "#sweep=0&y=train.lr",  # a 2-row map: its y title above the grid
    "#sweep=0&x=train.lr&y=data.feature_probability",
    "#sweep=1&y=seed",
    "#sweep=2",
    f"#sweep=0&instance={SAE_TOYS[1]}",  # the SAE card
])  # fmt: skip
def test_key_columns_in_view_and_no_text_clipped(browser, page, tmp_path, width, height, fragment):
    resize(browser, width, height)
    browser.open(page.as_uri() + fragment)
    assert browser.eval("window.explorer.state().errors") == 0
    if "instance=" in fragment:  # the model an SAE read: its card is laid out too
        assert browser.eval("document.getElementById('sae-card').hidden") is False
    got = key_columns_in_view(browser)
    # scrolled to its far right, the table still shows its key columns (pinned)
    browser.eval(
        "(() => { const w = document.getElementById('tablewrap'); w.scrollLeft = w.scrollWidth; })()"
    )
    key_columns_in_view(browser)
    if width >= 1250:  # a laptop: every column of the table in view, no sideways scroll
        assert got["scroll"][0] <= got["scroll"][1] + 1, got["scroll"]
    if width < 900:  # one column: every card the page's width (no 70-px columns)
        for card, left, right in got["cards"]:
            assert right - left >= width - 40 and left >= 0 and right <= width, (card, left, right)
    assert browser.eval(CLIPPED) == []
    png = browser.screenshot(tmp_path / f"explorer_{width}x{height}.png")
    img = mpimg.imread(png)[..., :3]
    assert img.shape[1] == width and float(img.var()) > 0.01
    assert browser.errors() == []


def test_narrow_map_click_still_selects_its_cell(browser, page):
    """At 400 px the phase map is drawn to fit (no scaling): a click lands on its cell."""
    resize(browser, 400, 800)
    browser.open(page.as_uri() + "#sweep=0&data.feature_probability=0&train.lr=0")
    geo = browser.eval("""(() => { const r = document.getElementById('map').getBoundingClientRect();
      const m = window.explorer.state().map; r.el = document.getElementById('map');
      return { left: r.left, top: r.top, width: r.width, canvas: r.el.width, m }; })()""")
    assert geo["width"] == geo["canvas"] and geo["left"] + geo["width"] <= 400
    m = geo["m"]
    x = geo["left"] + m["pad_left"] + 2.5 * m["cw"]  # third column
    y = geo["top"] + m["pad_top"] + (m["ny"] - 1 - 1 + 0.5) * m["ch"]  # second row
    browser.eval("window.scrollTo(0, 0)")
    top = browser.eval("document.getElementById('map').getBoundingClientRect().top")
    browser.click(x, y - geo["top"] + top)
    s = browser.eval("window.explorer.state()")
    assert s["axes"]["data.feature_probability"]["index"] == 2
    assert s["axes"]["train.lr"]["index"] == 1
    resize(browser, 1440, 1000)
