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
