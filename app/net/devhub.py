"""A local Orthanc hub: ``relay dev-hub`` and the test fixtures.

The hub is a real Orthanc with its DICOMweb plugin (Debian packages ``orthanc`` and
``orthanc-dicomweb``), started directly (not as the system service) from the config template in
``resources/orthanc/hub.json``, with its storage in a folder of the caller's choosing, on a port
of the caller's choosing. Orthanc 1.10 listens on every interface, so the config always keeps
``RemoteAccessAllowed`` false: only this machine is answered. The process is stopped by its PID.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import ToolMissingError, TransferError

log = logging.getLogger(__name__)

#: Where the config template lives in a checkout (and in the bundle, next to ``app``).
TEMPLATE = Path(__file__).resolve().parents[2] / "resources" / "orthanc" / "hub.json"
#: Where Debian puts the Orthanc binary and the DICOMweb plugin.
ORTHANC_BINARIES = ("/usr/sbin/Orthanc", "/usr/bin/Orthanc")
DICOMWEB_PLUGINS = (
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
    "/usr/lib/orthanc/plugins/libOrthancDicomWeb.so",
)
#: Where Debian puts the PostgreSQL index plugin (package ``orthanc-postgresql``).
POSTGRESQL_INDEX_PLUGINS = (
    "/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so",
    "/usr/lib/orthanc/plugins/libOrthancPostgreSQLIndex.so",
)
DEBIAN_PACKAGES = ("orthanc", "orthanc-dicomweb")


def find_orthanc() -> tuple[str, str]:
    """Return (Orthanc binary, DICOMweb plugin) or raise naming the Debian packages to install."""
    binary = next((p for p in ORTHANC_BINARIES if os.access(p, os.X_OK)), None)
    binary = binary or shutil.which("Orthanc")
    plugin = next((p for p in DICOMWEB_PLUGINS if os.path.isfile(p)), None)
    missing = [name for name, found in zip(DEBIAN_PACKAGES, (binary, plugin), strict=True)
               if not found]
    if missing:
        raise ToolMissingError(
            f"the local hub needs the Debian package(s) {', '.join(missing)}; install with: "
            f"sudo apt-get install {' '.join(missing)}"
        )
    assert binary is not None and plugin is not None
    return binary, plugin


def is_available() -> bool:
    """Are Orthanc and its DICOMweb plugin installed?"""
    try:
        find_orthanc()
    except ToolMissingError:
        return False
    return True


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_postgresql_index() -> str:
    """The PostgreSQL index plugin, or raise naming the Debian package to install."""
    plugin = next((p for p in POSTGRESQL_INDEX_PLUGINS if os.path.isfile(p)), None)
    if plugin is None:
        raise ToolMissingError("a hub with a PostgreSQL index needs the Debian package "
                                "orthanc-postgresql; install with: "
                                "sudo apt-get install orthanc-postgresql")
    return plugin


@dataclass(frozen=True)
class PostgresIndex:
    """A PostgreSQL database holding the hub's index (the files stay in the storage folder):
    what a hub moves to when one SQLite file is not enough."""

    host: str
    port: int
    database: str
    user: str
    password: str = ""


@dataclass
class HubConfig:
    """What to start: storage folder, port, users (empty: no authentication), TLS certificate."""

    storage: Path
    http_port: int = 8042
    #: user name -> password; basic authentication is on when not empty.
    users: dict[str, str] = field(default_factory=dict)
    #: Bearer tokens; when not empty every request needs ``Authorization: Bearer <one of them>``
    #: (checked by a Lua filter, Orthanc having no bearer tokens of its own; not with ``users``).
    tokens: tuple[str, ...] = ()
    #: PEM file holding the server certificate and its private key; HTTPS when given.
    tls_pem: Path | None = None
    #: Keep the index in PostgreSQL (plugin from ``orthanc-postgresql``) instead of SQLite.
    postgresql: PostgresIndex | None = None
    #: DICOM (DIMSE) port; 0 keeps Orthanc's DICOM server off.
    dicom_port: int = 0
    #: Orthanc's own AE title (checked: a wrong called AE title is rejected).
    dicom_aet: str = "RELAYHUB"
    #: Known DICOM nodes, Orthanc's ``DicomModalities`` (name -> {"AET", "Host", "Port", ...}).
    modalities: dict[str, dict[str, object]] = field(default_factory=dict)
    #: Further Orthanc options (e.g. ``DicomAlwaysAllowStore``).
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The DICOMweb base URL of this hub."""
        scheme = "https" if self.tls_pem else "http"
        return f"{scheme}://127.0.0.1:{self.http_port}/dicom-web"

    @property
    def rest_url(self) -> str:
        """Orthanc's own REST API (tests use it to check what the hub holds)."""
        return self.url.rsplit("/dicom-web", 1)[0]

    def render(self, plugin: str) -> dict[str, object]:
        """The Orthanc configuration (template with this hub's values)."""
        config: dict[str, object] = json.loads(TEMPLATE.read_text(encoding="utf-8"))
        db = self.storage / "db"
        config.update(
            StorageDirectory=str(db),
            IndexDirectory=str(db),
            HttpPort=self.http_port,
            RemoteAccessAllowed=False,
            AuthenticationEnabled=bool(self.users),
            RegisteredUsers=dict(self.users),
            Plugins=[plugin],
            SslEnabled=self.tls_pem is not None,
        )
        if self.tls_pem is not None:
            config["SslCertificate"] = str(self.tls_pem)
        if self.tokens:
            if self.users:
                raise ValueError("a local hub takes either users (basic) or tokens (bearer)")
            config["LuaScripts"] = [str(self.storage / BEARER_SCRIPT)]
        if self.postgresql is not None:
            pg = self.postgresql
            config["Plugins"] = [plugin, find_postgresql_index()]
            config["PostgreSQL"] = {
                "EnableIndex": True, "EnableStorage": False, "Host": pg.host, "Port": pg.port,
                "Database": pg.database, "Username": pg.user, "Password": pg.password,
                "Lock": False,  # several test hubs share one server (one database each)
            }
        if self.dicom_port:
            config.update(DicomServerEnabled=True, DicomPort=self.dicom_port,
                          DicomAet=self.dicom_aet, DicomCheckCalledAet=True,
                          DicomModalities=dict(self.modalities))
        config.update(self.extra)
        return config


