#!/usr/bin/env bash
# The HTML leaderboard in a real browser: render the committed MNIST leaderboard as the report
# site (ganbench leaderboard --format html --out DIR), open it in headless Chromium, and check
#   1. the screenshot is not blank (many distinct colours, not one dominant colour);
#   2. the DOM has one table whose rows are the committed leaderboard's models, in its order;
#   3. a click on the "isc" header sorts the rows by isc, best first (the page's own sort script
#      runs under its Content-Security-Policy), while an injected script does not run;
# and save the screenshot as bench/results/leaderboard_html.png.
#
#   bench/browser_check.sh            # the local results store when there is one, else the CSV
#   FROM_CSV=1 bench/browser_check.sh # the committed leaderboards/mnist.csv (what a clean clone has)
#
# The store (runs/leaderboards/mnist/results.sqlite, written by ganbench.leaderboards.reproduce)
# knows each run's folder: its page has sample thumbnails and training curves; the CSV has
# neither. Needs Debian's chromium (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
CSV=leaderboards/mnist.csv
STORE=${STORE:-runs/leaderboards/mnist/results.sqlite}
SHOT=bench/results/leaderboard_html.png
BROWSER=${BROWSER:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$BROWSER" ] || { echo "no chromium: apt-get install chromium" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -f "$STORE" ] && [ -z "${FROM_CSV:-}" ]; then
  ganbench leaderboard --store "$STORE" --dataset mnist --format html --out "$tmp/site"
else
  ganbench leaderboard --from-csv "$CSV" --format html --out "$tmp/site"
fi

chrome() {  # headless, no sandbox (root in a container), a private profile, quiet
  timeout 120 "$BROWSER" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --user-data-dir="$tmp/profile" "$@" 2>>"$tmp/chromium.log"
}
chrome --window-size=1280,1600 --screenshot="$tmp/shot.png" "file://$tmp/site/index.html" >/dev/null
chrome --dump-dom "file://$tmp/site/index.html" >"$tmp/dom.html"

# The same page plus a script that clicks the isc header (allowed by its hash in the policy)
# and an injected one (not allowed): the clicked order and the injected mark are read back.
python3 - "$tmp" <<'EOF'
import base64, hashlib, re, sys
from pathlib import Path

tmp = Path(sys.argv[1])
page = (tmp / "site" / "index.html").read_text()
click = ('document.querySelectorAll("section.board th button").forEach(function (b) {'
         ' if (b.textContent.trim().split(" ")[0] === "isc") b.click(); });')
digest = "'sha256-" + base64.b64encode(hashlib.sha256(click.encode()).digest()).decode() + "'"
page, n = re.subn(r"script-src ('sha256-[^']+')", rf"script-src \1 {digest}", page)
assert n == 1, "the page has no script-src policy"
injected = '<script>document.body.setAttribute("data-injected", "yes")</script>'
page = page.replace("</body>", f"<script>{click}</script>\n{injected}\n</body>")
(tmp / "clicked.html").write_text(page)
EOF
chrome --dump-dom "file://$tmp/clicked.html" >"$tmp/clicked_dom.html"

python3 - "$tmp" "$CSV" <<'EOF'
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
from PIL import Image

tmp, csv = Path(sys.argv[1]), sys.argv[2]


class Tables(HTMLParser):
    """Per table: the Model column of its body rows; thumbnails; the body's attributes."""

    def __init__(self, text):
        super().__init__()
        self.tables, self.thumbs, self.body, self._col, self._cell = [], 0, {}, None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.body = dict(attrs)
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._col = -1
        elif tag == "td":
            self._col += 1
            self._cell = "" if self._col == 1 else None
        elif tag == "img" and self._col is not None and self._cell is None and self.tables:
            self.thumbs += 1

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.tables[-1].append(self._cell)
            self._cell = None
        elif tag == "table":
            self._col = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


expected = pd.read_csv(csv, dtype={"model": str})
dom = Tables((tmp / "dom.html").read_text())
assert len(dom.tables) == 1, f"{len(dom.tables)} tables, expected 1"
assert dom.tables[0] == expected["model"].tolist(), f"rows {dom.tables[0]} != {csv} {expected['model'].tolist()}"
by_isc = expected.sort_values("isc", ascending=False, kind="stable")["model"].tolist()
clicked = Tables((tmp / "clicked_dom.html").read_text())
assert clicked.tables[0] == by_isc, f"after the isc click: {clicked.tables[0]} != {by_isc}"
assert "data-injected" not in clicked.body, "an injected script ran: the page's policy did not hold"

with Image.open(tmp / "shot.png") as shot:
    rgb = shot.convert("RGB")
    colours = rgb.getcolors(1 << 20)
top = max(count for count, _ in colours) / (rgb.width * rgb.height)
assert rgb.size == (1280, 1600), rgb.size
assert len(colours) > 200 and top < 0.95, f"blank-looking screenshot: {len(colours)} colours, top {top:.0%}"
print(f"ok: {len(dom.tables[0])} rows in the table's order of {csv}, {dom.thumbs} thumbnails; "
      f"isc click sorts best first; injected script blocked; screenshot {len(colours)} colours, "
      f"most common {top:.0%}")
EOF
mkdir -p "$(dirname "$SHOT")"
cp "$tmp/shot.png" "$SHOT"
echo "wrote $SHOT"
