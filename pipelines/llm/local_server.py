"""A CPU OpenAI-compatible server (llama.cpp via xllamacpp) that evolve starts and stops itself.

Used by CI, laptops, and `evolve start` when no endpoint (vLLM) is configured:

    python -m pipelines.llm.local_server --model smollm2-135m --port 8080

With a key (``--api-key-file FILE``, or ``EVOLVE_LOCAL_LLM_API_KEY``) the server refuses requests without it (401),
as a vLLM started with ``--api-key`` does; the key never goes on the command line, where every ``ps`` shows it.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from pipelines.llm.client import LLMSettings


MODES = ("chat", "embedding", "rerank")
RANK_POOLING = 4
"""llama.cpp's LLAMA_POOLING_TYPE_RANK: the rank head's score per (query, document) pair."""
PARENT_CHECK_S = 1.0
"""How often the server checks that the process that started it is alive."""
KEY_VARIABLE = "EVOLVE_LOCAL_LLM_API_KEY"
"""How :class:`LocalLLMServer` hands its key to the server process (set or removed there, never inherited)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalLLMServer:
    """Context manager: starts the server on 127.0.0.1 and a free port, stops it on exit."""

    def __init__(self, model: str = "smollm2-135m", threads: int = 1, ctx: int | None = None, parallel: int = 1,
                 log: Path | None = None, startup_timeout: float = 180, gguf: Path | None = None,
                 mode: str = "chat", api_key: str | None = None):
        """``mode``: 'chat' (completions), 'embedding' (``/v1/embeddings`` with the model's own pooling) or
        'rerank' (``/v1/rerank``, a GGUF with a rank head, e.g. from ``pipelines.remote.export_bert_gguf``);
        ``gguf``: a file to serve as ``model`` instead of a packaged model's. ``ctx``: tokens per slot (the server gets
        ``ctx`` times ``parallel``, as llama.cpp divides its context between slots); by default what the model was
        trained for, so long prompts (failure examples quoting Korean pages) fit, not llama.cpp's 4,096.
        ``api_key``: the key the server demands (and :attr:`settings` sends); None: it takes any request."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: one of {', '.join(MODES)}")
        self.model, self.threads, self.ctx, self.parallel = model, threads, ctx, parallel
        self.gguf, self.mode, self.api_key = gguf, mode, api_key
        self.port = free_port()
        self.log = log
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None

    @property
    def context(self) -> int:
        """Tokens per slot: ``ctx`` when given, else the model's trained context (read once)."""
        if self.ctx is None:
            from pipelines.llm.models import trained_context

            self.ctx = trained_context(self.model, self.gguf)
        return self.ctx

    @property
    def settings(self) -> LLMSettings:
        return LLMSettings(base_url=f"http://127.0.0.1:{self.port}/v1", model=self.model,
                           max_concurrency=self.parallel, timeout_s=300, context_tokens=self.context,
                           api_key=self.api_key)

    def start(self) -> LLMSettings:
        import httpx

        from pipelines.llm.models import resolve_gguf

        gguf = self.gguf or resolve_gguf(self.model)
        output = self.log.open("ab") if self.log else subprocess.DEVNULL
        env = {name: value for name, value in os.environ.items() if name != KEY_VARIABLE}
        env.update({KEY_VARIABLE: self.api_key} if self.api_key else {})
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self.process = subprocess.Popen([sys.executable, "-m", "pipelines.llm.local_server", "--gguf", str(gguf),
                                         "--alias", self.model, "--port", str(self.port), "--threads",
                                         str(self.threads), "--ctx", str(self.context), "--parallel",
                                         str(self.parallel), "--mode", self.mode],
                                        stdout=output, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/v1/models", headers=headers,
                             timeout=2).status_code == 200:
                    return self.settings
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"local LLM server exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"local LLM server did not answer within {self.startup_timeout:.0f} s")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> LLMSettings:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="llama.cpp OpenAI-compatible server (xllamacpp)")
    parser.add_argument("--gguf", required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ctx", type=int, help="tokens per slot (default: what the model was trained for)")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--mode", choices=MODES, default="chat")
    parser.add_argument("--api-key-file", type=Path, help=f"file holding the key clients must send as 'Authorization: "
                                                          f"Bearer KEY' (default: ${KEY_VARIABLE}, else none)")
    args = parser.parse_args()
    key = (args.api_key_file.read_text(encoding="utf-8") if args.api_key_file else
           os.environ.get(KEY_VARIABLE, "")).strip()

    import xllamacpp

    from pipelines.llm.models import trained_context

    ctx = args.ctx or trained_context(args.alias, Path(args.gguf))
    params = xllamacpp.CommonParams()
    params.model.path = args.gguf
    params.model_alias = {args.alias}
    params.n_ctx = ctx * args.parallel
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.port = args.port
    params.hostnames = ["127.0.0.1"]
    if key:
        params.api_keys = [key]
    if args.mode != "chat":
        params.embedding = True
        params.n_batch = params.n_ubatch = ctx  # an encoder takes a whole input in one batch
    if args.mode == "rerank":
        params.pooling_type = RANK_POOLING
    server = xllamacpp.Server(params)  # noqa: F841  (serves while referenced)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    parent = os.getppid()
    # a process killed with SIGKILL cannot stop its server: the server stops itself when it is orphaned (its parent
    # changes), instead of holding the model's memory and a port until someone finds it
    while not stopped.wait(PARENT_CHECK_S):
        if os.getppid() != parent:
            break


if __name__ == "__main__":
    main()