class OrthancHub:
    """One Orthanc process; start with :meth:`start`, stop with :meth:`stop` (by PID)."""

    def __init__(self, config: HubConfig) -> None:
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = config.storage / "orthanc.log"

    @property
    def url(self) -> str:
        return self.config.url

    def start(self, timeout: float = 30.0) -> OrthancHub:
        """Start Orthanc and wait until it answers; raise :class:`TransferError` if it cannot."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        binary, plugin = find_orthanc()
        self.config.storage.mkdir(parents=True, exist_ok=True)
        config = self.config.render(plugin)
        # private from the first byte: they hold the hub's passwords and tokens
        if self.config.tokens:
            write_private(self.config.storage / BEARER_SCRIPT, bearer_filter(self.config.tokens))
        config_path = self.config.storage / "orthanc.json"
        write_private(config_path, json.dumps(config, indent=2))
        env = dict(os.environ, TCP_NODELAY="1")
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(
                [binary, str(config_path)], stdout=log_file, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env, start_new_session=True,
            )
        self._wait_ready(timeout)
        log.info("local hub started (pid %d) at %s", self.proc.pid, self.url)
        return self

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) the running Orthanc has used so far (Linux; the
        benches' CPU budgets)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TransferError(
                    f"Orthanc exited at start (code {self.proc.returncode}); see {self.log_path}"
                )
            if _port_open(self.config.http_port) and "Orthanc has started" in self._log_tail() \
                    and (not self.config.dicom_port or _port_open(self.config.dicom_port)):
                return
            time.sleep(0.05)
        self.stop()
        raise TransferError(f"Orthanc did not start within {timeout:.0f} s; see {self.log_path}")

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, "rb") as fp:
                fp.seek(max(0, self.log_path.stat().st_size - 65536))
                return fp.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        """Stop Orthanc (SIGTERM, then SIGKILL) and wait until the process has exited."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Kill Orthanc at once (a hub crash), and wait until the process has exited."""
        self._signal(signal.SIGKILL, 10.0)

    def _signal(self, sig: int, timeout: float) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> OrthancHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: The Lua script (in the hub's storage) that checks bearer tokens.
BEARER_SCRIPT = "bearer.lua"


def bearer_filter(tokens: tuple[str, ...]) -> str:
    """Orthanc Lua: answer only requests carrying one of ``tokens`` as a bearer token (others
    get 403). Each token is written as decimal byte escapes: no token can end the string."""
    def lua(text: str) -> str:
        return '"' + "".join(f"\\{b}" for b in text.encode()) + '"'

    accepted = ", ".join(f"[{lua('Bearer ' + t)}] = true" for t in tokens)
    return (f"local accepted = {{{accepted}}}\n"
            "function IncomingHttpRequestFilter(method, uri, ip, username, httpHeaders)\n"
            "  local given = httpHeaders['authorization']\n"
            "  return given ~= nil and accepted[given] == true\n"
            "end\n")


def write_private(path: Path, text: str) -> None:
    """Write ``path`` readable by its owner only from the start (0600; never through a link)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0),
                 0o600)
    os.fchmod(fd, 0o600)  # a file that was there before keeps its mode otherwise
    with os.fdopen(fd, "w", encoding="utf-8") as fp:
        fp.write(text)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
