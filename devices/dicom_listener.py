"""The DICOM C-STORE listener: a Storage SCP (and Verification SCP) that modalities push their studies to.

pynetdicom runs each association in its own thread. The handlers here are thin: they take what the
protocol carries, open Django's database connection for the thread, call devices.services, and answer;
nothing a peer sends may take the listener down.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import translation
from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import Event, EventHandlerType
from pynetdicom.pdu_primitives import A_ASSOCIATE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from devices import services

log = logging.getLogger(__name__)

# What clinics' modalities send: uncompressed, and the compressed syntaxes the imaging pipeline decodes.
TRANSFER_SYNTAXES = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLossless,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
]


def listener_ae(*, ae_title: str) -> AE:
    """The application entity, configured from settings: storage of every image kind, and C-ECHO."""
    ae = AE(ae_title=ae_title)
    ae.maximum_associations = settings.DICOM_LISTENER_MAX_ASSOCIATIONS
    ae.acse_timeout = settings.DICOM_LISTENER_ACSE_TIMEOUT
    ae.dimse_timeout = settings.DICOM_LISTENER_DIMSE_TIMEOUT
    ae.network_timeout = settings.DICOM_LISTENER_NETWORK_TIMEOUT
    ae.require_called_aet = True
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(str(context.abstract_syntax), TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    return ae


def listener_start(*, host: str, port: int, ae_title: str | None = None) -> ThreadedAssociationServer:
    """Listen in background threads; port 0 picks a free one (`server.server_address`)."""
    title = ae_title or settings.DICOM_LISTENER_AE_TITLE
    ae = listener_ae(ae_title=title)
    handlers: list[EventHandlerType] = [(evt.EVT_REQUESTED, _on_requested), (evt.EVT_C_STORE, _on_c_store)]
    server = ae.start_server((host, port), block=False, evt_handlers=handlers)
    assert server is not None  # block=False always returns the server
    return server


def listener_stop(server: ThreadedAssociationServer, *, grace: float = 30.0) -> None:
    """Stop taking associations, let open ones finish for up to `grace` seconds, then abort the rest."""
    ae = server.ae
    server.shutdown()
    deadline = time.monotonic() + grace
    while ae.active_associations and time.monotonic() < deadline:
        time.sleep(0.1)
    ae.shutdown()


@contextmanager
def _django() -> Iterator[None]:
    """Database work in a pynetdicom thread: a usable connection, closed after (the thread will not be
    reused by Django's request cycle, which otherwise does this), and English for logs and the audit."""
    close_old_connections()
    try:
        with translation.override("en"):
            yield
    finally:
        connections.close_all()  # this thread's connections only


def _peer(event: Event) -> str:
    requestor = event.assoc.requestor
    return f"{requestor.address}:{requestor.port}"


def _on_requested(event: Event) -> None:
    """EVT_REQUESTED: reject an association from an AE title that is not an active device's, before any
    negotiation. pynetdicom swallows a handler's exceptions, so a failed check rejects too (fail closed)."""
    assoc = event.assoc
    request = cast(A_ASSOCIATE, assoc.requestor.primitive)
    calling, called = str(request.calling_ae_title or ""), str(request.called_ae_title or "")
    try:
        with _django():
            decision = services.dicom_association_decide(
                calling_ae_title=calling,
                called_ae_title=called,
                listener_ae_title=assoc.ae.ae_title,
                peer=_peer(event),
            )
    except Exception:
        log.exception(
            "DICOM association from %s (AE %r) refused: the allow-list could not be read", _peer(event), calling
        )
        _reject(event, result=0x02, diagnostic=0x01)  # transient, no reason given: the modality may retry
        return
    if decision.device is None:
        _reject(event, result=0x01, diagnostic=decision.diagnostic)
        return
    log.info("DICOM association from %s accepted: AE %r, device %s", _peer(event), calling, decision.device.pk)


def _reject(event: Event, *, result: int, diagnostic: int) -> None:
    """Send A-ASSOCIATE-RJ from the service user, then end the association as pynetdicom's own ACSE does
    when it rejects (the reactor then skips negotiation and closes the socket)."""
    assoc = event.assoc
    assoc.acse.send_reject(result, 0x01, diagnostic)
    assoc.kill()


def _on_c_store(event: Event) -> Dataset:
    """EVT_C_STORE: the Part 10 file as sent (preamble, file meta, the data set's bytes untouched), stored."""
    calling = event.assoc.requestor.ae_title
    request = cast(C_STORE, event.request)
    sop_instance_uid = str(request.AffectedSOPInstanceUID or "")
    try:
        data = event.encoded_dataset(include_meta=True)
        with _django():
            receipt = services.dicom_instance_receive(
                calling_ae_title=calling,
                data=data,
                sop_class_uid=str(request.AffectedSOPClassUID or ""),
                sop_instance_uid=sop_instance_uid,
                peer=_peer(event),
            )
    except Exception:
        log.exception("C-STORE from AE %r: %s failed", calling, sop_instance_uid)
        receipt = services.Receipt(services.INTERNAL_ERROR, "Internal error: see the listener's log")
    status = Dataset()
    status.Status = receipt.status
    if receipt.comment:
        status.ErrorComment = receipt.comment
    return status
