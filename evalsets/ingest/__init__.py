"""From company files to a living corpus: format readers, incremental ingest, corpus versions.

Public API::

    from evalsets.ingest import ingest, IngestReport, CorpusFolder, corpus_version, read_versioned, READERS, ReadOptions,
        TicketFields
"""

from evalsets.ingest.base import READERS, ExtractionError, Extracted, ReadOptions, Reader, TicketFields
from evalsets.ingest.corpus import CorpusFolder, corpus_version, document_hash, read_versioned
from evalsets.ingest.run import IngestReport, Skipped, ingest

__all__ = ["CorpusFolder", "ExtractionError", "Extracted", "IngestReport", "READERS", "ReadOptions", "Reader",
           "Skipped", "TicketFields", "corpus_version", "document_hash", "ingest",
           "read_versioned"]
