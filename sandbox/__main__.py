"""`python -m sandbox --port 8090 [--host 127.0.0.1] [--clock-offset SECONDS]`.

SANDBOX_PORT, SANDBOX_HOST and CLOCK_OFFSET_SECONDS are honoured too.
"""

from __future__ import annotations

import argparse
import os

import uvicorn

from sandbox.app import create_app
from sandbox.state import SandboxState


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", "8090")))
    parser.add_argument("--host", default=os.environ.get("SANDBOX_HOST", "127.0.0.1"))
    parser.add_argument("--log-level", default=os.environ.get("SANDBOX_LOG_LEVEL", "info"))
    parser.add_argument(
        "--clock-offset",
        type=float,
        default=os.environ.get("CLOCK_OFFSET_SECONDS") or "0",
        help="seconds the sandbox's clock runs ahead of the machine's (negative: behind); "
        "the services read the same CLOCK_OFFSET_SECONDS",
    )
    args = parser.parse_args()
    state = SandboxState(
        wappi_token=os.environ.get("SANDBOX_WAPPI_TOKEN") or None,
        gemini_api_key=os.environ.get("SANDBOX_GEMINI_API_KEY") or None,
        clock_offset_s=args.clock_offset,
    )
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
