"""Stand-in for llama-server: same flags, serves the fake gateway, misbehaves on request."""

import argparse
import os
import sys
import time
from pathlib import Path

from pytest_llmeval.testing import FakeGateway

parser = argparse.ArgumentParser()
for flag in (
    "--model", "--host", "--port", "--parallel", "--ctx-size", "--threads", "--alias",
    "--pooling", "--batch-size", "--ubatch-size",
):  # fmt: skip
    parser.add_argument(flag)
for switch in ("--no-webui", "--offline", "--embeddings"):
    parser.add_argument(switch, action="store_true")
args = parser.parse_args()
log = os.environ.get("STANDIN_LOG")
if log:
    with open(log, "a") as handle:
        handle.write(f"{os.getpid()} {args.port} {args.model} {args.embeddings} {args.pooling}\n")
mode = os.environ.get("STANDIN_MODE", "ok")
once = Path(os.environ.get("STANDIN_ONCE", "/nonexistent"))
if mode == "bind-once" and not once.exists():
    once.write_text("failed once")
    mode = "bind"
if mode == "bind":
    print(f"couldn't bind HTTP server socket, hostname: 127.0.0.1, port: {args.port}", flush=True)
    sys.exit(1)
if mode == "crash":
    print("error: failed to load model: invalid magic", flush=True)
    sys.exit(1)
if mode == "sigill":
    import resource
    import signal

    print("load_tensors: CPU_REPACK model buffer size = 60.00 MiB", flush=True)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.kill(os.getpid(), signal.SIGILL)
time.sleep(float(os.environ.get("STANDIN_DELAY", "0")))
if mode == "hang":
    time.sleep(3600)
gateway = FakeGateway(port=int(args.port)).start()
gateway.add_model(args.alias, "PASS")
print("server is listening", flush=True)
while True:
    time.sleep(1)
