"""Video calls on a consultation: who may be in the room, and the call's life (invite, accept, decline, cancel,
hang up, missed, lost). Writes own their transaction; the room hears of each change after the commit.

Media flows peer to peer; this module only decides and records. The signalling consumer (consumers.py) calls
these services for every message that changes a call, and relays the rest (SDP, candidates) itself.
"""

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from consultations import events
from consultations.models import Call, CallGuest, CallPresence, Consultation
from consultations.selectors import consultations_visible
from consultations.services import CONSULTANT, REQUESTER, ConsultationRefused, side_of
from hospitals.audit import audit_record
from hospitals.models import AuditEntry, Staff, User
from hospitals.scoping import CLINICAL_ROLES, Scope, hospitals_visible, scope_for
from hospitals.services import notify

Action, Outcome = AuditEntry.Action, AuditEntry.Outcome
# A call needs a specialist who took the request: before that there is no one to ring; after, it is closed.
CALLABLE_STATES = (Consultation.State.ACCEPTED, Consultation.State.INFO_REQUESTED)


class CallRefused(ConsultationRefused):
    code = "call_refused"


@dataclass(frozen=True)
class Room:
    """A user's place in a consultation's call room: as one of its two sides, or as an invited guest."""

    consultation: Consultation
    side: str | None  # REQUESTER, CONSULTANT, or None for a guest

    @property
    def is_guest(self) -> bool:
        return self.side is None


def room_group(consultation_id: int) -> str:
    return f"call.room.{consultation_id}"


def call_live(consultation_id: int) -> Call | None:
    """The consultation's call that rings or runs now, if any."""
    return (
        Call.objects.select_related("started_by", "answered_by")
        .filter(consultation_id=consultation_id, state__in=[Call.State.RINGING, Call.State.ACTIVE])
        .first()
    )


def room_access(*, user: User, consultation_id: object) -> Room | None:
    """The user's place in the consultation's call room, or None: the same rules as the consultation's page
    for its two sides (on the consulting side, only the specialist who took the request), plus the guests
    invited into the call that rings or runs now. None answers every other case alike, existing or not."""
    scope = scope_for(user)
    if scope.user_id is None:
        return None
    # The consultation's own row: the room needs its ids and state, not the related rows the pages show.
    consultation = consultations_visible(scope).select_related(None).filter(pk=_int(consultation_id)).first()
    if consultation is not None:
        side = side_of(consultation, user)
        if side == REQUESTER and scope.role in CLINICAL_ROLES:
            return Room(consultation, REQUESTER)
        if side == CONSULTANT and consultation.assigned_to_id == user.pk:
            return Room(consultation, CONSULTANT)
    guest = (
        CallGuest.objects.select_related("call__consultation__patient")
        .filter(
            user=user,
            call__consultation_id=_int(consultation_id),
            call__state__in=[Call.State.RINGING, Call.State.ACTIVE],
        )
        .first()
    )
    if guest is not None and scope.role in CLINICAL_ROLES:
        return Room(guest.call.consultation, None)
    return None


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def callees(call: Call) -> list[User]:
    """Whom the call rings: the other side's person (the specialist who took it, or the clinician who asked),
    and the guests invited into it."""
    consultation = call.consultation
    # Only the call's two sides start one; on the consulting side, only the specialist who took the request.
    if call.started_by_id == consultation.assigned_to_id:
        other = [consultation.requested_by]
    else:
        other = [consultation.assigned_to] if consultation.assigned_to else []
    guests = [guest.user for guest in call.guests.select_related("user")]
    return [user for user in (*other, *guests) if user.pk != call.started_by_id and user.is_active]


def _audit(call: Call, by: User | None, action: str, detail: str, outcome: str = Outcome.SUCCESS) -> None:
    audit_record(
        request=None,
        action=action,
        outcome=outcome,
        obj=call,
        patient_id=call.consultation.patient_id,
        user=by,
        detail=detail,
    )


def _locked(call_id: int) -> Call:
    return Call.objects.select_for_update().select_related("consultation", "started_by").get(pk=call_id)


