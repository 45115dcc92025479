"""The behaviour suite (EVAL half) on a model: failure rate per test, the worst failure, the time taken.

    python benchmarks/behaviour.py [--model-path DIR] [--seed 0]

Default: the shipped default model. Writes the "behaviour" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sentitune  # noqa: E402
from benchmarks.results import markdown_table, write_section  # noqa: E402
from sentitune.evaluation.behaviour import build_suite, run_behaviour  # noqa: E402


def example(result: dict) -> str:
    if not result["examples"]:
        return "-"
    e = result["examples"][0]
    text = f"{e['text']} (P(pos) {e['p_positive']:.2f})"
    if "variant" in e:
        text += f" → {e['variant']} ({e['variant_p_positive']:.2f})"
    return text.replace("|", "\\|")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-path", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    model = sentitune.load(args.model_path)
    wall, cpu = time.perf_counter(), time.process_time()
    tests = build_suite(args.seed)
    results = run_behaviour(model, seed=args.seed, tests=tests)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    load = os.getloadavg()[0]
    rows = [[r["capability"], r["name"], r["kind"], r["cases"], f"{r['failure_rate']:.1%}", example(r)]
            for r in results["tests"]]
    caps = [[c, f"{v:.1%}"] for c, v in results["by_capability"].items()]
    name = args.model_path.name if args.model_path else "the shipped default model"
    body = (
        f"{name}, seed {args.seed}: {len(tests)} tests, {results['cases']:,} cases, {results['texts']:,} distinct texts; "
        f"**mean failure rate {results['mean_failure_rate']:.1%}**. Whole run (generation + scoring) {wall:.1f} s wall, "
        f"{cpu:.1f} s CPU (load average {load:.1f} while it ran; scoring alone {results['seconds']:.1f} s).\n\n"
        "mft: the expected label; inv: the label must not change; dir: P(positive) must not move the wrong way by "
        "more than 0.1. The example is the worst failure (P(positive) before → after for inv/dir).\n\n"
        + markdown_table(["capability", "test", "kind", "cases", "failure rate", "worst failure"], rows)
        + "\n\nMean failure rate by capability:\n\n" + markdown_table(["capability", "mean failure rate"], caps)
    )
    print(body)
    threads = os.environ.get("SENTITUNE_THREADS")
    command = (f"SENTITUNE_THREADS={threads} " if threads else "") + "python " + " ".join(["benchmarks/behaviour.py", *sys.argv[1:]])
    write_section("behaviour", "Behaviour suite (issue 14)", body, command=command)


if __name__ == "__main__":
    main()
