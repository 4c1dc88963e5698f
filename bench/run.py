"""`make bench` (python -m bench.run from the repo root): every scenario of the benchmarks issue, each figure
measured in this run beside its baseline, printed as one table and saved as bench/results/bench-<time>.json.

Everything (load generator, sandbox, both services, PostgreSQL, RabbitMQ) shares this machine's cores, so
figures are comparable with each other within a run, not with another machine. `--quick` is a smaller
run (about two minutes) that checks the bench itself works."""

import argparse
import asyncio
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from typing import Any

from bench import ROOT
from bench.baseline_run import run_baseline
from bench.common import loadavg
from bench.kb_cost import run_kb_cost
from bench.llm_bound import run_llm_bound
from bench.pipeline import run_pipeline
from bench.polling import run_polling
from bench.report import (
    kb_rows,
    llm_rows,
    memory_rows,
    pipeline_rows,
    polling_rows,
    render_table,
    webhook_rows,
    write_json,
)
from bench.webhooks import WEBHOOK_NOTE, run_webhooks_of

FULL = {
    # 10 msg/s is below what the pipeline sustains here: its latency without queueing.
    "rates": (10, 50, 200, 500),
    "seconds": 30,
    "drain_s": 15,
    "conversations": 300,
    "llm_latency_ms": 2000,
    "llm_limit_s": 75,
    "chats": 1000,
    "idle_cycles": 10,
    "pages": (3, 30, 300),
    # Webhook mode: new customers at this rate, with pushes and polling only; then a fifth of pushes lost,
    # caught by polls every webhook_safety_net_s (WAPPI_WEBHOOK_POLL_INTERVAL, its default here).
    "webhook_rate": 10,
    "webhook_seconds": 30,
    "webhook_drain_s": 15,
    "webhook_safety_net_s": 60,
}
QUICK = FULL | {
    "rates": (20, 60),
    "seconds": 8,
    "drain_s": 8,
    "conversations": 60,
    "llm_limit_s": 30,
    "chats": 200,
    "idle_cycles": 4,
    "pages": (3, 30),
    "webhook_seconds": 8,
    "webhook_drain_s": 8,
    "webhook_safety_net_s": 10,
}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def attempt(name: str, scenario) -> dict[str, Any]:
    """One scenario; a failure is reported in the table instead of ending the run."""
    say(f"[{datetime.now():%H:%M:%S}] {name} (load {loadavg()})")
    started = time.monotonic()
    try:
        result = await scenario
    except Exception as exc:
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    result["took_s"] = round(time.monotonic() - started, 1)
    return result


async def run_pipelines(config: dict[str, Any]) -> dict[str, Any]:
    """Scenario 1 at every offered level, each beside the baseline at the same level."""
    results: dict[str, Any] = {"pipeline": {}, "baseline": {}}
    for rate in config["rates"]:
        seconds, drain = config["seconds"], config["drain_s"]
        results["pipeline"][rate] = await attempt(f"pipeline @{rate}/s", run_pipeline(rate, seconds, drain))
        results["baseline"][rate] = await attempt(f"baseline @{rate}/s", run_baseline(rate, seconds, drain))
    return results


async def run(config: dict[str, Any]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    results["polling"] = await attempt("polling", run_polling(config["chats"], config["idle_cycles"]))
    results |= await run_pipelines(config)
    results["llm"] = await attempt(
        "LLM-bound",
        run_llm_bound(config["conversations"], config["llm_latency_ms"], config["llm_limit_s"]),
    )
    results["kb"] = await attempt("knowledge base cost", run_kb_cost(config["pages"]))
    results["webhooks"] = await attempt("webhooks", run_webhooks_of(config))
    return results


def table_rows(results: dict[str, Any], config: dict[str, Any]) -> list[dict]:
    polling, llm = results["polling"], results["llm"]
    runs = [*results["pipeline"].values(), polling, llm]
    idle = polling.get("memory", {}).get("idle", {})
    after = [r["memory"]["after"] for r in runs if "memory" in r]
    after += [llm["memory_after"]] if "memory_after" in llm else []
    kb = {pages: part for pages, part in results["kb"].items() if pages != "took_s"}
    return [
        *pipeline_rows(results["pipeline"], results["baseline"], config["seconds"]),
        *llm_rows(llm),
        *polling_rows(polling, config["chats"]),
        *kb_rows(kb),
        *memory_rows(idle, after),
        *webhook_rows(results["webhooks"], config["webhook_seconds"]),
    ]


def notes(results: dict[str, Any], started: float, load_before: str) -> list[str]:
    capacity = [b.get("sandbox_requests_per_s") for b in results["baseline"].values() if "error" not in b]
    return [
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; the load generator, sandbox, "
        "both services, PostgreSQL and RabbitMQ all share these cores "
        f"(load average before {load_before}, after {loadavg()}).",
        "Pipeline latency: the gateway's incoming row created_at (first seen) -> the outgoing row's "
        "processed_at, set when fake Wappi answered the reply (the sandbox's sent time is whole seconds). "
        "Polling wait: inject answered -> first seen. 'unanswered': not answered before the drain ended.",
        "Replies/s sustained: replies to this run's messages sent between 5 s after the load started and its "
        "end. Baseline: bench/baseline.py, the same DB/broker/HTTP operations per message (incl. the two "
        "fake-Gemini calls) in one asyncio process, handed each message id without polling.",
        f"Fake Wappi alone answers about {max(capacity, default=0):g} messages/get per second here with "
        "nothing else running; a reply costs it ~6 requests (inject, read, 2 Gemini, mark read, reply).",
        f"Took {time.monotonic() - started:.0f} s.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a small run that checks the bench works")
    parser.add_argument("--only", choices=("webhooks", "pipeline"), help="run this scenario alone")
    parser.add_argument("--rates", help="the pipeline's offered levels, msg/s, comma-separated (e.g. 10,200)")
    args = parser.parse_args()
    config = QUICK if args.quick else FULL
    if args.rates:
        config = config | {"rates": tuple(float(r) for r in args.rates.split(","))}
    started, load_before = time.monotonic(), loadavg()
    stamp = datetime.now(UTC)
    if args.only == "webhooks":
        results = {"webhooks": asyncio.run(attempt("webhooks", run_webhooks_of(config)))}
        rows = webhook_rows(results["webhooks"], config["webhook_seconds"])
        lines = [f"Load average before {load_before}, after {loadavg()}.", WEBHOOK_NOTE]
    elif args.only == "pipeline":
        results = asyncio.run(run_pipelines(config))
        rows = pipeline_rows(results["pipeline"], results["baseline"], config["seconds"])
        lines = [f"Load average before {load_before}, after {loadavg()}."]
    else:
        results = asyncio.run(run(config))
        rows = table_rows(results, config)
        lines = [*notes(results, started, load_before), WEBHOOK_NOTE]
    print(render_table(rows))
    print()
    print("\n".join(f"* {line}" for line in lines))
    path = ROOT / "bench" / "results" / f"bench-{stamp:%Y%m%d-%H%M%S}.json"
    write_json(
        path,
        {"started": stamp.isoformat(), "config": config, "rows": rows, "notes": lines, "results": results},
    )
    print(f"* Written {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
