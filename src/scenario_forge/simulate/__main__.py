"""``python -m scenario_forge.simulate``: run a simulated OpenAI-compatible server on loopback.

    python -m scenario_forge.simulate --curve vllm-h100-qwen3-8b --concurrency 256 --port 8001
    scenario-forge generate --backend openai --base-url http://127.0.0.1:8001/v1 --concurrency 256 ...
    curl http://127.0.0.1:8001/stats     # tokens served, mean sequences in flight, capacity used

Bad input (a curve file that is missing or malformed, a concurrency below 1): one ``error:`` line
on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from .curve import CurveError, load_curve, shipped_curves
from .server import SimServer


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m scenario_forge.simulate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--curve", default="vllm-h100-smollm2-135m",
                    help=f"a shipped curve ({', '.join(shipped_curves())}) or a curve JSON file")
    ap.add_argument("--concurrency", type=int, default=256, help="sequences decoded at once; the rest queue")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8001, help="0 picks a free port (printed)")
    ap.add_argument("--model", default=None, help="model name served in /v1/models (default: the curve's)")
    ap.add_argument("--reply-tokens", type=int, default=0,
                    help="simulated output tokens per reply, capped by max_tokens (0: the text's length / 4)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.concurrency < 1:
        print(f"error: --concurrency must be at least 1, not {args.concurrency}", file=sys.stderr)
        return 2
    if args.reply_tokens < 0:
        print(f"error: --reply-tokens must be 0 or more, not {args.reply_tokens}", file=sys.stderr)
        return 2
    try:
        curve = load_curve(args.curve)
    except CurveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    server = SimServer(curve, concurrency=args.concurrency, model=args.model, host=args.host, port=args.port,
                       reply_tokens=args.reply_tokens)

    async def run() -> None:
        task = asyncio.create_task(server.serve())
        while server._server is None and not task.done():
            await asyncio.sleep(0.01)
        if not task.done():
            print(f"serving {server.model} ({curve.name}, {server.sim.capacity:.0f} tok/s at {args.concurrency} "
                  f"in flight) at {server.url}", flush=True)
        await task

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port} ({exc.strerror or exc})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
