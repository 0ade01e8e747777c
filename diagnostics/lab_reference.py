"""The analytes in scope, as the platform ships them: LOINC codes, UCUM units, conversions, reference ranges
and critical limits. Platform admins edit the rows afterwards (Django admin); loading again keeps edits.

Loaded by a migration; call `lab_reference_load()` to put it back after a database was emptied.

Sources: LOINC 2.8 for codes; units as Russian laboratories report them (SI: mmol/L, µmol/L, g/L); adult
reference intervals as in Russian clinical-laboratory practice (Kamyshnikov's handbook) and the assay
inserts; critical limits after the issue that asked for them (glucose below 3 or above 20 mmol/L,
potassium above 6.0 mmol/L) and the ESC 2020 NSTE-ACS 0 h/1 h algorithm's rule-in values for
high-sensitivity troponin (I: 64 ng/L, T: 52 ng/L). Conventional-assay troponin arrives in ng/mL (µg/L) and
is kept in ng/L so one chart and one limit serve both.
"""

from decimal import Decimal
from typing import Any

# (sex, age_from, age_to, low, high); sex "" is anyone.
Range = tuple[str, int, int | None, str | None, str | None]

TESTS: list[dict[str, Any]] = [
    # Complete blood count.
    {"loinc": "6690-2", "name": "Leukocytes", "short_name": "WBC", "unit": "10*9/L", "decimals": 1,
     "aliases": ["WBC", "LEU", "Лейкоциты"], "units": {"10*3/uL": 1, "/nL": 1, "10^9/L": 1},
     "ranges": [("", 0, None, "4.0", "9.0")], "critical": ("2.0", "30.0")},
    {"loinc": "789-8", "name": "Erythrocytes", "short_name": "RBC", "unit": "10*12/L", "decimals": 2,
     "aliases": ["RBC", "ERY", "Эритроциты"], "units": {"10*6/uL": 1, "/pL": 1, "10^12/L": 1},
     "ranges": [("male", 0, None, "4.0", "5.0"), ("female", 0, None, "3.5", "4.7")]},
    {"loinc": "718-7", "name": "Hemoglobin", "short_name": "HGB", "unit": "g/L", "decimals": 0,
     "aliases": ["HGB", "HB", "Hb", "Гемоглобин"], "units": {"g/dL": 10, "mmol/L": "16.11"},
     "ranges": [("male", 0, None, "130", "160"), ("female", 0, None, "120", "140")], "critical": ("70", "200")},
    {"loinc": "4544-3", "name": "Hematocrit", "short_name": "HCT", "unit": "%", "decimals": 1,
     "aliases": ["HCT", "Гематокрит"], "units": {"L/L": 100},
     "ranges": [("male", 0, None, "40", "48"), ("female", 0, None, "36", "42")]},
    {"loinc": "777-3", "name": "Platelets", "short_name": "PLT", "unit": "10*9/L", "decimals": 0,
     "aliases": ["PLT", "Тромбоциты"], "units": {"10*3/uL": 1, "/nL": 1, "10^9/L": 1},
     "ranges": [("", 0, None, "180", "320")], "critical": ("20", "1000")},
    {"loinc": "787-2", "name": "MCV", "short_name": "MCV", "unit": "fL", "decimals": 0,
     "aliases": ["MCV"], "units": {"um3": 1}, "ranges": [("", 0, None, "80", "100")]},
    {"loinc": "785-6", "name": "MCH", "short_name": "MCH", "unit": "pg", "decimals": 1,
     "aliases": ["MCH"], "units": {}, "ranges": [("", 0, None, "27", "31")]},
    {"loinc": "786-4", "name": "MCHC", "short_name": "MCHC", "unit": "g/L", "decimals": 0,
     "aliases": ["MCHC"], "units": {"g/dL": 10}, "ranges": [("", 0, None, "300", "380")]},
    # Glucose: plasma (lab analysers) and capillary blood (glucose meters); mg/dL is the same analyte's
    # mass LOINC code and unit, converted with 1 mmol/L = 18.016 mg/dL.
    {"loinc": "14749-6", "name": "Glucose", "short_name": "GLU", "unit": "mmol/L", "decimals": 1, "trend": True,
     "aliases": ["2345-7", "GLU", "GLUC", "Глюкоза"], "units": {"mg/dL": "0.0555062"},
     "ranges": [("", 0, None, "3.9", "6.1")], "critical": ("3.0", "20.0")},
    {"loinc": "14743-9", "name": "Glucose, capillary (meter)", "short_name": "GLU cap", "unit": "mmol/L",
     "decimals": 1, "trend": True, "aliases": ["2339-0", "41653-7", "GLU-CAP", "BG"], "units": {"mg/dL": "0.0555062"},
     "ranges": [("", 0, None, "3.3", "5.5")], "critical": ("3.0", "20.0")},
    # HbA1c in NGSP % ; IFCC mmol/mol converts by the master equation NGSP = 0.09148 × IFCC + 2.152.
    {"loinc": "4548-4", "name": "Hemoglobin A1c", "short_name": "HbA1c", "unit": "%", "decimals": 1, "trend": True,
     "aliases": ["59261-8", "HBA1C", "A1C", "Гликированный гемоглобин"],
     "units": {"mmol/mol": ("0.09148", "2.152")}, "ranges": [("", 0, None, "4.0", "6.0")]},
    # Kidney and liver.
    {"loinc": "14682-9", "name": "Creatinine", "short_name": "CREA", "unit": "umol/L", "decimals": 0,
     "aliases": ["2160-0", "CREA", "CRE", "Креатинин"], "units": {"mg/dL": "88.42"},
     "ranges": [("male", 0, None, "62", "106"), ("female", 0, None, "44", "80")], "critical": (None, "700")},
    {"loinc": "1742-6", "name": "Alanine aminotransferase", "short_name": "ALT", "unit": "U/L", "decimals": 0,
     "aliases": ["ALT", "ALAT", "GPT", "АЛТ"], "units": {"ukat/L": 60},
     "ranges": [("male", 0, None, "0", "41"), ("female", 0, None, "0", "33")]},
    {"loinc": "1920-8", "name": "Aspartate aminotransferase", "short_name": "AST", "unit": "U/L", "decimals": 0,
     "aliases": ["AST", "ASAT", "GOT", "АСТ"], "units": {"ukat/L": 60},
     "ranges": [("male", 0, None, "0", "40"), ("female", 0, None, "0", "32")]},
    {"loinc": "14631-6", "name": "Bilirubin, total", "short_name": "TBIL", "unit": "umol/L", "decimals": 1,
     "aliases": ["1975-2", "TBIL", "BIL-T", "Билирубин общий"], "units": {"mg/dL": "17.1"},
     "ranges": [("", 0, None, "3.4", "20.5")]},
    # Cardiac markers.
    {"loinc": "89579-7", "name": "Troponin I, high-sensitivity", "short_name": "hs-TnI", "unit": "ng/L",
     "decimals": 0, "trend": True, "aliases": ["10839-9", "TNI", "CTNI", "HSTNI", "Тропонин I"],
     "units": {"pg/mL": 1, "ng/mL": 1000, "ug/L": 1000},
     "ranges": [("male", 0, None, "0", "34"), ("female", 0, None, "0", "16")], "critical": (None, "64")},
    {"loinc": "67151-1", "name": "Troponin T, high-sensitivity", "short_name": "hs-TnT", "unit": "ng/L",
     "decimals": 0, "trend": True, "aliases": ["6598-7", "TNT", "CTNT", "HSTNT", "Тропонин T"],
     "units": {"pg/mL": 1, "ng/mL": 1000, "ug/L": 1000}, "ranges": [("", 0, None, "0", "14")],
     "critical": (None, "52")},
    {"loinc": "13969-1", "name": "Creatine kinase MB", "short_name": "CK-MB", "unit": "ng/mL", "decimals": 1,
     "aliases": ["CKMB", "CK-MB", "КФК-МВ"], "units": {"ug/L": 1}, "ranges": [("", 0, None, "0", "5.0")]},
    {"loinc": "33762-6", "name": "NT-proBNP", "short_name": "NT-proBNP", "unit": "pg/mL", "decimals": 0,
     "aliases": ["NTPROBNP", "NT-PROBNP", "PROBNP"], "units": {"ng/L": 1, "pmol/L": "8.457"},
     "ranges": [("", 0, 75, "0", "125"), ("", 75, None, "0", "450")]},
    {"loinc": "48065-7", "name": "D-dimer (FEU)", "short_name": "D-dimer", "unit": "ng/mL", "decimals": 0,
     "aliases": ["DDIMER", "D-DIMER", "DDI", "Д-димер"], "units": {"ug/mL": 1000, "mg/L": 1000, "ug/L": 1},
     "ranges": [("", 0, None, "0", "500")]},
    # Prostate: age-specific upper limits (Oesterling 1993).
    {"loinc": "2857-1", "name": "Prostate-specific antigen", "short_name": "PSA", "unit": "ng/mL", "decimals": 2,
     "trend": True, "aliases": ["PSA", "TPSA", "ПСА"], "units": {"ug/L": 1},
     "ranges": [("male", 0, 50, "0", "2.5"), ("male", 50, 60, "0", "3.5"), ("male", 60, 70, "0", "4.5"),
                ("male", 70, None, "0", "6.5")]},
    # Electrolytes and coagulation.
    {"loinc": "2823-3", "name": "Potassium", "short_name": "K", "unit": "mmol/L", "decimals": 1,
     "aliases": ["K", "K+", "KALIUM", "Калий"], "units": {"mEq/L": 1}, "ranges": [("", 0, None, "3.5", "5.1")],
     "critical": ("2.8", "6.0")},
    {"loinc": "2951-2", "name": "Sodium", "short_name": "Na", "unit": "mmol/L", "decimals": 0,
     "aliases": ["NA", "NA+", "NATRIUM", "Натрий"], "units": {"mEq/L": 1}, "ranges": [("", 0, None, "136", "145")],
     "critical": ("120", "160")},
    {"loinc": "6301-6", "name": "INR", "short_name": "INR", "unit": "", "decimals": 2,
     "aliases": ["INR", "МНО"], "units": {"{INR}": 1, "1": 1, "{ratio}": 1}, "ranges": [("", 0, None, "0.8", "1.2")],
     "critical": (None, "5.0")},
]  # fmt: skip


