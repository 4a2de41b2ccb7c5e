"""Finding this project's running `evolve serve` without trusting a stale file, and talking to it."""

from __future__ import annotations

import hmac
import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Optional, TypedDict

from agent.app import err_console, fail
from agent.paths import ProjectPaths

if TYPE_CHECKING:
    import httpx


class ServerInfo(TypedDict):
    """What ``server.json`` says of a running `evolve serve` (written once it listens)."""

    url: str
    pid: int
    host: str
    nonce: str
    """Echoed on /health: proves the server at ``url`` is the one that wrote the file."""
    corpus: str
    config: str
    config_version: str | None


def server_file(project_dir: Path) -> Path:
    return ProjectPaths.of(project_dir).server_info


def feedback_db(project_dir: Path) -> Path:
    return ProjectPaths.of(project_dir).feedback_db


def corpus_file(path: Path) -> Path:
    return path / "corpus.jsonl" if path.is_dir() else path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_server(project_dir: Path) -> ServerInfo | None:
    """The server of this project: its server.json names a live process, and the server at its URL echoes
    the file's per-start nonce on /health (asked with no token: nothing secret is sent to a server before
    it has proved it is the one that wrote the file). Anything else is a stale file, said in one line."""
    import httpx

    path = server_file(project_dir)
    if not path.exists():
        return None

    def stale(why: str) -> None:
        err_console.print(f"ignoring stale {path}: {why}", highlight=False, soft_wrap=True)

    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        url, nonce, pid = str(info["url"]), str(info["nonce"]), int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return stale("unreadable, or written by an evolve without a server nonce")
    if info.get("host") == socket.gethostname() and not _pid_alive(pid):
        return stale(f"its server process {pid} is gone")
    try:
        with httpx.Client(trust_env=False, timeout=3) as client:
            health = client.get(url + "/health")
        health.raise_for_status()
        echoed = health.json().get("nonce")
    except (httpx.HTTPError, ValueError, AttributeError) as err:
        return stale(f"{url}/health does not answer as an evolve server ({type(err).__name__})")
    if not isinstance(echoed, str) or not hmac.compare_digest(echoed, nonce):
        return stale(f"the server at {url} is not the one that wrote it (its /health does not echo the nonce)")
    return info


def api_client(server: ServerInfo, token: Optional[str], timeout: float) -> httpx.Client:
    """An HTTP client for a server that running_server() has verified; the token goes only there."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server["url"], headers=headers, timeout=timeout, trust_env=False)


def call_server(server: ServerInfo, token: Optional[str], method: str, path: str, timeout: float,
                **request: object) -> httpx.Response:
    """One request to a server running_server() has verified. A server that does not answer, or answers 401
    (no token given, or not its token), is one line; other statuses are the caller's to read."""
    import httpx

    try:
        with api_client(server, token, timeout) as client:
            response = client.request(method, path, **request)
    except httpx.HTTPError as err:
        fail(f"the server at {server['url']} did not answer {method} {path} ({type(err).__name__}: {err})")
    if response.status_code == 401:
        fail(f"the server at {server['url']} answered 401: "
             + ("it has an API token: pass --token or set EVOLVE_API_TOKEN" if not token else
                "it does not take the token given (--token / EVOLVE_API_TOKEN)"))
    return response


def response_detail(response: httpx.Response) -> object:
    """The ``detail`` of a FastAPI error reply, else the start of its text."""
    if response.headers.get("content-type") == "application/json":
        try:
            return response.json().get("detail")
        except (ValueError, AttributeError):
            pass
    return response.text[:300]


def feedback_rows(project_dir: Path, server: ServerInfo | None, token: Optional[str], sql: str,
                  missing_ok: bool = False) -> list[dict[str, object]]:
    """Rows of the feedback store for ``sql``: from the running server's fresh snapshot (it holds the file), else
    from the file itself (none when it does not exist and ``missing_ok``). The snapshot is read where this project
    keeps it; the path in the server's reply is not used."""
    from evalsets import FeedbackStore, StoreLocked, read_snapshot, snapshot_folder

    if server:
        response = call_server(server, token, "POST", "/snapshot", timeout=60)
        if response.status_code != 200:
            fail(f"the server at {server['url']} could not export its feedback snapshot ({response.status_code}): "
                 f"{response_detail(response)}")
        return read_snapshot(snapshot_folder(feedback_db(project_dir)), sql)
    path = feedback_db(project_dir)
    if missing_ok and not path.exists():
        return []
    try:
        store = FeedbackStore(path)
    except StoreLocked as err:
        fail(str(err))
    try:
        return store.rows(sql)
    finally:
        store.close()


def write_server_file(path: Path, info: ServerInfo) -> None:
    """Readable by this user only (it carries the nonce), swapped in whole."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as out:
        json.dump(info, out)
    os.replace(tmp, path)


def remove_server_file(path: Path, nonce: str) -> None:
    """Remove server.json if it is still this server's (a newer server may have written its own)."""
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("nonce") == nonce:
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass
