"""Live updates of consultations: sent after commit to the two hospitals' groups (ids and states only)."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from hospitals.events import hospital_group


def consultation_changed(consultation_id: int) -> None:
    from consultations.models import Consultation

    consultation = (
        Consultation.objects.filter(pk=consultation_id)
        .values("pk", "state", "urgency", "requesting_hospital_id", "consulted_hospital_id")
        .first()
    )
    layer = get_channel_layer()
    if consultation is None or layer is None:
        return
    payload = {"kind": "consultation", "id": consultation["pk"], "state": consultation["state"]}
    groups = {
        hospital_group(consultation["requesting_hospital_id"]),
        hospital_group(consultation["consulted_hospital_id"]),
    }
    for group in groups:
        async_to_sync(layer.group_send)(group, {"type": "notify", "payload": payload})


def study_changed_forward(sender: object, *, patient_id: int, payload: dict[str, object], **kwargs: object) -> None:
    """A patient's imaging study, recording or lab results changed, or a critical result came in: tell the
    hospitals consulted about that patient, whose specialists see the patient's results through the
    consultation."""
    from consultations.models import Consultation

    consulted = set(
        Consultation.objects.filter(patient_id=patient_id)
        .exclude(state__in=[Consultation.State.DRAFT, Consultation.State.CANCELLED])
        .values_list("consulted_hospital_id", flat=True)
    )
    layer = get_channel_layer()
    if layer is None:
        return
    for hospital_id in consulted:
        async_to_sync(layer.group_send)(hospital_group(hospital_id), {"type": "notify", "payload": payload})


def lab_changed_many_forward(sender: object, *, payloads: dict[int, dict[str, object]], **kwargs: object) -> None:
    """`study_changed_forward` for many patients' lab results at once: one query, one trip to the layer."""
    from consultations.models import Consultation

    consulted = set(
        Consultation.objects.filter(patient_id__in=list(payloads))
        .exclude(state__in=[Consultation.State.DRAFT, Consultation.State.CANCELLED])
        .values_list("patient_id", "consulted_hospital_id")
    )
    layer = get_channel_layer()
    if layer is None or not consulted:
        return

    async def send_all() -> None:
        for patient_id, hospital_id in sorted(consulted):
            await layer.group_send(hospital_group(hospital_id), {"type": "notify", "payload": payloads[patient_id]})

    async_to_sync(send_all)()
