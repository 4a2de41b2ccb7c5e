"""What a model server said, made fit to print or store: secrets taken out, one line, trimmed.

A server's error body is the server's text, not evolve's: a proxy that echoes the request's headers puts the
bearer token into a 401, a misconfigured one its own keys into a 500. Everything evolve prints, logs or stores
(``evolve models --check``, a trial's ``fail_reason``) from such a body goes through :func:`redact` first.
"""

from __future__ import annotations

import re

REDACTED = "***"
"""What stands where a secret was (no brackets: the text may be printed as rich markup)."""
LIMIT = 300
"""Characters kept of a server's text (the cause of an error, not its whole page)."""

_PATTERNS = [
    # an authorization header's value, its scheme included: "Authorization: Bearer sk-..."
    (re.compile(r"(?i)\b((?:proxy-)?authorization)([\"']?\s*[:=]\s*[\"']?)(?:[A-Za-z]+[ \t]+)?[^\s\"',;}]+"),
     rf"\1\2{REDACTED}"),
    # a credential after its scheme elsewhere: "Bearer sk-...", "Basic dXNlcjpw...", "Token <16+ characters>"
    (re.compile(r"(?i)\b(bearer|basic)(\s+)(?!\*\*\*)[A-Za-z0-9._~+/=:-]{4,}"), rf"\1\2{REDACTED}"),
    (re.compile(r"(?i)\b(token|apikey)(\s+)[A-Za-z0-9._~+/=:-]{16,}"), rf"\1\2{REDACTED}"),
    # a named secret: "api_key": "...", x-api-key: ..., password=..., access_token=...
    (re.compile(r"(?i)\b((?:x-)?api[-_]?key|access[-_]?token|refresh[-_]?token|client[-_]?secret|secret|password|"
                r"passwd|token)([\"']?\s*[:=]\s*[\"']?)(?!\*\*\*)[^\s\"',;&}]{2,}"), rf"\1\2{REDACTED}"),
    # user:password@ in a URL
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), rf"\1{REDACTED}@"),
    # keys recognisable by their shape: OpenAI/Anthropic-style sk-..., Hugging Face, GitHub, Slack, AWS, JWTs
    (re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{6,}"), REDACTED),
    (re.compile(r"\bhf_[A-Za-z0-9]{16,}"), REDACTED),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{16,}"), REDACTED),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{8,}"), REDACTED),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"), REDACTED),
]


def redact(text: object, *secrets: str | None, limit: int = LIMIT) -> str:
    """``text`` (bytes are decoded) with every credential it holds replaced by ``***``: the ``secrets`` given (the
    key this process sent) and anything shaped like one; whitespace runs (newlines too) made one space; cut to
    ``limit`` characters (``…`` marks the cut), after redacting, so no part of a secret survives at the edge.
    Every client of a model server uses it (pipelines.remote, pipelines.llm)."""
    text = text.decode("utf-8", "replace") if isinstance(text, (bytes, bytearray)) else str(text)
    for secret in sorted({s.strip() for s in secrets if s and len(s.strip()) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:max(limit - 1, 0)] + "…"
