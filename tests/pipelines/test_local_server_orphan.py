"""A local llama.cpp server outlives nothing: when the process that started it is killed (SIGKILL leaves it no
chance to stop the server), the server stops itself instead of holding the model's memory and its port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from helpers import require_smollm2

REPO = Path(__file__).resolve().parents[2]
STARTER = """
import time
from pipelines.llm import LocalLLMServer
server = LocalLLMServer("smollm2-135m", threads=1)
server.start()
print(server.process.pid, flush=True)
time.sleep(600)
"""


def running(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_a_server_whose_starter_is_killed_stops_itself():
    require_smollm2()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    starter = subprocess.Popen([sys.executable, "-c", STARTER], stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)
    try:
        server = int(starter.stdout.readline())
        assert running(server)
        starter.kill()
        starter.wait()
        deadline = time.monotonic() + 30
        while running(server) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not running(server), "the orphaned server is still running"
    finally:
        if starter.poll() is None:
            starter.kill()