@transaction.atomic
def call_invite(*, room: Room, by: User, lifetime: int, origin: str = "") -> Call:
    """Ring the other side. If they are ringing this one already, the two calls are one: it is answered."""
    consultation = Consultation.objects.select_for_update().get(pk=room.consultation.pk)
    if room.is_guest:
        raise CallRefused(_("Guests join a call; only its two sides start one."))
    if consultation.state not in CALLABLE_STATES:
        raise CallRefused(_("A call is possible once a specialist has accepted the request and until it is concluded."))
    live = call_live(consultation.pk)
    if live is not None:
        if live.state == Call.State.RINGING and live.started_by_id != by.pk:
            return call_accept(call_id=live.pk, by=by, origin=origin)
        raise CallRefused(_("A call on this consultation is already under way."))
    lifetime = max(settings.CALL_RING_MIN_SECONDS, min(lifetime, settings.CALL_RING_MAX_SECONDS))
    try:
        with transaction.atomic():
            call = Call.objects.create(
                consultation=consultation, started_by=by, ring_until=timezone.now() + timedelta(seconds=lifetime)
            )
    except IntegrityError:  # the other side's invite won the race by a hair: answer it
        live = call_live(consultation.pk)
        if live is None or live.started_by_id == by.pk:
            raise CallRefused(_("A call on this consultation is already under way.")) from None
        return call_accept(call_id=live.pk, by=by, origin=origin)
    _audit(call, by, Action.CREATE, f"rang for {lifetime} s")
    transaction.on_commit(lambda: events.call_rung(call.pk, origin=origin), robust=True)
    return call


@transaction.atomic
def call_accept(*, call_id: int, by: User, origin: str = "") -> Call:
    call = _locked(call_id)
    if call.state != Call.State.RINGING:
        raise CallRefused(_("This call is no longer ringing (%(state)s).") % {"state": call.get_state_display()})
    if call.started_by_id == by.pk:
        raise CallRefused(_("The caller waits for the other side to answer."))
    call.state, call.answered_by, call.answered_at = Call.State.ACTIVE, by, timezone.now()
    call.save(update_fields=["state", "answered_by", "answered_at"])
    _audit(call, by, Action.UPDATE, "answered")
    transaction.on_commit(lambda: events.call_changed(call.pk, "accept", by=by, origin=origin), robust=True)
    return call


@transaction.atomic
def call_decline(*, call_id: int, by: User, origin: str = "") -> Call:
    call = _locked(call_id)
    if call.state != Call.State.RINGING or call.started_by_id == by.pk:
        raise CallRefused(_("Only a ringing call is declined, by the one it rings."))
    _end(call, by, Call.State.DECLINED, Call.EndReason.DECLINED)
    _tell(call, [call.started_by], gettext_noop("%(name)s declined your video call on consultation #%(id)s"), by)
    transaction.on_commit(lambda: events.call_changed(call.pk, "decline", by=by, origin=origin), robust=True)
    return call


@transaction.atomic
def call_hangup(*, call_id: int, by: User, reason: str = Call.EndReason.HANGUP, origin: str = "") -> Call:
    """End the call for everyone in it: a hang-up, or (ICE failure) a connection the browsers could not make.
    The caller hanging up while it still rings cancels it."""
    call = _locked(call_id)
    if call.state == Call.State.RINGING and call.started_by_id == by.pk:
        _end(call, by, Call.State.ENDED, Call.EndReason.CANCELLED)
        _tell(call, callees(call), gettext_noop("Missed video call from %(name)s on consultation #%(id)s"), by)
        kind = "cancel"
    elif call.state == Call.State.ACTIVE:
        failed = reason == Call.EndReason.ICE_FAILURE
        state = Call.State.FAILED if failed else Call.State.ENDED
        _end(call, by, state, Call.EndReason.ICE_FAILURE if failed else Call.EndReason.HANGUP)
        kind = "hangup"
    else:
        raise CallRefused(_("This call is not under way (%(state)s).") % {"state": call.get_state_display()})
    transaction.on_commit(lambda: events.call_changed(call.pk, kind, by=by, origin=origin), robust=True)
    return call


