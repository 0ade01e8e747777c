"""Live updates of imaging results and recordings: ids and states only, sent after commit.

`diagnostics` does not know who else may look at a patient's results: it tells the patient's home
hospital, and sends `study_changed_signal` or `recording_changed_signal` so other apps (consultations) can
tell theirs.
"""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db.models import Count
from django.dispatch import Signal

from hospitals.events import hospital_group, publish

# Sent with study_id, patient_id and payload; receivers push the payload to the groups they know of.
study_changed_signal = Signal()


def study_changed(study_id: int) -> None:
    from diagnostics.models import Instance, Study

    study = Study.objects.filter(pk=study_id).values("pk", "patient_id", "hospital_id").first()
    if study is None:
        return
    grouped = dict(
        Instance.objects.filter(series__study_id=study_id)
        .order_by()
        .values("status")
        .annotate(images=Count("pk"))
        .values_list("status", "images")
    )
    counts = {status: grouped.get(status, 0) for status in Instance.Status.values}
    payload = {"kind": "study", "id": study["pk"], "patient": study["patient_id"], "instances": counts}
    _hospital_send(study["hospital_id"], payload)
    study_changed_signal.send(sender=Study, study_id=study_id, patient_id=study["patient_id"], payload=payload)


# Sent with recording_id, patient_id and payload, like study_changed_signal.
recording_changed_signal = Signal()


def recording_changed(recording_id: int) -> None:
    """A recording became ready or failed: tell its hospital, and whoever listens for its patient."""
    from diagnostics.models import Recording

    recording = (
        Recording.objects.filter(pk=recording_id).values("pk", "patient_id", "hospital_id", "kind", "status").first()
    )
    if recording is None:
        return
    payload = {
        "kind": "recording",
        "id": recording["pk"],
        "patient": recording["patient_id"],
        "recording_kind": recording["kind"],
        "status": recording["status"],
    }
    _hospital_send(recording["hospital_id"], payload)
    recording_changed_signal.send(
        sender=Recording, recording_id=recording_id, patient_id=recording["patient_id"], payload=payload
    )


# Lab results. Sent with hospital_id, patient_id and payload, like study_changed_signal.
lab_changed_signal = Signal()
# The same for many patients at once (a worker's batch): sent with payloads, {patient_id: payload}.
lab_changed_many_signal = Signal()


def _hospital_send(hospital_id: int, payload: dict[str, object]) -> None:
    publish([(hospital_group(hospital_id), {"type": "notify", "payload": payload})])


def lab_results_changed_many(*, hospital_id: int, patient_ids: list[int]) -> None:
    """Patients have new or changed lab results: their pages reload the results table. One trip to the
    channel layer for the hospital's group however many patients (a worker's batch)."""
    from diagnostics.models import Observation

    payloads = [{"kind": "lab", "patient": patient_id} for patient_id in patient_ids]
    layer = get_channel_layer()
    if layer is not None and payloads:
        group = hospital_group(hospital_id)

        async def send_all() -> None:
            for payload in payloads:
                await layer.group_send(group, {"type": "notify", "payload": payload})

        async_to_sync(send_all)()
    lab_changed_many_signal.send(sender=Observation, payloads=dict(zip(patient_ids, payloads, strict=True)))


def lab_review_changed(*, hospital_id: int) -> None:
    """The hospital's review queue of lab results changed (only the hospital's own staff work it)."""
    from diagnostics.models import Observation

    waiting = Observation.objects.filter(hospital_id=hospital_id).exclude(review="").count()
    _hospital_send(hospital_id, {"kind": "lab_review", "waiting": waiting})


def lab_alert_raised(alert_id: int) -> None:
    """A critical result: the patient's hospital and the hospitals consulted about the patient are told at
    once (ids and the flag only; a page fetches the rest, and that read is audited)."""
    from diagnostics.models import LabAlert

    alert = LabAlert.objects.filter(pk=alert_id).values("pk", "hospital_id", "patient_id", "observation__flag").first()
    if alert is None:
        return
    payload = {
        "kind": "lab_alert",
        "id": alert["pk"],
        "patient": alert["patient_id"],
        "flag": alert["observation__flag"],
    }
    _hospital_send(alert["hospital_id"], payload)
    lab_changed_signal.send(sender=LabAlert, patient_id=alert["patient_id"], payload=payload)


def lab_alert_acknowledged(*, alert_id: int, hospital_id: int) -> None:
    """Someone at the hospital acknowledged a critical result: the hospital's other open pages drop it from
    their banner. The other side's pages keep it until someone there acknowledges it too."""
    _hospital_send(hospital_id, {"kind": "lab_alert_ack", "id": alert_id})
