"""PNG screenshots of an HTML report for the docs, taken in Debian's headless Chromium.

Four views of REPORT.html (as `--llm-report-html` wrote it): the top of the page with the
table, a failed row opened to its samples (one with failed samples' transcripts and passed
samples when there is one), the
model x test matrix (with two models or more) and, when the report has a baseline, a
regressed or prompt-changed row's side-by-side diff. A view the report lacks is skipped.
Needs `pip install playwright` (the `dev` extra) and `apt-get install chromium`.
Run: python docs/screenshots.py REPORT.html [--out docs/images]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import Locator, Page, sync_playwright

from pytest_llmeval.testing.browser import CHROMIUM, CHROMIUM_FLAGS

WIDTH, HEIGHT = 1280, 900
# The rows worth showing: failures with transcripts next to passes; a diff of the prompt.
ROW = "d => !!d.querySelector('.sample.failed .transcript') && !!d.querySelector('.sample.passed')"
DIFF = "d => !!d.querySelector('.prompt-diff')"


def shot(page: Page, target: Locator, path: Path, fill: bool = False) -> None:
    """The page from the target's top: the target's height (at most the window's), or the
    window's height with `fill`."""
    target.scroll_into_view_if_needed()
    box = page.evaluate(
        "e => { const r = e.getBoundingClientRect();"
        " return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}; }",
        target.element_handle(),
    )
    top = max(0, box["y"] - 8)
    height = HEIGHT if fill else min(box["height"] + 16, HEIGHT)
    clip = {"x": 0, "y": top, "width": WIDTH, "height": height}
    page.screenshot(path=path, full_page=True, clip=clip)
    print(f"wrote {path}")


def open_row(page: Page, wanted: str) -> Locator | None:
    """Open the first shown row whose detail passes `wanted` (a JavaScript predicate on the
    detail's element), else the first row."""
    buttons = page.locator("#results tbody tr[data-row] button.open")
    if buttons.count() == 0:
        return None
    for k in range(buttons.count()):
        buttons.nth(k).click()
        detail = page.locator(f"#{buttons.nth(k).get_attribute('aria-controls')}")
        if detail.evaluate(wanted):
            return detail
        buttons.nth(k).click()
    buttons.first.click()
    return page.locator("#results tr.detail").first


def load(page: Page, report: Path) -> None:
    page.goto(report.resolve().as_uri())
    page.wait_for_selector("body[data-rendered=yes]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("report", type=Path, help="an HTML report")
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_FLAGS))
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        load(page, args.report)
        page.screenshot(path=args.out / "report-overview.png")
        print(f"wrote {args.out / 'report-overview.png'}")
        if page.locator("#f-verdict option[value=failed]").count():
            page.select_option("#f-verdict", "failed")
        if open_row(page, ROW) is not None:
            shot(page, page.locator("#results tr.opened").first, args.out / "report-row.png", True)
        load(page, args.report)
        if page.locator("#matrix-view").count():
            matrix = page.locator("#matrix-view")
            matrix.scroll_into_view_if_needed()
            page.wait_for_selector("#matrix td.cell")
            shot(page, matrix, args.out / "report-matrix.png")
        load(page, args.report)
        if page.locator("#f-change").count():
            page.select_option("#f-change", "either")
            detail = open_row(page, DIFF)
            if detail is not None:
                shot(page, detail.locator(".versus"), args.out / "report-diff.png")
        browser.close()


if __name__ == "__main__":
    main()
