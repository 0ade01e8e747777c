"""FHIR R4 Observations as devices send them, read into the lab pipeline's results.

The resource is checked against the FHIR R4 model (fhir.resources' R4B module: R4's Observation, Bundle and
their data types): a resource that does not hold together is refused whole with an OperationOutcome naming
each issue by its FHIRPath. Then, per Observation:

- the patient is `subject.identifier.value`, a record number of the device's hospital;
- the test is the `code.coding` of system http://loinc.org (else its first coding, and `code.text`);
- the value is `valueQuantity` (with its comparator), or a numeric `valueInteger` or `valueString`; the unit
  is the quantity's UCUM `code`, else its `unit`;
- the time is `effectiveDateTime` (or `effectiveInstant`, or `effectivePeriod.start`), with its offset;
- status `entered-in-error` and `cancelled` withdraw a result, which a device may not do: refused;
  `registered` carries no result yet and is passed over.
"""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from diagnostics.labs import Problem, ResultIn
from diagnostics.models import Observation

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
STATUSES = {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}

EXAMPLE_OBSERVATION = {
    "resourceType": "Observation",
    "identifier": [{"system": "urn:device:meter-7", "value": "c1d9a6b2"}],
    "status": "final",
    "code": {"coding": [{"system": LOINC, "code": "2345-7", "display": "Glucose"}]},
    "subject": {"identifier": {"value": "TUL-0001"}},
    "effectiveDateTime": "2026-11-28T10:00:00+03:00",
    "valueQuantity": {"value": 5.4, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"},
}


class FhirRefused(Exception):
    """The body as a whole cannot be taken: `outcome` is the OperationOutcome to answer with."""

    def __init__(self, outcome: dict[str, Any]) -> None:
        super().__init__(json.dumps(outcome)[:200])
        self.outcome = outcome


@dataclass
class FhirRead:
    control_id: str
    single: dict[str, Any] | None  # the Observation when one was sent, not a Bundle
    results: list[ResultIn] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def issue(diagnostics: str, *, code: str = "invalid", expression: str = "", severity: str = "error") -> dict[str, Any]:
    entry: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        entry["expression"] = [expression]
    return entry


def outcome(*issues: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": list(issues)}


def _path(root: str, location: tuple[Any, ...]) -> str:
    path = root
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _validated(model: Any, body: dict[str, Any], root: str) -> Any:
    import pydantic

    try:
        return model.model_validate(body)
    except pydantic.ValidationError as exc:
        raise FhirRefused(
            outcome(
                *[
                    issue(
                        _("%(field)s: %(reason)s")
                        % {"field": _path(root, tuple(error["loc"])), "reason": error["msg"]},
                        code="required" if error["type"] == "missing" else "structure",
                        expression=_path(root, tuple(error["loc"])),
                    )
                    for error in exc.errors()[:50]
                ]
            )
        ) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise FhirRefused(outcome(issue(str(exc)[:300], code="structure", expression=root))) from None


def observations_read(body: Any) -> FhirRead:
    """Read an Observation or a Bundle of them. Raises FhirRefused when it is neither or does not validate."""
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.observation import Observation as FhirObservation

    if not isinstance(body, dict):
        raise FhirRefused(outcome(issue(_("Send one FHIR resource (a JSON object): an Observation or a Bundle."))))
    kind = body.get("resourceType")
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    if kind == "Observation":
        observation = _validated(FhirObservation, body, "Observation")
        read = FhirRead(control_id=_identifier(observation) or digest, single=body)
        _observation_read(observation, "Observation", read)
        return read
    if kind == "Bundle":
        bundle = _validated(Bundle, body, "Bundle")
        entries = bundle.entry or []
        if not entries:
            raise FhirRefused(
                outcome(issue(_("The Bundle has no entries."), code="required", expression="Bundle.entry"))
            )
        if len(entries) > settings.DEVICE_MAX_READINGS:
            raise FhirRefused(
                outcome(
                    issue(
                        _("At most %(count)s Observations per Bundle; send the rest in another.")
                        % {"count": settings.DEVICE_MAX_READINGS},
                        code="too-costly",
                        expression="Bundle.entry",
                    )
                )
            )
        wrong = [
            n
            for n, entry in enumerate(entries)
            if entry.resource is None or entry.resource.get_resource_type() != "Observation"
        ]
        if wrong:
            raise FhirRefused(
                outcome(
                    *[
                        issue(
                            _("Only Observations are taken."),
                            code="not-supported",
                            expression=f"Bundle.entry[{n}].resource",
                        )
                        for n in wrong
                    ]
                )
            )
        identifier = bundle.identifier.value if bundle.identifier is not None else ""
        read = FhirRead(control_id=identifier or digest, single=None)
        for number, entry in enumerate(entries):
            _observation_read(entry.resource, f"Bundle.entry[{number}].resource", read)
        return read
    raise FhirRefused(
        outcome(
            issue(
                _("Only an Observation or a Bundle of Observations is taken; this is “%(kind)s”.")
                % {"kind": str(kind)[:40]},
                code="not-supported",
                expression="resourceType",
            )
        )
    )


def _identifier(observation: Any) -> str:
    for identifier in observation.identifier or []:
        if identifier.value:
            return f"{identifier.system or ''}|{identifier.value}"[-64:]
    return ""


def _observation_read(observation: Any, where: str, read: FhirRead) -> None:
    status = str(observation.status or "")
    if status not in STATUSES:
        read.problems.append(
            Problem(where, "status", _("“%(status)s” is not an Observation status.") % {"status": status[:40]})
        )
        return
    if status == "registered":
        return
    if status in ("cancelled", "entered-in-error"):
        read.problems.append(
            Problem(
                where,
                "status",
                _(
                    "The Observation is “%(status)s”: a device cannot withdraw a result; the laboratory corrects it "
                    "on the platform."
                )
                % {"status": status},
            )
        )
        return
    record = ""
    if observation.subject is not None and observation.subject.identifier is not None:
        record = str(observation.subject.identifier.value or "")
    if not record:
        read.problems.append(
            Problem(where, "subject", _("Name the patient: their record number in subject.identifier.value."))
        )
        return
    codings = observation.code.coding or []
    loinc = next((coding for coding in codings if coding.system == LOINC and coding.code), None)
    chosen = loinc or next((coding for coding in codings if coding.code), None)
    value, unit = _value(observation)
    if value is None:
        read.problems.append(
            Problem(where, "value", _("The Observation has no numeric value: send valueQuantity with value and unit."))
        )
        return
    observed_at = _time(observation)
    read.results.append(
        ResultIn(
            value=value,
            observed_at=observed_at,
            code=str(chosen.code) if chosen else "",
            coding_system="LN" if loinc else "",
            name=str(observation.code.text or (chosen.display if chosen else "") or ""),
            unit=unit,
            range=_range(observation),
            flag=_flag(observation),
            record_number=record,
            where=where,
        )
    )


def _number(value: Decimal | int | float) -> str:
    return format(Decimal(str(value)), "f")


def _value(observation: Any) -> tuple[str | None, str]:
    quantity = observation.valueQuantity
    if quantity is not None and quantity.value is not None:
        unit = quantity.code if quantity.system == UCUM and quantity.code else (quantity.unit or quantity.code or "")
        return f"{quantity.comparator or ''}{_number(quantity.value)}", str(unit)
    if observation.valueInteger is not None:
        return str(observation.valueInteger), ""
    if observation.valueString:
        return str(observation.valueString), ""
    return None, ""


def _time(observation: Any) -> datetime | None:
    for candidate in (
        observation.effectiveDateTime,
        observation.effectiveInstant,
        observation.effectivePeriod.start if observation.effectivePeriod is not None else None,
    ):
        if isinstance(candidate, datetime) and candidate.tzinfo is not None:
            return candidate
        if isinstance(candidate, date):
            return None  # a day without a time: the pipeline asks for the time it was taken
    return None


def _range(observation: Any) -> str:
    for band in observation.referenceRange or []:
        if band.text:
            return str(band.text)
        low = _number(band.low.value) if band.low is not None and band.low.value is not None else ""
        high = _number(band.high.value) if band.high is not None and band.high.value is not None else ""
        if low or high:
            return f"{low}-{high}"
    return ""


def _flag(observation: Any) -> str:
    for concept in observation.interpretation or []:
        for coding in concept.coding or []:
            if coding.code:
                return str(coding.code)[:8]
    return ""


def outcome_of(problems: list[Problem], *, stored: Sequence[Observation] = (), duplicates: int = 0) -> dict[str, Any]:
    """An OperationOutcome: what was stored (information) and each Observation refused (error)."""
    issues = []
    if stored:
        issues.append(
            issue(
                _("Stored %(count)s observations: %(ids)s.")
                % {"count": len(stored), "ids": ", ".join(f"Observation/{o.pk}" for o in stored)},
                code="informational",
                severity="information",
            )
        )
    if duplicates:
        issues.append(
            issue(
                _("%(count)s observations were stored before and are not stored again.") % {"count": duplicates},
                code="duplicate",
                severity="information",
            )
        )
    for problem in problems:
        issue_code = "required" if problem.field in ("subject", "observed_at", "code") else "value"
        issues.append(
            issue(
                problem.reason,
                code=issue_code,
                expression=f"{problem.where}.{_FIELDS.get(problem.field, problem.field)}",
            )
        )
    return outcome(*issues)


_FIELDS = {
    "observed_at": "effectiveDateTime",
    "value": "valueQuantity",
    "code": "code",
    "subject": "subject.identifier",
}
