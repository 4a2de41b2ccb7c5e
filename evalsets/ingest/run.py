"""`evolve ingest`: walk sources, read new and changed files in parallel, write the next corpus version.

A file is read again only when its content or its reader changed (the manifest keeps each file's ``format@version``:
a reader fix reaches existing corpora): a file whose size and modification time match the manifest
is taken as it was (``rehash=True`` hashes every file anyway), one whose sha256 matches keeps its documents (or
the reason it gave none: a corrupt file is not read again until it changes), and a file gone from the sources takes
its documents with it. Every file that gives no document is in the report
with its reason, and so is every file read only in part (``partial``: a truncated HWP kept as its preview); hidden and system files (``.git/``, ``~$`` lock files, ``Thumbs.db``) are counted as ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalsets.errors import EvalSetError
from evalsets.ingest import formats  # noqa: F401  (registers every format)
from evalsets.ingest.base import READERS, ExtractionError, Extracted, ReadOptions
from evalsets.ingest.corpus import CorpusFolder, write_atomically
from evalsets.ingest.workers import load_plugins, read_isolated
from evalsets.model import Document

Progress = Callable[[str, int, int], None]
SYSTEM_FILES = {"thumbs.db", "desktop.ini", ".ds_store"}
LEGACY = {".doc": "Word 97-2003", ".xls": "Excel 97-2003", ".ppt": "PowerPoint 97-2003", ".rtf": "RTF"}
DEFAULT_MAX_MB = 200.0
DEFAULT_MAX_REMOVAL_SHARE = 0.2
INFLATION = 20
"""A zip-based file (DOCX, XLSX, PPTX, HWPX) may inflate to this many times --max-file-mb, unless told otherwise."""
POOL_MIN_FILES = 64
"""Fewer files are read in this process: starting worker processes costs about a second each (imports), more than
reading a few dozen files."""


@dataclass
class Skipped:
    path: str
    kind: str
    reason: str


@dataclass
class IngestReport:
    corpus: str
    version: str | None = None
    previous_version: str | None = None
    files: int = 0
    read: int = 0
    unchanged: int = 0
    added_files: int = 0
    changed_files: int = 0
    removed_files: int = 0
    documents: int = 0
    added_documents: int = 0
    changed_documents: int = 0
    removed_documents: int = 0
    ignored: int = 0
    seconds: float = 0.0
    formats: dict[str, int] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    partial: list[Skipped] = field(default_factory=list)
    """Files read only in part: their documents are in the corpus, marked ``metadata["partial"]``."""

    def skipped_by_kind(self) -> dict[str, int]:
        return dict(Counter(s.kind for s in self.skipped))


def _ignored(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts if path != root else (path.name,)
    return any(p.startswith(".") for p in parts) or path.name.startswith("~$") or path.name.lower() in SYSTEM_FILES


def walk(source: Path, follow_links: bool = False) -> Iterator[tuple[Path, bool, Skipped | None]]:
    """(file, ignored, refusal) under a folder, sorted so runs are repeatable; a single file yields itself. Unless
    ``follow_links``, a symlink to a file outside the source and a symlinked folder are yielded with the reason
    they are not read (a link inside the source is read: its target is part of the source anyway)."""
    if source.is_file():
        yield source, False, None
        return
    inside = source.resolve()
    for folder, dirs, names in os.walk(source, followlinks=follow_links):
        dirs.sort()
        for name in list(dirs):
            path = Path(folder) / name
            if not follow_links and path.is_symlink():
                dirs.remove(name)
                if not _ignored(path, source):
                    yield path, False, Skipped("", "link", f"a symlinked folder (to {display(os.readlink(path))}) "
                                                           "is not followed: give --follow-links to read it")
        for name in sorted(names):
            path = Path(folder) / name
            refusal = None
            if not follow_links and path.is_symlink():
                target = path.resolve()
                if target != inside and inside not in target.parents:
                    refusal = Skipped("", "link-outside", f"a symlink to {display(str(target))}, outside the "
                                                          "source: give --follow-links to read it")
            yield path, _ignored(path, source), refusal


def display(text: str) -> str:
    """A file name as text that is always valid UTF-8: bytes that are not UTF-8 (a CP949 name from an old Windows
    share, kept by Python as surrogates) become ``\\xNN`` escapes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def inflated_too_large(path: Path, cap: float) -> str | None:
    """Why a zip-based file would inflate past ``cap`` bytes (one member or all together), None when it would
    not or it is no zip: the sizes a zip declares are checked before any member is read."""
    try:
        if not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return None  # the reader reports what is wrong with it
    total = 0
    for member in members:
        total += member.file_size
        if member.file_size > cap:
            return (f"{display(member.filename)} inflates to {member.file_size / 1e6:.0f} MB, over the "
                    f"{cap / 1e6:.0f} MB limit (--max-inflated-mb)")
    if total > cap:
        return f"inflates to {total / 1e6:.0f} MB, over the {cap / 1e6:.0f} MB limit (--max-inflated-mb)"
    return None


