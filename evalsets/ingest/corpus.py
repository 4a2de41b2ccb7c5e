"""A living corpus folder: the standard layout (``corpus.jsonl``), plus what makes it incremental and versioned.

    <corpus>/corpus.jsonl            the documents (doc_id, title, text, metadata), what every command reads
    <corpus>/manifest.json           the current version, and per source file: size, mtime, sha256, format, doc_ids
    <corpus>/versions/<version>.json each version's documents and their content hashes (for `--since VERSION`)
    <corpus>/ingest-report.json      the last run: what was added, changed, removed and skipped (with reasons)

A version is the hash of the sorted (doc_id, content hash) pairs, so the same documents give the same version
whatever order or machine read them. Files are replaced atomically, the manifest last: a crash leaves the previous
version whole (the next run reads the files it was reading again). A version is written under an exclusive lock
of ``<corpus>/.lock`` and :func:`read_versioned` reads the documents and their version under a shared one, so a
reader never pairs one version's name with another's documents.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalsets.errors import EvalSetError
from evalsets.jsonl import json_line
from evalsets.loader import read_corpus
from evalsets.model import Document

MANIFEST = "manifest.json"
VERSIONS = "versions"
LOCK = ".lock"
RUN_LOCK = ".ingest.lock"


def document_hash(doc: Document) -> str:
    digest = hashlib.sha256()
    for part in (doc.title, doc.text):
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()[:16]


def corpus_version_of(hashes: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for doc_id in sorted(hashes):
        digest.update(f"{doc_id}\x00{hashes[doc_id]}\n".encode("utf-8"))
    return digest.hexdigest()[:12]


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")  # one per writer
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def document_line(doc: Document) -> str:
    return json_line({"doc_id": doc.doc_id, "title": doc.title, "text": doc.text, "metadata": doc.metadata})


@dataclass
class CorpusFolder:
    """The folder `evolve ingest --corpus` writes and the loop, `evolve serve` and `evolve evalset synthesize`
    read. A folder without a manifest is a hand-written corpus: it has no version and is never changed here."""

    root: Path

    @property
    def corpus_file(self) -> Path:
        return self.root / "corpus.jsonl"

    @property
    def manifest_file(self) -> Path:
        return self.root / MANIFEST

    def manifest(self) -> dict[str, Any]:
        """The current manifest ({} before the first ingest)."""
        if not self.manifest_file.is_file():
            return {}
        try:
            return json.loads(self.manifest_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise EvalSetError(f"manifest is not valid JSON ({err.msg}); run `evolve ingest` again", self.manifest_file)

    def version(self) -> str | None:
        return self.manifest().get("version")

    @contextmanager
    def locked(self, exclusive: bool = False) -> Iterator[None]:
        """The folder's lock: exclusive while a version is written, shared while one is read. A reader that can
        neither open nor create the lock file (a read-only copy) reads without it: nothing writes there."""
        path = self.root / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            if exclusive:
                raise
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                yield
                return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    @contextmanager
    def run_lock(self) -> Iterator[None]:
        """Held by `evolve ingest` for its whole run, so two ingests into one corpus do not read the same old version
        and overwrite each other (the second waits). A file apart from ``.lock``: readers, which take ``.lock``
        shared, are kept waiting only while a version is written, not while files are read."""
        fd = os.open(self.root / RUN_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def consistent(self) -> bool:
        """Whether corpus.jsonl is the file the manifest names (by sha256): a run killed between replacing the two
        leaves them disagreeing, and the next ingest then reads every file again instead of trusting either."""
        expected = self.manifest().get("corpus_sha256")
        if expected is None or not self.corpus_file.is_file():
            return expected is None
        digest = hashlib.sha256()
        with open(self.corpus_file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest() == expected

    def documents(self) -> list[Document]:
        return read_corpus(self.corpus_file) if self.corpus_file.is_file() else []

    def version_hashes(self, version: str) -> dict[str, str]:
        """doc_id -> content hash of a past version; an unknown version is a clear error naming the known ones."""
        path = self.root / VERSIONS / f"{version}.json"
        if not path.is_file():
            known = sorted(p.stem for p in (self.root / VERSIONS).glob("*.json"))
            raise EvalSetError(f"no corpus version {version!r} here (versions: {', '.join(known) or 'none'})",
                               self.root)
        return json.loads(path.read_text(encoding="utf-8"))["documents"]

    def changed_since(self, version: str) -> list[str]:
        """Documents of the current version that are new or changed since ``version``."""
        before = self.version_hashes(version)
        now = {doc.doc_id: document_hash(doc) for doc in self.documents()}
        return sorted(doc_id for doc_id, digest in now.items() if before.get(doc_id) != digest)

    def history(self) -> list[dict[str, Any]]:
        """Every version written here, oldest first: version, parent, created, counts."""
        rows = []
        for path in (self.root / VERSIONS).glob("*.json"):
            data = json.loads(path.read_text(encoding="utf-8"))
            rows.append({k: data.get(k) for k in ("version", "parent", "created", "counts")})
        parents = {row["version"]: row["parent"] for row in rows}

        def depth(version: str | None) -> int:  # versions written within one second: a parent before its child
            seen: set[str | None] = set()
            while version in parents and version not in seen:
                seen.add(version)
                version = parents[version]
            return len(seen)

        return sorted(rows, key=lambda row: (row["created"] or "", depth(row["version"])))

    def write(self, documents: list[Document], files: dict[str, dict[str, Any]], sources: list[str],
              counts: dict[str, int]) -> str:
        """Write a new version (documents sorted by id) and its manifest; returns the version."""
        if not documents:
            raise EvalSetError("no documents were extracted: nothing to write (see the skipped files)", self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / VERSIONS).mkdir(exist_ok=True)
        with self.locked(exclusive=True):
            return self._write(documents, files, sources, counts)

    def _write(self, documents: list[Document], files: dict[str, dict[str, Any]], sources: list[str],
               counts: dict[str, int]) -> str:
        documents = sorted(documents, key=lambda d: d.doc_id)
        hashes = {doc.doc_id: document_hash(doc) for doc in documents}
        version = corpus_version_of(hashes)
        parent = self.version()
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        write_atomically(self.root / VERSIONS / f"{version}.json",
                         json.dumps({"version": version, "parent": parent, "created": created, "counts": counts,
                                     "documents": hashes}, ensure_ascii=False))
        text = "".join(document_line(doc) for doc in documents)
        write_atomically(self.corpus_file, text)
        write_atomically(self.manifest_file, json.dumps({"version": version, "parent": parent, "created": created,
                                                         "sources": sources, "documents": len(documents),
                                                         "corpus_sha256": hashlib.sha256(
                                                             text.encode("utf-8")).hexdigest(),
                                                         "files": files}, ensure_ascii=False, indent=1))
        return version


def corpus_version(folder: Path | str) -> str | None:
    """The version of an ingested corpus folder (or of the folder holding a corpus.jsonl); None when hand-written."""
    path = Path(folder)
    return CorpusFolder(path.parent if path.is_file() else path).version()


def read_versioned(path: Path | str) -> tuple[list[Document], str | None]:
    """The documents of a corpus (a folder, or its corpus.jsonl) and the version they are, read together under the
    folder's shared lock: an `evolve ingest` writing meanwhile waits, so the version names exactly these documents
    (None for a hand-written corpus)."""
    path = Path(path)
    folder = CorpusFolder(path if path.is_dir() else path.parent)
    file = folder.corpus_file if path.is_dir() else path
    if not folder.manifest_file.is_file():
        return read_corpus(file), None
    with folder.locked():
        return read_corpus(file), folder.version()
