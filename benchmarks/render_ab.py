"""render_throughput.py A/B: this checkout against an earlier one, alternated in one run.

The UI's CPU per token differs by 2x between machines of the same kind, so a change is
measured against the code before it in one run, on one machine: each round runs part 1b
(a scripted answer at the demo model's 11 tok/s, UI thread CPU per token, with and without
painting the text) once per side, in an order that alternates between rounds (A B, B A, …),
each in a fresh process (with `--part 1`, also part 1: the lag at 2,000 tok/s). The same
benchmark script measures both sides; MLXCHAT_CODE points it at the side's code, run with
that side's own virtual environment.

When `textual-speedups` is installed here, a third side runs this checkout with it
(Textual uses it unless TEXTUAL_SPEEDUPS=0, which the other sides get).

    git worktree add ../before 6f14071        # the code before, with its own venv:
    (cd ../before && python3 -m venv .venv && .venv/bin/pip install -q -e .)
    python benchmarks/render_ab.py --base ../before [--rounds 4] [--part 1b] [--part 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
SCRIPT = HERE / "benchmarks" / "render_throughput.py"
RESULT = re.compile(r"CPU per token ([\d.]+) ms .*without painting the text ([\d.]+) ms")
LAG = re.compile(r"\(painted\) : max +([\d.]+) ms +p99 +([\d.]+) ms +median +([\d.]+)")
EXACT = re.compile(
    r"streamed text == sent: (\w+); final render source == sent: (\w+); saved == sent: (\w+)"
)


@dataclass
class Side:
    """One thing measured: a Python, the code it runs, and whether Textual gets speedups."""

    name: str
    python: str
    code: Path
    speedups: bool = False
    painted: list[float] = field(default_factory=list)
    unpainted: list[float] = field(default_factory=list)
    lags: list[tuple[float, float, float]] = field(default_factory=list)
    exact: list[bool] = field(default_factory=list)

    def run(self, parts: list[str]) -> None:
        """Run the parts once in a fresh process and keep their numbers."""
        env = {
            **os.environ,
            "MLXCHAT_CODE": str(self.code),
            "TEXTUAL_SPEEDUPS": "1" if self.speedups else "0",
        }
        done = subprocess.run(
            [self.python, str(SCRIPT), *(arg for part in parts for arg in ("--part", part))],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.code,
            check=False,
        )
        found, lag = RESULT.search(done.stdout), LAG.search(done.stdout)
        if done.returncode or ("1b" in parts and not found) or ("1" in parts and not lag):
            sys.exit(f"{self.name}: the benchmark failed:\n{done.stdout}{done.stderr[-3000:]}")
        line = f"  {self.name:24}"
        if lag:
            self.lags.append((float(lag[1]), float(lag[2]), float(lag[3])))
            same = EXACT.search(done.stdout)
            self.exact.append(bool(same) and same.groups() == ("True", "True", "True"))
            line += f" part 1 lag max {lag[1]:>6} p99 {lag[2]:>6} median {lag[3]:>5} ms;"
        if found:
            self.painted.append(float(found[1]))
            self.unpainted.append(float(found[2]))
            line += f" part 1b {found[1]:>5} ms/token (without painting {found[2]})"
        print(line)


def commit(code: Path) -> str:
    """The checkout's commit, and whether it has changes."""
    head = subprocess.run(
        ["git", "-C", str(code), "log", "-1", "--format=%h %s"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(code), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return head[:72] + (" (+ uncommitted changes)" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="checkout of the earlier code")
    parser.add_argument("--base-python", help="default: BASE/.venv/bin/python")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--part", action="append", choices=["1", "1b"], help="default: 1b")
    parser.add_argument(
        "--most", type=float, default=1.1, help="goal: at most this many times before's CPU"
    )
    args = parser.parse_args()
    base = args.base.resolve()
    sides = [
        Side("before", args.base_python or str(base / ".venv" / "bin" / "python"), base),
        Side("now", sys.executable, HERE),
    ]
    if importlib.util.find_spec("textual_speedups") is not None:
        sides.append(Side("now + textual-speedups", sys.executable, HERE, speedups=True))
    print(f"before: {commit(base)}\nnow:    {commit(HERE)}")
    if len(sides) == 2:
        print("(textual-speedups is not installed here: pip install textual-speedups to add it)")
    parts = args.part or ["1b"]
    for number in range(args.rounds):
        print(f"round {number + 1}/{args.rounds}")
        for side in sides if number % 2 == 0 else sides[::-1]:
            side.run(parts)
    if "1" in parts:
        print("\npart 1 at 2,000 tok/s, lag to the screen (ms), per run: max / p99 / median")
        for side in sides:
            runs = ", ".join(f"{m:.0f}/{p:.0f}/{d:.0f}" for m, p, d in side.lags)
            worst = statistics.median(m for m, _, _ in side.lags)
            text = "text exact" if all(side.exact) else "TEXT DIFFERS"
            print(f"  {side.name:24} {runs}  (median of the max: {worst:.0f} ms; {text})")
    if "1b" not in parts:
        return
    before = statistics.median(sides[0].painted)
    print("\nmedian UI thread CPU per token at 11 tok/s (with / without painting the text):")
    for side in sides:
        painted, unpainted = statistics.median(side.painted), statistics.median(side.unpainted)
        change = (painted / before - 1) * 100
        print(f"  {side.name:24} {painted:5.2f} ms / {unpainted:5.2f} ms   {change:+5.1f} %")
    now = statistics.median(sides[1].painted)
    ratio = now / before
    verdict = "ok" if ratio <= args.most else "NOT MET"
    rounds = [n / b for n, b in zip(sides[1].painted, sides[0].painted, strict=True)]
    each = ", ".join(f"{r:.2f}" for r in rounds)
    print(f"now / before: {ratio:.2f}x the UI CPU per token (goal <= {args.most:g}x: {verdict})")
    print(f"per round: {each} (median {statistics.median(rounds):.2f}x)")


if __name__ == "__main__":
    main()
