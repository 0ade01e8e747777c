"""QIDO-RS: search studies, series and instances (PS3.18 10.6) with the matching OHIF's study list uses.

Matching (PS3.4 C.2.2.2): a UID list (comma or backslash separated), a date or date range
(20240101-20240131, 20240101-, -20240131), `*` and `?` wildcards in text, and universal matching for an
empty value or a lone `*`. Patient attributes match and are answered from the platform's patient record
(its name, record number, birth date and sex), not from the copies in the images' headers. Names match
without regard to case or ё/е; descriptions without regard to case. `fuzzymatching` is ignored, as are
attributes the platform does not index; a Warning header names what was ignored.

A page costs a constant number of queries: the rows, then one grouped count per count attribute.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import QueryDict
from django.utils.translation import gettext as _
from pydicom.datadict import keyword_for_tag

from diagnostics.dicomweb.dicomjson import Json, Links, dataset, person_name
from diagnostics.dicomweb.selectors import instances_of
from diagnostics.models import Instance, Series, Study
from diagnostics.selectors import instances_visible, series_visible, studies_visible
from hospitals.scoping import Scope
from patients.validators import normalize_name

STUDY, SERIES, INSTANCE = "study", "series", "instance"
_DEPTH = {STUDY: 0, SERIES: 1, INSTANCE: 2}
MAX_RESULTS = 1000
_SEX = {"male": "M", "female": "F"}
_TAG = re.compile(r"^[0-9A-Fa-f]{8}$")
_DATE_RANGE = re.compile(r"^(\d{8})?-(\d{8})?$")


class QueryInvalid(ValueError):
    """A search parameter that cannot be understood; the message names it, for a person."""


# Matching keys: the level they belong to, how they match, and the field of that level's model.
@dataclass(frozen=True)
class _Key:
    level: str
    kind: str
    field: str = ""


_KEYS = {
    "StudyInstanceUID": _Key(STUDY, "uid", "study_instance_uid"),
    "StudyDate": _Key(STUDY, "date", "study_date"),
    "AccessionNumber": _Key(STUDY, "code", "accession_number"),
    "StudyID": _Key(STUDY, "code", "study_id"),
    "StudyDescription": _Key(STUDY, "text", "description"),
    "ReferringPhysicianName": _Key(STUDY, "text", "referring_physician"),
    "ModalitiesInStudy": _Key(STUDY, "modalities"),
    "PatientName": _Key(STUDY, "name", "patient__search_name"),
    "PatientID": _Key(STUDY, "record", "patient__record_number"),
    "PatientBirthDate": _Key(STUDY, "date", "patient__birth_date"),
    "PatientSex": _Key(STUDY, "sex", "patient__sex"),
    "SeriesInstanceUID": _Key(SERIES, "uid", "series_instance_uid"),
    "Modality": _Key(SERIES, "code", "modality"),
    "SeriesNumber": _Key(SERIES, "int", "number"),
    "SeriesDescription": _Key(SERIES, "text", "description"),
    "BodyPartExamined": _Key(SERIES, "code", "body_part"),
    "SOPInstanceUID": _Key(INSTANCE, "uid", "sop_instance_uid"),
    "SOPClassUID": _Key(INSTANCE, "uid", "sop_class_uid"),
    "InstanceNumber": _Key(INSTANCE, "int", "number"),
}
# The path from a level's model to an upper level's (query level, key level).
_PATH = {
    (STUDY, STUDY): "",
    (SERIES, STUDY): "study__",
    (SERIES, SERIES): "",
    (INSTANCE, STUDY): "series__study__",
    (INSTANCE, SERIES): "series__",
    (INSTANCE, INSTANCE): "",
}


@dataclass
class _Row:
    study: Study
    series: Series | None = None
    instance: Instance | None = None


@dataclass
class _Page:
    links: Links
    study_series: dict[int, int] = field(default_factory=dict)
    study_instances: dict[int, int] = field(default_factory=dict)
    series_instances: dict[int, int] = field(default_factory=dict)


def _patient_name(row: _Row, page: _Page) -> str:
    patient = row.study.patient
    return person_name(patient.family_name, patient.given_name, patient.patronymic)


def _series(row: _Row) -> Series:
    assert row.series is not None
    return row.series


def _instance(row: _Row) -> Instance:
    assert row.instance is not None
    return row.instance


def _retrieve_url(row: _Row, page: _Page) -> tuple[str, str]:
    study = row.study.study_instance_uid
    if row.instance is not None:
        return "RetrieveURL", page.links.instance(
            study, _series(row).series_instance_uid, row.instance.sop_instance_uid
        )
    if row.series is not None:
        return "RetrieveURL", page.links.series(study, row.series.series_instance_uid)
    return "RetrieveURL", page.links.study(study)


Getter = Callable[[_Row, _Page], Any]
# Answered attributes: their level and how a row gives them. Those in _DEFAULT are always answered at
# their level; the rest on request (includefield) or when matched on.
_ATTRIBUTES: dict[str, tuple[str, Getter]] = {
    "StudyDate": (STUDY, lambda row, page: row.study.study_date),
    "StudyTime": (STUDY, lambda row, page: row.study.study_time),
    "AccessionNumber": (STUDY, lambda row, page: row.study.accession_number),
    "ModalitiesInStudy": (STUDY, lambda row, page: [m for m in row.study.modalities.split(",") if m]),
    "ReferringPhysicianName": (STUDY, lambda row, page: row.study.referring_physician),
    "PatientName": (STUDY, _patient_name),
    "PatientID": (STUDY, lambda row, page: row.study.patient.record_number),
    "PatientBirthDate": (STUDY, lambda row, page: row.study.patient.birth_date),
    "PatientSex": (STUDY, lambda row, page: _SEX.get(row.study.patient.sex, "")),
    "StudyInstanceUID": (STUDY, lambda row, page: row.study.study_instance_uid),
    "StudyID": (STUDY, lambda row, page: row.study.study_id),
    "StudyDescription": (STUDY, lambda row, page: row.study.description),
    "NumberOfStudyRelatedSeries": (STUDY, lambda row, page: page.study_series.get(row.study.pk, 0)),
    "NumberOfStudyRelatedInstances": (STUDY, lambda row, page: page.study_instances.get(row.study.pk, 0)),
    "Modality": (SERIES, lambda row, page: _series(row).modality),
    "SeriesInstanceUID": (SERIES, lambda row, page: _series(row).series_instance_uid),
    "SeriesNumber": (SERIES, lambda row, page: _series(row).number),
    "SeriesDescription": (SERIES, lambda row, page: _series(row).description),
    "BodyPartExamined": (SERIES, lambda row, page: _series(row).body_part),
    "NumberOfSeriesRelatedInstances": (SERIES, lambda row, page: page.series_instances.get(_series(row).pk, 0)),
    "SOPClassUID": (INSTANCE, lambda row, page: _instance(row).sop_class_uid),
    "SOPInstanceUID": (INSTANCE, lambda row, page: _instance(row).sop_instance_uid),
    "InstanceNumber": (INSTANCE, lambda row, page: _instance(row).number),
    "Rows": (INSTANCE, lambda row, page: _instance(row).rows),
    "Columns": (INSTANCE, lambda row, page: _instance(row).columns),
    "NumberOfFrames": (INSTANCE, lambda row, page: _instance(row).frames),
    "PhotometricInterpretation": (INSTANCE, lambda row, page: _instance(row).photometric),
    "PixelSpacing": (
        INSTANCE,
        lambda row, page: [float(v) for v in _instance(row).pixel_spacing.split("\\") if v],
    ),
    "AvailableTransferSyntaxUID": (INSTANCE, lambda row, page: _instance(row).transfer_syntax_uid),
}
_OPTIONAL = {"PhotometricInterpretation", "PixelSpacing", "AvailableTransferSyntaxUID"}
_DEFAULT = {
    level: [k for k, (at, _get) in _ATTRIBUTES.items() if at == level and k not in _OPTIONAL] for level in _DEPTH
}


@dataclass
class Query:
    """A parsed search: what to match, what to answer, which page; and what was ignored."""

    match: dict[str, str] = field(default_factory=dict)  # keyword -> value as sent
    include: set[str] = field(default_factory=set)
    include_all: bool = False
    limit: int = MAX_RESULTS
    offset: int = 0
    ignored: list[str] = field(default_factory=list)


def query_parse(params: QueryDict, level: str) -> Query:
    query = Query()
    for name, values in params.lists():
        if name == "limit":
            query.limit = min(_count(name, values[-1]), MAX_RESULTS)
        elif name == "offset":
            query.offset = _count(name, values[-1])
        elif name == "includefield":
            for value in ",".join(values).split(","):
                if value.strip().lower() == "all":
                    query.include_all = True
                elif keyword := _keyword(value.strip()):
                    query.include.add(keyword)
                elif value.strip():
                    query.ignored.append(value.strip())
        elif name == "fuzzymatching":
            if values[-1].lower() == "true":
                query.ignored.append(name)  # matching is literal; PS3.18 asks to say so
        elif name == "accept":
            continue  # the media type, negotiated by the view
        else:
            keyword = _keyword(name)
            key = _KEYS.get(keyword or "")
            if keyword is None or key is None or _DEPTH[key.level] > _DEPTH[level]:
                query.ignored.append(name)
            else:
                # Lists (UIDs, modalities) may also come as the parameter repeated.
                query.match[keyword] = ",".join(values) if key.kind in ("uid", "modalities") else values[-1]
    return query


def notes(query: Query, found: int) -> list[str]:
    """What a client should know about the answer (sent as Warning headers, PS3.18 8.4.1)."""
    said = []
    if query.ignored:
        names = ", ".join(name.replace('"', "'")[:64] for name in query.ignored[:20])
        said.append(_("These query parameters are not supported and were ignored: %(names)s.") % {"names": names})
    if found == query.limit == MAX_RESULTS:
        said.append(_("The results were cut at %(limit)s; ask for the next ones with offset.") % {"limit": MAX_RESULTS})
    return said


def _count(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise QueryInvalid(
            _("%(name)s must be a whole number, 0 or more; it was “%(value)s”.") % {"name": name, "value": value[:40]}
        )
    return number


def _keyword(name: str) -> str | None:
    """An attribute keyword from a keyword or a tag ("00100010"); None for anything else."""
    if _TAG.match(name):
        return keyword_for_tag(int(name, 16)) or None
    return name if name in _ATTRIBUTES or name in _KEYS else None


def search(
    *, scope: Scope, level: str, query: Query, links: Links, study: Study | None = None, series: Series | None = None
) -> list[Json]:
    """One page of matches at `level` within the scope (or within an already accessed study or series),
    as DICOM JSON."""
    rows = _rows(scope, level, query, study, series)
    page = _Page(links)
    answered = _answered(level, query, study, series)
    _counts(page, rows, answered)
    return [
        dataset([*((keyword, _ATTRIBUTES[keyword][1](row, page)) for keyword in answered), _retrieve_url(row, page)])
        for row in rows
    ]


def _answered(level: str, query: Query, study: Study | None, series: Series | None) -> list[str]:
    """Attributes to answer: the level's defaults, the upper levels' when the search is not inside them
    (PS3.18 10.6.3.3), what was asked for, and what was matched on."""
    context = 1 if series is not None else 0 if study is not None else -1
    wanted = []
    for keyword, (at, _get) in _ATTRIBUTES.items():
        depth = _DEPTH[at]
        if depth > _DEPTH[level]:
            continue
        default = keyword in _DEFAULT[at] and (
            depth == _DEPTH[level] or depth > context or keyword.endswith("InstanceUID")
        )
        if default or query.include_all or keyword in query.include or keyword in query.match:
            wanted.append(keyword)
    return wanted


def _rows(scope: Scope, level: str, query: Query, study: Study | None, series: Series | None) -> list[_Row]:
    window = slice(query.offset, query.offset + query.limit)
    condition = _condition(level, query.match)
    if level == STUDY:
        return _study_rows(studies_visible(scope).filter(condition), window)
    if level == SERIES:
        return _series_rows(scope, condition, window, study)
    return _instance_rows(scope, condition, window, study, series)


def _study_rows(studies: QuerySet[Study], window: slice) -> list[_Row]:
    studies = studies.select_related("patient").order_by("-study_date", "-created_at", "pk")
    return [_Row(study) for study in studies[window]]


def _series_rows(scope: Scope, condition: Q, window: slice, study: Study | None) -> list[_Row]:
    if study is not None:
        inside = Series.objects.filter(study=study).filter(condition).order_by("number", "pk")
        return [_Row(study, one) for one in inside[window]]
    found = (
        series_visible(scope)
        .filter(condition)
        .select_related("study__patient")
        .order_by("-study__study_date", "-study__created_at", "study_id", "number", "pk")
    )
    return [_Row(one.study, one) for one in found[window]]


def _instance_rows(scope: Scope, condition: Q, window: slice, study: Study | None, series: Series | None) -> list[_Row]:
    if study is not None:
        inside = instances_of(study=study, series=series).filter(condition)
        return [_Row(study, one.series, one) for one in inside[window]]
    found = (
        instances_visible(scope)
        .filter(condition)
        .select_related("series__study__patient")
        .order_by("series__study_id", "series__number", "series_id", "number", "pk")
    )
    return [_Row(one.series.study, one.series, one) for one in found[window]]


def _counts(page: _Page, rows: list[_Row], answered: list[str]) -> None:
    """The page's counts, one grouped query per level (the models' ordering kept out of the grouping)."""
    if "NumberOfStudyRelatedSeries" in answered or "NumberOfStudyRelatedInstances" in answered:
        study_ids = list({row.study.pk for row in rows})
        by_study = (
            Series.objects.filter(study_id__in=study_ids)
            .order_by()
            .values("study_id")
            .annotate(series_count=Count("pk", distinct=True), instance_count=Count("instances"))
        )
        for group in by_study:
            page.study_series[group["study_id"]] = group["series_count"]
            page.study_instances[group["study_id"]] = group["instance_count"]
    if "NumberOfSeriesRelatedInstances" in answered:
        series_ids = list({row.series.pk for row in rows if row.series is not None})
        grouped = (
            Instance.objects.filter(series_id__in=series_ids).order_by().values("series_id").annotate(n=Count("pk"))
        )
        page.series_instances = {group["series_id"]: group["n"] for group in grouped}


# Matching.


def _condition(level: str, match: dict[str, str]) -> Q:
    condition = Q()
    for keyword, value in match.items():
        key = _KEYS[keyword]
        value = value.strip()
        if value in ("", "*"):
            continue  # universal matching: answered, not filtered
        condition &= _matcher(key, _PATH[(level, key.level)], keyword, value)
    return condition


def _matcher(key: _Key, path: str, keyword: str, value: str) -> Q:
    name = path + key.field
    if key.kind == "uid":
        return Q(**{f"{name}__in": [uid for uid in re.split(r"[,\\]", value) if uid]})
    if key.kind == "date":
        return _date_range(name, keyword, value)
    if key.kind == "int":
        try:
            return Q(**{name: int(value)})
        except ValueError:
            raise QueryInvalid(
                _("%(keyword)s must be a number; it was “%(value)s”.") % {"keyword": keyword, "value": value[:40]}
            ) from None
    if key.kind == "modalities":
        modalities = [m for m in re.split(r"[,\\]", value) if m]
        study = {"": "pk", "study__": "study_id", "series__study__": "series__study_id"}[path]
        return Q(Exists(Series.objects.filter(study_id=OuterRef(study), modality__in=modalities)))
    if key.kind == "sex":
        sexes = [sex for sex, code in _SEX.items() if code == value.upper()]
        return Q(**{f"{name}__in": sexes})
    if key.kind == "name":
        # The record's name is kept lower case with ё as е, so the pattern is put in the same form.
        pattern = normalize_name(value.split("=")[0].replace("^", " "))
        return _wildcard(name, pattern, fold=False)
    if key.kind == "record":
        # As the services match a header's Patient ID (and PostgreSQL's upper() index serves it).
        return (
            Q(**{f"{name}__iexact": value})
            if "*" not in value and "?" not in value
            else _wildcard(name, value, fold=True)
        )
    return _wildcard(name, value, fold=key.kind == "text")


def _wildcard(name: str, pattern: str, *, fold: bool) -> Q:
    """`*` (any run of characters) and `?` (one character). Folded matching goes through a regular
    expression even without wildcards: SQLite's LIKE folds only ASCII letters, and descriptions are Russian."""
    if not fold and "*" not in pattern and "?" not in pattern:
        return Q(**{name: pattern})
    if not fold and pattern.endswith("*") and not any(c in pattern[:-1] for c in "*?"):
        return Q(**{f"{name}__startswith": pattern[:-1]})  # the usual "Иван*": LIKE, cheaper than a regex
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return Q(**{f"{name}__{'iregex' if fold else 'regex'}": f"^{regex}$"})


def _date_range(name: str, keyword: str, value: str) -> Q:
    if re.fullmatch(r"\d{8}", value):
        return Q(**{name: _date(keyword, value)})
    found = _DATE_RANGE.match(value)
    if found is None or value == "-":
        raise QueryInvalid(
            _(
                "%(keyword)s must be a date YYYYMMDD or a range YYYYMMDD-YYYYMMDD (either end may be left "
                "open); it was “%(value)s”."
            )
            % {"keyword": keyword, "value": value[:40]}
        )
    condition = Q()
    if found.group(1):
        condition &= Q(**{f"{name}__gte": _date(keyword, found.group(1))})
    if found.group(2):
        condition &= Q(**{f"{name}__lte": _date(keyword, found.group(2))})
    return condition


def _date(keyword: str, text: str) -> date:
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise QueryInvalid(
            _("%(keyword)s holds no such date: “%(value)s”.") % {"keyword": keyword, "value": text}
        ) from None
