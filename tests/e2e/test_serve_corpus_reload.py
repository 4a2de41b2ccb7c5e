"""`evolve serve` over a corpus `evolve ingest` keeps: a new version is swapped in while requests keep coming."""

import threading
import time

import httpx

from evalsets.ingest import ingest
from helpers import Server

HYBRID = ("name: hybrid-minilm\nchunking: {kind: paragraph, size: 800}\ndense: {model: all-MiniLM-L6-v2}\n"
          "lexical: {tokenizer: english}\nfusion: {kind: rrf}\n")


def test_new_corpus_version_is_served_without_dropping_requests(tmp_path):
    drive = tmp_path / "drive"
    drive.mkdir()
    for number in range(12):
        (drive / f"note-{number}.md").write_text(f"# Note {number}\n\nThe meeting about budget item {number} moved "
                                                 f"to room {100 + number}.\n", "utf-8")
    (drive / "old-policy.md").write_text("# Travel\n\nTravel must be booked through the portal.\n", "utf-8")
    corpus = tmp_path / "corpus"
    first = ingest([drive], corpus, workers=1)
    project = tmp_path / "project"
    project.mkdir()
    server = Server(corpus, project, "--reload-every", "0.3", config=HYBRID)
    try:
        health = httpx.get(server.url + "/health").json()
        assert health["corpus_version"] == first.version and health["documents"] == 13
        failures, answered, stop = [], [], threading.Event()

        def keep_asking():
            while not stop.is_set():
                try:
                    reply = httpx.post(server.url + "/search", json={"query": "where is the budget meeting", "k": 3},
                                       timeout=30)
                    reply.raise_for_status()
                    answered.append(reply.json()["hits"][0]["doc_id"])
                except httpx.HTTPError as err:
                    failures.append(repr(err))

        asker = threading.Thread(target=keep_asking)
        asker.start()
        (drive / "old-policy.md").unlink()
        (drive / "vpn.md").write_text("# VPN\n\nThe VPN gateway listens on port 443 and needs the company "
                                      "certificate.\n", "utf-8")
        second = ingest([drive], corpus, workers=1)
        deadline = time.time() + 120
        while httpx.get(server.url + "/health").json()["corpus_version"] != second.version:
            assert time.time() < deadline, server.process.stdout
            time.sleep(0.2)
        time.sleep(0.5)
        stop.set()
        asker.join()
        assert not failures and len(answered) > 3
        health = httpx.get(server.url + "/health").json()
        assert health["documents"] == 13
        hits = httpx.post(server.url + "/search", json={"query": "VPN gateway port certificate", "k": 13}).json()["hits"]
        assert hits[0]["doc_id"] == "drive/vpn.md"
        assert "drive/old-policy.md" not in {h["doc_id"] for h in hits}
    finally:
        server.stop()
    output = server.process.stdout.read()
    assert f"corpus version {second.version}: 1 chunks added, 1 removed, 12 kept" in output