@transaction.atomic
def call_expire(*, call_id: int) -> bool:
    """A call that rang out unanswered is missed: the caller is told in the room, the callee by a notification."""
    call = _locked(call_id)
    if call.state != Call.State.RINGING or call.ring_until > timezone.now():
        return False
    _end(call, None, Call.State.MISSED, Call.EndReason.TIMEOUT)
    message = gettext_noop("Missed video call from %(name)s on consultation #%(id)s")
    _tell(call, callees(call), message, call.started_by)
    transaction.on_commit(lambda: events.call_changed(call.pk, "hangup"), robust=True)
    return True


@transaction.atomic
def call_lost(*, call_id: int) -> bool:
    """End a running call that has kept fewer than two people in its room past the rejoin grace period."""
    call = _locked(call_id)
    if call.state != Call.State.ACTIVE or _present(call).count() >= 2:
        return False
    grace = timezone.now() - timedelta(seconds=settings.CALL_REJOIN_GRACE_SECONDS)
    if CallPresence.objects.filter(consultation_id=call.consultation_id, left_at__gt=grace).exists():
        return False
    _end(call, None, Call.State.ENDED, Call.EndReason.CONNECTION_LOST)
    transaction.on_commit(lambda: events.call_changed(call.pk, "hangup"), robust=True)
    return True


def _present(call: Call) -> QuerySet[CallPresence]:
    return CallPresence.objects.filter(consultation_id=call.consultation_id, left_at__isnull=True)


def _end(call: Call, by: User | None, state: str, reason: str) -> None:
    call.state, call.end_reason, call.ended_by, call.ended_at = state, reason, by, timezone.now()
    call.save(update_fields=["state", "end_reason", "ended_by", "ended_at"])
    _audit(call, by, Action.UPDATE, f"{state}: {reason}")


def _tell(call: Call, users: list[User], message: str, by: User) -> None:
    if users:
        url = reverse("consultation_detail", args=[call.consultation_id])
        name = by.get_full_name() or by.username
        notify(users=users, message=message, params={"id": call.consultation_id, "name": name}, url=url)


def calls_sweep() -> int:
    """Periodic: settle the calls no open page is watching over (a caller who closed the tab while it rang,
    a call everyone left). Returns how many were settled."""
    settled = 0
    now = timezone.now()
    for call_id in Call.objects.filter(state=Call.State.RINGING, ring_until__lte=now).values_list("pk", flat=True):
        settled += call_expire(call_id=call_id)
    for call_id in Call.objects.filter(state=Call.State.ACTIVE).values_list("pk", flat=True):
        settled += call_lost(call_id=call_id)
    return settled


def consultation_calls_end(consultation_id: int) -> None:
    """The consultation closed (concluded, declined, cancelled): a call on it ends."""
    call = call_live(consultation_id)
    if call is not None:
        with transaction.atomic():
            call = _locked(call.pk)
            if call.is_live:
                _end(call, None, Call.State.ENDED, Call.EndReason.CONSULTATION_CLOSED)
                transaction.on_commit(lambda: events.call_changed(call.pk, "hangup"), robust=True)


@transaction.atomic
def call_guest_invite(*, call_id: int, by: User, user: User) -> CallGuest:
    """The specialist brings another clinician into the call (a colleague, a trainer from a partner hospital)."""
    call = _locked(call_id)
    if not call.is_live:
        raise CallRefused(_("Guests are invited into a call that rings or runs."))
    if call.consultation.assigned_to_id != by.pk:
        raise CallRefused(_("Only the specialist who took the request invites guests into its call."))
    if not Staff.objects.filter(user=user, role__in=CLINICAL_ROLES, deactivated_at__isnull=True).exists():
        raise CallRefused(_("Only active clinicians and specialists can be invited."))
    if user.pk in (call.consultation.assigned_to_id, call.consultation.requested_by_id):
        raise CallRefused(_("%(name)s is in this consultation already.") % {"name": user.get_full_name()})
    guest, created = CallGuest.objects.get_or_create(call=call, user=user, defaults={"invited_by": by})
    if created:
        _audit(call, by, Action.UPDATE, f"invited user {user.pk}")
        transaction.on_commit(lambda: events.call_rung(call.pk, only=[user.pk]), robust=True)
    return guest


