"""Studies, series and instances by their DICOM UIDs, within the caller's scope; anything else is a 404.

A UID is unique within a hospital, so a specialist who sees another hospital's patients through a
consultation may see two studies with one UID (the other hospital's and a copy sent to their own): the
own hospital's is taken.
"""

import re

from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import Http404

from diagnostics.models import Instance, Series, Study
from diagnostics.selectors import instances_visible, series_visible, studies_visible
from hospitals.scoping import Scope

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def _own_first(scope: Scope, hospital_field: str) -> Case:
    return Case(
        When(**{hospital_field: scope.hospital_id or 0}, then=Value(0)), default=Value(1), output_field=IntegerField()
    )


def is_uid(value: str) -> bool:
    return len(value) <= 64 and bool(_UID.match(value))


def uid_checked(value: str) -> str:
    """The UID from a path; a 404 for anything that cannot be one."""
    if not is_uid(value):
        raise Http404  # the same answer as a UID that names nothing
    return value


def access_study(scope: Scope, study_uid: str) -> Study:
    study = (
        studies_visible(scope)
        .filter(study_instance_uid=uid_checked(study_uid))
        .select_related("patient")
        .order_by(_own_first(scope, "hospital_id"), "pk")
        .first()
    )
    if study is None:
        raise Http404
    return study


def access_series(scope: Scope, study_uid: str, series_uid: str) -> Series:
    series = (
        series_visible(scope)
        .filter(study__study_instance_uid=uid_checked(study_uid), series_instance_uid=uid_checked(series_uid))
        .select_related("study__patient")
        .order_by(_own_first(scope, "study__hospital_id"), "pk")
        .first()
    )
    if series is None:
        raise Http404
    return series


def access_instance(scope: Scope, study_uid: str, series_uid: str, sop_uid: str) -> Instance:
    instance = (
        instances_visible(scope)
        .filter(
            series__study__study_instance_uid=uid_checked(study_uid),
            series__series_instance_uid=uid_checked(series_uid),
            sop_instance_uid=uid_checked(sop_uid),
        )
        .select_related("series__study__patient")
        .order_by(_own_first(scope, "hospital_id"), "pk")
        .first()
    )
    if instance is None:
        raise Http404
    return instance


def instances_of(*, study: Study, series: Series | None = None) -> QuerySet[Instance]:
    """The instances of a study (or of one of its series), already reached through access_*, in the order a
    viewer shows them."""
    instances = (
        Instance.objects.filter(series=series) if series is not None else Instance.objects.filter(series__study=study)
    )
    return instances.select_related("series").order_by("series__number", "series_id", "number", "pk")
