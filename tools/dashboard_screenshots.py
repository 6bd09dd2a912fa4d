"""Screenshots of a dashboard's main pages, in the distribution's headless Chromium (as the tests drive it).

    python tools/dashboard_screenshots.py SITE_DIR OUT_DIR
"""

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def main(site: Path, out: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    nights = sorted((site / "nights").iterdir(), key=lambda p: int(p.name))
    pages = {"dashboard-overview.png": site / "index.html", "dashboard-regressions.png": site / "regressions.html",
             "dashboard-night.png": nights[-1] / "index.html"}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        for name, path in pages.items():
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            page.wait_for_timeout(1500)  # the charts draw after load
            page.screenshot(path=str(out / name))  # the first screenful: what a reader sees on opening it
            print(f"wrote {out / name}")
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve())
