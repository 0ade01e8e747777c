"""Live updates of consultations: sent after commit to the two hospitals' groups (ids and states only)."""

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from hospitals.events import Sends, hospital_group, publish, user_group

if TYPE_CHECKING:
    from hospitals.models import User


def consultation_changed(consultation_id: int) -> None:
    from consultations.models import Consultation

    consultation = (
        Consultation.objects.filter(pk=consultation_id)
        .values("pk", "state", "requesting_hospital_id", "consulted_hospital_id")
        .first()
    )
    if consultation is not None:
        publish(_consultation_sends(**consultation))


def _consultation_sends(*, pk: int, state: str, requesting_hospital_id: int, consulted_hospital_id: int) -> Sends:
    """The consultation's state, for the pages of its two hospitals."""
    message = {"type": "notify", "payload": {"kind": "consultation", "id": pk, "state": state}}
    return [(hospital_group(hospital_id), message) for hospital_id in {requesting_hospital_id, consulted_hospital_id}]


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
    publish((hospital_group(hospital_id), {"type": "notify", "payload": payload}) for hospital_id in consulted)


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

    async def send_all() -> None:  # in order: a hospital's group may get several
        for patient_id, hospital_id in sorted(consulted):
            await layer.group_send(hospital_group(hospital_id), {"type": "notify", "payload": payloads[patient_id]})

    async_to_sync(send_all)()


def _call_payloads(call_id: int) -> tuple[Any, dict[str, Any], list[int]] | None:
    from consultations import calls
    from consultations.models import Call

    call = (
        Call.objects.select_related("consultation__requested_by", "consultation__assigned_to", "started_by")
        .filter(pk=call_id)
        .first()
    )
    if call is None:
        return None
    ring = {
        "kind": "call",
        "state": call.state,
        "call": call.pk,
        "consultation": call.consultation_id,
        "caller": call.started_by.get_full_name() or call.started_by.username,
        "url": reverse("consultation_call", args=[call.consultation_id]),
        "until": call.ring_until.isoformat(),
    }
    return call, ring, [user.pk for user in calls.callees(call)]


def call_rung(call_id: int, *, origin: str = "", only: list[int] | None = None) -> None:
    """A call rings: the room hears the invite, the caller's socket that it rings (and whom), and the people it
    rings see it on whatever page they have open."""
    from consultations import calls

    found = _call_payloads(call_id)
    if found is None:
        return
    call, ring, callees = found
    view = calls.call_view(call) or {}
    # To the people it rings, a call rings, even a guest's call that is under way: for a while, until joined.
    until = max(call.ring_until, timezone.now() + timedelta(seconds=settings.CALL_RING_SECONDS))
    rung = {**ring, "state": "ringing", "until": until.isoformat()}
    lifetime = max(0, round((call.ring_until - call.started_at).total_seconds()))
    groups: list[tuple[str, dict[str, Any]]] = []
    replies = []
    if only is None:
        invite = {"v": 1, "type": "invite", "from": view["started_by"], "call": view, "lifetime": lifetime}
        groups.append((calls.room_group(call.consultation_id), _room(invite, origin)))
        if origin:
            ringing = {"v": 1, "type": "ringing", "call": view, "ringing": len(callees)}
            replies.append((origin, {"type": "call.reply", "payload": ringing}))
    rung_people = callees if only is None else only
    groups += [(user_group(user_id), {"type": "notify", "payload": rung}) for user_id in rung_people]
    publish(groups, replies)


def call_changed(call_id: int, kind: str, *, by: "User | None" = None, origin: str = "") -> None:
    """A call was answered, declined, cancelled or ended: the room hears `kind` from `by` (the socket that did
    it gets the new state instead of its own message back), the rung people's pages stop ringing, and the
    consultation's pages refresh their call log."""
    from consultations import calls

    found = _call_payloads(call_id)
    if found is None:
        return
    call, ring, callees = found
    view = calls.call_view(call)
    message = {"v": 1, "type": kind, "from": calls.person(by) if by else None, "call": view}
    if call.end_reason:
        message["reason"] = call.end_reason
    consultation = call.consultation
    publish(
        [
            (calls.room_group(call.consultation_id), _room(message, origin)),
            *((user_group(user_id), {"type": "notify", "payload": ring}) for user_id in {*callees, call.started_by_id}),
            *_consultation_sends(
                pk=consultation.pk,
                state=consultation.state,
                requesting_hospital_id=consultation.requesting_hospital_id,
                consulted_hospital_id=consultation.consulted_hospital_id,
            ),
        ],
        [(origin, {"type": "call.reply", "payload": {"v": 1, "type": "call", "call": view}})] if origin else [],
    )


def _room(payload: dict[str, Any], origin: str) -> dict[str, Any]:
    return {"type": "call.event", "payload": payload, "origin": origin}
