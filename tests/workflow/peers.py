"""Real DICOM peers for the reconciliation tests, started on free loopback ports, stopped by PID:
dcmtk's ``wlmscpfs`` and Orthanc with its ModalityWorklists plugin (also a PACS for
patient-level C-FIND)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from app.net.devhub import HubConfig, OrthancHub, free_port

WORKLIST_PLUGINS = ("/usr/share/orthanc/plugins/libModalityWorklists.so",
                    "/usr/lib/orthanc/plugins/libModalityWorklists.so")


@dataclass(frozen=True)
class Order:
    name: str
    patient_id: str
    issuer: str
    birth_date: str
    sex: str
    accession: str
    modality: str = "CT"
    date: str = "20261203"


def write_worklist(folder: Path, orders: list[Order]) -> None:
    """One ``.wl`` file per order, as a RIS would leave them for a worklist SCP."""
    folder.mkdir(parents=True, exist_ok=True)
    for n, o in enumerate(orders):
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.PatientName = o.name
        ds.PatientID = o.patient_id
        ds.IssuerOfPatientID = o.issuer
        ds.PatientBirthDate = o.birth_date
        ds.PatientSex = o.sex
        ds.AccessionNumber = o.accession
        ds.StudyInstanceUID = pydicom.uid.generate_uid()
        ds.RequestedProcedureID = f"RP{n:04d}"
        ds.RequestedProcedureDescription = "CT HEAD STROKE"
        step = Dataset()
        step.Modality = o.modality
        step.ScheduledStationAETitle = "CT1"
        step.ScheduledProcedureStepStartDate = o.date
        step.ScheduledProcedureStepStartTime = "080000"
        step.ScheduledProcedureStepDescription = "CT HEAD"
        step.ScheduledProcedureStepID = f"SPS{n:04d}"
        ds.ScheduledProcedureStepSequence = Sequence([step])
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = "1.2.276.0.7230010.3.1.0.1"
        ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(folder / f"order{n:03d}.wl", enforce_file_format=True)


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the peer exited at start (code {proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


@contextmanager
def wlmscpfs(tmp: Path, orders: list[Order], ae: str = "WLMSCP") -> Iterator[tuple[int, str]]:
    """dcmtk's worklist SCP serving ``orders``; yields (port, AE title)."""
    root = tmp / "wlmdb"
    write_worklist(root / ae, orders)
    (root / ae / "lockfile").touch()
    port = free_port()
    with open(tmp / "wlmscpfs.log", "wb") as log:
        proc = subprocess.Popen([shutil.which("wlmscpfs") or "wlmscpfs", "-dfp", str(root),
                                 str(port)], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        yield port, ae
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class _DicomConfig(HubConfig):
    """The hub's configuration plus a DICOM port, the worklist plugin and open C-FIND."""

    dicom_port: int = 0
    worklists: Path | None = None

    def render(self, plugin: str) -> dict[str, object]:
        config = super().render(plugin)
        wl_plugin = next(p for p in WORKLIST_PLUGINS if os.path.isfile(p))
        config.update(DicomServerEnabled=True, DicomPort=self.dicom_port, DicomAet="ORTHANC",
                      DicomAlwaysAllowFind=True, DicomAlwaysAllowFindWorklist=True,
                      DicomAlwaysAllowStore=True, Plugins=[plugin, wl_plugin],
                      Worklists={"Enable": True, "Database": str(self.worklists)})
        return config


def worklist_plugin_available() -> bool:
    return any(os.path.isfile(p) for p in WORKLIST_PLUGINS)


@contextmanager
def orthanc_worklist(tmp: Path, orders: list[Order]) -> Iterator[tuple[OrthancHub, int]]:
    """Orthanc answering MWL C-FIND from ``orders`` and patient C-FIND from what it stores;
    yields (hub, DICOM port)."""
    write_worklist(tmp / "orthanc-wl", orders)
    config = _DicomConfig(storage=tmp / "orthanc", http_port=free_port())
    config.dicom_port = free_port()
    config.worklists = tmp / "orthanc-wl"
    hub = OrthancHub(config).start()
    try:
        yield hub, config.dicom_port
    finally:
        hub.stop()


def orthanc_upload(hub: OrthancHub, files: list[Path]) -> None:
    import urllib.request

    for f in files:
        req = urllib.request.Request(hub.config.rest_url + "/instances", data=f.read_bytes(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            json.loads(resp.read())
