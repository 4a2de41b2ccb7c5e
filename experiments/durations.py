"""Human durations ('90s', '30m', '2h', '1d', '1h30m') to seconds."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    compact = text.strip().lower().replace(" ", "")
    if compact.replace(".", "", 1).isdigit():
        return float(compact)
    parts = _PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 30m, 2h, 1d, 1h30m)")
    return sum(float(n) * _UNIT[u] for n, u in parts)
