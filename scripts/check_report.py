"""Open an evaluation report in headless Chromium: every chart must render; save a screenshot.

    python scripts/check_report.py [REPORT_DIR] [--test-file F]

Without REPORT_DIR, evaluates the shipped default model on the test file (default: the held-out
split of scripts/train_default_model.py if present, else the bundled test split) into
reports/check/. Needs a Chromium binary (`apt-get install chromium`). Exits 1 if a chart is
missing or does not decode in the browser; writes REPORT_DIR/screenshot.png.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).map(i => i.alt);
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt);
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = "PROBE " + JSON.stringify({ok, bad, sections: document.querySelectorAll("h2").length});
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if path := shutil.which(name):
            return path
    raise SystemExit("no Chromium found: apt-get install chromium")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("report_dir", nargs="?", type=Path)
    ap.add_argument("--test-file", type=Path)
    args = ap.parse_args()
    browser = chromium()
    report_dir = args.report_dir
    if report_dir is None:
        from sentitune.data import sample_path
        from sentitune.evaluation.report import run_evaluation

        held_out = Path("runs/default/data/test.jsonl")
        test_file = args.test_file or (held_out if held_out.exists() else sample_path("test"))
        report_dir = Path("reports/check")
        run_evaluation(None, test_file, report_dir)
    html = (report_dir / "report.html").read_text()
    expected = len(re.findall(r"<img ", html))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=10000"]
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "report.html"
        probe.write_text(html.replace("</body>", PROBE + "</body>"))
        dom = subprocess.run([browser, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r"PROBE (\{.*?\})", dom.stdout)
    if not found:
        raise SystemExit(f"Chromium did not render the report: {dom.stderr[-500:]}")
    import json

    result = json.loads(found.group(1).replace("&quot;", '"'))
    shot = report_dir / "screenshot.png"
    subprocess.run(
        [browser, *flags, "--window-size=1280,9000", f"--screenshot={shot.resolve()}", (report_dir / "report.html").resolve().as_uri()],
        capture_output=True, timeout=120,
    )
    pixels = Image.open(shot).convert("L")
    inked = float((np.asarray(pixels) < 240).mean())
    print(f"charts rendered: {len(result['ok'])}/{expected} ({', '.join(result['ok'])})")
    print(f"sections: {result['sections']}; screenshot {shot} ({pixels.width}x{pixels.height}, {inked:.1%} non-white)")
    if result["bad"] or len(result["ok"]) != expected or expected < 8 or inked < 0.02:
        print(f"FAILED: not rendered: {result['bad']}", file=sys.stderr)
        sys.exit(1)
    print("report OK")


if __name__ == "__main__":
    main()