def _decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def lab_reference_load(apps: Any = None) -> None:
    """Create the shipped tests, units and ranges that are missing; rows that exist keep their edits. `apps`
    is a migration's app registry (None: the current models)."""
    from django.apps import apps as current

    registry = apps if apps is not None else current
    tests, units, ranges = (
        registry.get_model("diagnostics", name) for name in ("LabTest", "LabUnit", "ReferenceRange")
    )
    for order, row in enumerate(TESTS, start=1):
        low, high = row.get("critical", (None, None))
        test, created = tests.objects.get_or_create(
            loinc=row["loinc"],
            defaults={
                "name": row["name"],
                "short_name": row["short_name"],
                "unit": row["unit"],
                "aliases": row["aliases"],
                "decimals": row["decimals"],
                "trend": row.get("trend", False),
                "critical_low": _decimal(low),
                "critical_high": _decimal(high),
                "order": order,
            },
        )
        for unit, conversion in row["units"].items():
            factor, offset = conversion if isinstance(conversion, tuple) else (conversion, 0)
            units.objects.get_or_create(
                test=test, unit=unit, defaults={"factor": _decimal(factor), "offset": _decimal(offset)}
            )
        if created:
            ranges.objects.bulk_create(
                ranges(test=test, sex=sex, age_from=age_from, age_to=age_to, low=_decimal(lo), high=_decimal(hi))
                for sex, age_from, age_to, lo, hi in row["ranges"]
            )