def read_limited(path: str, options: ReadOptions, max_inflated_bytes: float | None
                 ) -> tuple[list[Extracted] | None, str, str]:
    """:func:`read_file`, after refusing a zip-based file that would inflate past ``max_inflated_bytes``."""
    if max_inflated_bytes is not None and READERS.for_path(Path(path)) is not None:
        too_large = inflated_too_large(Path(path), max_inflated_bytes)
        if too_large:
            return None, "too-large", too_large
    return read_file(path, options)


def read_file(path: str, options: ReadOptions) -> tuple[list[Extracted] | None, str, str]:
    """(documents, format, "") or (None, kind, reason): what a worker process sends back for one file."""
    reader = READERS.for_path(Path(path))
    if reader is None:
        return None, "unsupported", "no reader"
    try:
        return reader.read(Path(path), options), reader.format, ""
    except ExtractionError as err:
        return None, err.kind, err.reason
    except OSError as err:  # not the file's content: the file system (permissions, a file removed meanwhile)
        return None, "unreadable", err.strerror or str(err)
    except Exception as err:  # noqa: BLE001 - a library's failure on one bad file must not stop the walk
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return None, "corrupt", f"{type(err).__name__}: {message}"[:300]


def _label(source: Path) -> str:
    return source.resolve().name or "root"


def _documents(key: str, extracted: list[Extracted], fmt: str, stat: os.stat_result, digest: str,
               path: Path) -> list[Document]:
    docs = []
    seen: Counter[str] = Counter()
    modified = datetime.fromtimestamp(stat.st_mtime, timezone.utc).isoformat(timespec="seconds")
    for item in extracted:
        if not item.text.strip():
            continue
        doc_id = f"{key}#{item.key}" if item.key else key
        seen[doc_id] += 1
        if seen[doc_id] > 1:
            doc_id = f"{doc_id}~{seen[doc_id]}"
        metadata = {**item.metadata, "source": key, "path": display(str(path)), "format": fmt, "modified": modified,
                    "sha256": digest}
        # a title from a file name that is not UTF-8 (the stem) must not make the corpus unwritable
        docs.append(Document(doc_id, display(item.title), display(item.text), metadata))
    return docs


def _refuse_foreign(folder: CorpusFolder) -> None:
    """A --corpus that exists and is not an ingest corpus (a hand-written evaluation set, any other folder) is
    refused: ingest would replace what is there. A new or empty folder is fine."""
    root = folder.root
    if root.exists() and not root.is_dir():
        raise EvalSetError("--corpus is a file, not a folder", root)
    if root.is_dir() and not folder.manifest_file.is_file() and any(
            not entry.name.startswith(".") for entry in root.iterdir()):
        raise EvalSetError("not an ingest corpus (no manifest.json) and not empty: ingest would replace what is "
                           "in it; give a new or empty folder", root)


def ingest(sources: Iterable[Path | str], corpus: Path | str, *, options: ReadOptions = ReadOptions(),
           workers: int | None = None, rehash: bool = False, max_file_mb: float = DEFAULT_MAX_MB,
           progress: Progress | None = None, allow_removals: bool = False,
           max_removal_share: float = DEFAULT_MAX_REMOVAL_SHARE, follow_links: bool = False,
           file_timeout: float | None = None, max_inflated_mb: float | None = None) -> IngestReport:
    """Bring ``corpus`` up to date with ``sources`` and write its next version (the same version when nothing
    changed). Raises EvalSetError for a source that does not exist, two sources with one name, a ``corpus`` that
    is not an ingest corpus, an empty source folder (an unmounted share) or a run that would remove more than
    ``max_removal_share`` of the corpus's documents (the last two unless ``allow_removals``).

    ``file_timeout`` (seconds) reads every file in a worker process that is stopped past it; without it, a run of
    few files is read in this process. One ingest at a time writes a corpus: a second waits for the first."""
    folder = CorpusFolder(Path(corpus))
    _refuse_foreign(folder)
    folder.root.mkdir(parents=True, exist_ok=True)
    with folder.run_lock():
        return _ingest(sources, folder, options=options, workers=workers, rehash=rehash, max_file_mb=max_file_mb,
                       progress=progress, allow_removals=allow_removals, max_removal_share=max_removal_share,
                       follow_links=follow_links, file_timeout=file_timeout, max_inflated_mb=max_inflated_mb)


