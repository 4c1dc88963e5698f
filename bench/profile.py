"""`python -m bench.profile --label before|after`: where each service spends its CPU under load.

Starts the system as the bench does, injects a burst of new leads at once and, while both services work
through it, samples each with py-spy for a fixed time. Writes one flame graph per service
(bench/results/flame-<service>-<label>.svg) and prints each graph's costliest frames (share of samples,
callees included) so the notes can quote them."""

import argparse
import asyncio
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from bench import ROOT
from bench.common import (
    BENCH_SETTINGS,
    customer_message,
    inject_all,
    new_system,
    offer_load,
    wait_for_sent,
)

RESULTS = ROOT / "bench" / "results"
PY_SPY = ROOT / ".venv" / "bin" / "py-spy"
# py-spy writes each frame's totals into its title: "name (file:line) (1,234 samples, 5.67%)".
FRAME = re.compile(
    r"<title>(?P<name>.+?) \((?P<where>[^()]*)\) \((?P<samples>[\d,]+) samples?, [\d.]+%\)</title>"
)
# Frames that only say the process is running its loop: every sample has them, they explain nothing.
PLUMBING = ("<module>", "run (asyncio", "run_forever", "_run_once", "_run (asyncio", "run_until_complete")


def record(pid: int, seconds: int, output: Path) -> subprocess.Popen:
    """py-spy sampling one process without pausing it (--nonblocking), as an SVG flame graph."""
    command = [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(seconds), "--nonblocking"]
    command += ["--format", "flamegraph", "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def top_frames(svg: Path, count: int = 25) -> list[tuple[str, float]]:
    """The frames with the largest share of all samples, callees included; a frame met in several stacks is
    summed over them (a recursive frame is counted once per stack)."""
    samples: dict[str, int] = defaultdict(int)
    total = 0
    for match in FRAME.finditer(svg.read_text(encoding="utf-8")):
        n = int(match["samples"].replace(",", ""))
        label = f"{match['name']} ({match['where'].rsplit(':', 1)[0]})"
        if match["name"] == "all":
            total = n
            continue
        samples[label] += n
    total = total or max(samples.values(), default=1)
    shares = [(label, 100 * n / total) for label, n in samples.items()]
    shares = [s for s in shares if not any(p in s[0] for p in PLUMBING)]
    return sorted(shares, key=lambda s: -s[1])[:count]


async def profile(
    label: str, leads: int, seconds: int, delay_s: float, rate: float | None
) -> dict[str, Path]:
    system = new_system()
    await asyncio.to_thread(system.start, BENCH_SETTINGS)
    outputs = {name: RESULTS / f"flame-{name}-{label}.svg" for name in system.services}
    try:
        if rate:  # a steady load for the whole sampling time, the bench's 10 msg/s level
            make = lambda i: customer_message("77078", i)  # noqa: E731
            load = offer_load(system.sandbox_url, rate, delay_s + seconds, make)
        else:
            load = inject_all(system.sandbox_url, [customer_message("77077", i) for i in range(leads)])
        injecting = asyncio.create_task(load)
        await asyncio.sleep(delay_s)  # the load is under way: the pipeline is busy when sampling starts
        samplers = {n: record(s.process.pid, seconds, outputs[n]) for n, s in system.services.items()}
        for name, sampler in samplers.items():
            _, errors = await asyncio.to_thread(sampler.communicate)
            if sampler.returncode != 0:
                raise RuntimeError(f"py-spy on {name}: {errors.decode(errors='replace')}")
        injected = await injecting
        if rate:
            injected = injected.injected
        answered = await wait_for_sent(system.gateway.database_url, len(injected), 0)
        print(f"{len(injected)} leads injected, {answered} answered when sampling ended", file=sys.stderr)
    finally:
        await asyncio.to_thread(system.stop)
    return outputs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--label", default="before", help="flame-<service>-<label>.svg")
    parser.add_argument("--leads", type=int, default=400, help="new customers injected at once")
    parser.add_argument("--seconds", type=int, default=25, help="how long each service is sampled")
    parser.add_argument("--delay", type=float, default=2.0, help="seconds into the burst before sampling")
    parser.add_argument("--rate", type=float, help="a steady load of this many msg/s instead of a burst")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    outputs = asyncio.run(profile(args.label, args.leads, args.seconds, args.delay, args.rate))
    for svg in outputs.values():
        print(f"\n{svg.relative_to(ROOT)}: share of samples, callees included")
        for frame, share in top_frames(svg):
            print(f"{share:6.1f}%  {frame}")


if __name__ == "__main__":
    main()