def guest_candidates(scope: Scope, consultation: Consultation) -> QuerySet[User]:
    """Whom the specialist may invite: active clinicians and specialists of the hospitals the specialist sees
    (their own network), apart from the consultation's two sides."""
    return (
        User.objects.filter(
            staff__hospital__in=hospitals_visible(scope),
            staff__role__in=CLINICAL_ROLES,
            staff__deactivated_at__isnull=True,
            is_active=True,
        )
        .exclude(pk__in=[consultation.assigned_to_id or 0, consultation.requested_by_id])
        .select_related("staff__hospital")
        .order_by("last_name", "first_name")
    )


# The room: presence across every ASGI process, in the database.


def presence_join(*, consultation_id: int, user_id: int, channel: str) -> tuple[str | None, dict[int, str]]:
    """Put the user's socket in the room. Returns the channel of the user's earlier socket that this one
    replaces (another tab, or a page reloaded before the old socket closed) and the others' channels."""
    now = timezone.now()
    with transaction.atomic():
        presence, created = CallPresence.objects.select_for_update().get_or_create(
            consultation_id=consultation_id, user_id=user_id, defaults={"channel_name": channel, "joined_at": now}
        )
        replaced = None
        if not created:
            replaced = presence.channel_name if presence.left_at is None else None
            presence.channel_name, presence.joined_at, presence.left_at = channel, now, None
            presence.save(update_fields=["channel_name", "joined_at", "left_at"])
    others = (
        CallPresence.objects.filter(consultation_id=consultation_id, left_at__isnull=True)
        .exclude(user_id=user_id)
        .values_list("user_id", "channel_name")
    )
    return replaced, dict(others)


def presence_count(*, consultation_id: int, user_id: int) -> int:
    """How many others are in the room now."""
    return (
        CallPresence.objects.filter(consultation_id=consultation_id, left_at__isnull=True)
        .exclude(user_id=user_id)
        .count()
    )


def presence_leave(*, consultation_id: int, user_id: int, channel: str) -> bool:
    """Mark the socket gone (unless a newer socket of the same user took its place). True if it was there."""
    return bool(
        CallPresence.objects.filter(
            consultation_id=consultation_id, user_id=user_id, channel_name=channel, left_at__isnull=True
        ).update(left_at=timezone.now())
    )


# ICE servers for the browser.


def ice_servers(user_id: int) -> list[dict[str, Any]]:
    """STUN and TURN servers for a user's browser, from settings. TURN gets time-limited credentials of the
    TURN REST scheme coturn accepts (`use-auth-secret`): the user name is the expiry and the user, the
    password an HMAC-SHA1 of it under the shared secret, so no lasting password ever reaches a page."""
    servers: list[dict[str, Any]] = []
    if settings.CALL_STUN_URLS:
        servers.append({"urls": list(settings.CALL_STUN_URLS)})
    if settings.CALL_TURN_URLS and settings.CALL_TURN_SECRET:
        username = f"{int(time.time()) + settings.CALL_TURN_TTL_SECONDS}:{user_id}"
        digest = hmac.new(settings.CALL_TURN_SECRET.encode(), username.encode(), hashlib.sha1).digest()
        servers.append(
            {
                "urls": list(settings.CALL_TURN_URLS),
                "username": username,
                "credential": base64.b64encode(digest).decode(),
            }
        )
    return servers


def call_view(call: Call | None) -> dict[str, Any] | None:
    """A call as the page sees it."""
    if call is None:
        return None
    return {
        "id": call.pk,
        "state": call.state,
        "started_by": person(call.started_by),
        "ring_until": call.ring_until.isoformat(),
        "answered_at": call.answered_at.isoformat() if call.answered_at else None,
        "ended_at": call.ended_at.isoformat() if call.ended_at else None,
        "end_reason": call.end_reason or None,
    }


def person(user: User) -> dict[str, Any]:
    return {"id": user.pk, "name": user.get_full_name() or user.username}