def _ingest(sources: Iterable[Path | str], folder: CorpusFolder, *, options: ReadOptions, workers: int | None,
            rehash: bool, max_file_mb: float, progress: Progress | None, allow_removals: bool,
            max_removal_share: float, follow_links: bool, file_timeout: float | None,
            max_inflated_mb: float | None) -> IngestReport:
    started = time.perf_counter()
    load_plugins()
    _refuse_foreign(folder)
    sources = [Path(s) for s in sources]
    labels: dict[str, Path] = {}
    for source in sources:
        if not source.exists():
            raise EvalSetError("source not found", source)
        label = _label(source)
        if label in labels and labels[label].resolve() != source.resolve():
            raise EvalSetError(f"two sources are named {label!r} ({labels[label]} and {source}); document ids start "
                               "with the source's name, so rename or link one", source)
        labels[label] = source
    if folder.root.resolve() in {s.resolve() for s in sources}:
        raise EvalSetError("the corpus folder cannot be one of its own sources", folder.root)
    manifest = folder.manifest()
    old_files: dict[str, dict[str, Any]] = manifest.get("files", {})
    readers: dict[str, str] = {}  # each file's reader as format@version, found once while walking
    old_docs = {doc.doc_id: doc for doc in folder.documents()} if old_files and folder.consistent() else {}
    report = IngestReport(corpus=str(folder.root), previous_version=manifest.get("version"))
    files: dict[str, dict[str, Any]] = {}
    kept: list[Document] = []
    to_read: list[tuple[str, Path, os.stat_result, str]] = []
    corpus_root = folder.root.resolve()
    inflated_cap = (max_inflated_mb if max_inflated_mb is not None else INFLATION * max_file_mb) * 1e6
    for label, source in labels.items():
        walked = 0
        for path, ignored, refusal in walk(source, follow_links):
            if ignored or corpus_root in path.resolve().parents:
                report.ignored += ignored
                continue
            walked += 1
            key = display(label if source.is_file() else f"{label}/{path.relative_to(source).as_posix()}")
            if refusal is not None:
                report.skipped.append(Skipped(key, refusal.kind, refusal.reason))
                continue
            report.files += 1
            try:
                stat = path.stat()
            except OSError as err:  # a broken link, a file removed while walking
                report.skipped.append(Skipped(key, "unreadable", err.strerror or type(err).__name__))
                continue
            if path.suffix.lower() in LEGACY:
                report.skipped.append(Skipped(key, "unsupported", f"{LEGACY[path.suffix.lower()]} binary format: "
                                              f"save it as {path.suffix.lower()}x (or PDF) to ingest it"))
                continue
            reader = READERS.for_path(path)  # by suffix, then first bytes within the HWP family: once a file
            if reader is None:
                report.skipped.append(Skipped(key, "unsupported", f"no reader for '{display(path.suffix or path.name)}'"
                                              f" (reads {', '.join(READERS.suffixes)})"))
                continue
            if stat.st_size > max_file_mb * 1e6:
                report.skipped.append(Skipped(key, "too-large", f"{stat.st_size / 1e6:.0f} MB is over "
                                              f"--max-file-mb {max_file_mb:g}"))
                continue
            before = old_files.get(key)
            readers[key] = reader.identity
            if before is not None and before.get("reader") != reader.identity:
                before = None  # read by another version of its reader (or before versions were kept): read again
            same_stat = before is not None and before["size"] == stat.st_size and before["mtime_ns"] == stat.st_mtime_ns
            try:
                digest = before["sha256"] if same_stat and not rehash else sha256_file(path)
            except OSError as err:  # no permission to read it
                report.skipped.append(Skipped(key, "unreadable", err.strerror or type(err).__name__))
                continue
            if before is not None and before["sha256"] == digest and before.get("skipped"):
                # read before and found unreadable (corrupt, encrypted, ...): the same bytes give the same answer
                report.skipped.append(Skipped(key, before["skipped"]["kind"], before["skipped"]["reason"]))
                files[key] = {**before, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
                continue
            if before is not None and before["sha256"] == digest and all(d in old_docs for d in before["doc_ids"]):
                report.unchanged += 1
                if before.get("partial"):  # kept in part before: still only that part
                    report.partial.append(Skipped(key, before["partial"]["kind"], before["partial"]["reason"]))
                kept.extend(old_docs[d] for d in before["doc_ids"])
                files[key] = {**before, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
                report.formats[before["format"]] = report.formats.get(before["format"], 0) + 1
                continue
            to_read.append((key, path, stat, digest))
        if source.is_dir() and not walked and not allow_removals:
            raise EvalSetError("the source folder is empty (an unmounted share?): nothing to ingest, and its "
                               "documents would be removed; give --allow-removals if that is meant", source)
    new_docs: list[Document] = []
    for key, path, stat, digest, result in _read_all(to_read, options, workers, progress, file_timeout,
                                                      inflated_cap):
        extracted, kind, reason = result
        docs = _documents(key, extracted, kind, stat, digest, path) if extracted is not None else []
        if not docs:
            if extracted is not None:
                kind, reason = "empty", "no text in it"
            report.skipped.append(Skipped(key, kind, reason))
            if kind in {"crashed", "timeout"}:
                continue  # not the file's answer for good: a rerun (a bigger machine, a longer limit) tries again
            files[key] = {"path": display(str(path.resolve())), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                          "sha256": digest, "format": None, "doc_ids": [], "skipped": {"kind": kind, "reason": reason},
                          "reader": readers[key]}
            continue
        report.read += 1
        report.formats[kind] = report.formats.get(kind, 0) + 1
        if key in old_files:
            report.changed_files += 1
        else:
            report.added_files += 1
        new_docs.extend(docs)
        files[key] = {"path": display(str(path.resolve())), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                      "sha256": digest, "format": kind, "doc_ids": [d.doc_id for d in docs],
                      "reader": readers[key]}
        partial = next((item.partial for item in extracted if item.partial), None)
        if partial:
            report.partial.append(Skipped(key, *partial))
            files[key]["partial"] = {"kind": partial[0], "reason": partial[1]}
    report.removed_files = sum(bool(old_files[k]["doc_ids"]) for k in set(old_files) - set(files))
    documents = kept + new_docs
    now_ids = {d.doc_id for d in documents}
    report.documents = len(documents)
    report.removed_documents = len(set(old_docs) - now_ids)
    report.added_documents = sum(d.doc_id not in old_docs for d in new_docs)
    report.changed_documents = sum(d.doc_id in old_docs and (d.title, d.text) != (old_docs[d.doc_id].title,
                                                                                    old_docs[d.doc_id].text)
                                   for d in new_docs)
    if old_docs and not allow_removals and report.removed_documents > max_removal_share * len(old_docs):
        given = {str(s.resolve()) for s in sources}
        missing = [s for s in manifest.get("sources", []) if s not in given]
        raise EvalSetError(f"this run would remove {report.removed_documents} of the corpus's {len(old_docs)} "
                           f"documents (over --max-removal-share {max_removal_share:g})"
                           + (f"; sources of the corpus not given: {', '.join(map(display, missing))}"
                              if missing else "") + "; nothing written: give --allow-removals if that is meant",
                           folder.root)
    if not documents:
        shown = "; ".join(f"{s.path}: {s.kind}: {s.reason}" for s in report.skipped[:3])
        raise EvalSetError(f"no documents in {report.files} files (skipped: {report.skipped_by_kind() or 'none'})"
                           + (f": {shown}" if shown else ""), folder.root)
    counts = {k: getattr(report, k) for k in ("documents", "added_documents", "changed_documents",
                                              "removed_documents")}
    report.version = folder.write(documents, files, [display(str(s.resolve())) for s in sources], counts)
    report.seconds = time.perf_counter() - started
    write_atomically(folder.root / "ingest-report.json", json.dumps(asdict(report), ensure_ascii=False, indent=1))
    return report


def _failed(kind: str, reason: str) -> tuple[None, str, str]:
    return None, kind, reason


def _read_all(to_read: list[tuple[str, Path, os.stat_result, str]], options: ReadOptions, workers: int | None,
              progress: Progress | None, file_timeout: float | None, inflated_cap: float | None
              ) -> Iterator[tuple[str, Path, os.stat_result, str, tuple]]:
    """Each file's result in input order; in worker processes that can be stopped when there is a time limit or
    enough files to pay for starting them (about a second each)."""
    total = len(to_read)
    workers = workers or os.cpu_count() or 1
    if file_timeout is None and (workers <= 1 or total < POOL_MIN_FILES):
        for done, (key, path, stat, digest) in enumerate(to_read, start=1):
            result = read_limited(str(path), options, inflated_cap)
            if progress:
                progress("reading files", done, total)
            yield key, path, stat, digest, result
        return
    results: dict[int, tuple] = {}
    paths = [str(path) for _, path, _, _ in to_read]
    for done, (index, result) in enumerate(read_isolated(paths, read_limited, (options, inflated_cap), workers,
                                                         file_timeout, _failed), start=1):
        results[index] = result
        if progress:
            progress("reading files", done, total)
    for index, (key, path, stat, digest) in enumerate(to_read):
        yield key, path, stat, digest, results[index]
