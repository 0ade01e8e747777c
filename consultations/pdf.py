"""The signed conclusion as a PDF for the clinician's records: Cyrillic text in an embedded DejaVu font."""

from pathlib import Path

from django.utils import timezone
from django.utils.translation import gettext as _
from fpdf import FPDF

from consultations.models import Conclusion

FONTS = Path(__file__).resolve().parent / "fonts"


def conclusion_pdf(conclusion: Conclusion) -> bytes:
    consultation = conclusion.consultation
    patient = consultation.patient
    pdf = FPDF(format="A4")
    pdf.set_title(f"{_('Conclusion')} #{consultation.pk} v{conclusion.version}")
    pdf.set_author(conclusion.signed_by.get_full_name())
    pdf.add_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()

    def heading(text: str) -> None:
        pdf.set_font("DejaVu", "B", 11)
        pdf.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")

    def paragraph(text: str) -> None:
        pdf.set_font("DejaVu", "", 10)
        pdf.multi_cell(0, 5.5, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)

    pdf.set_font("DejaVu", "B", 14)
    pdf.multi_cell(0, 8, _("Telemedicine consultation conclusion"), new_x="LMARGIN", new_y="NEXT")
    paragraph(f"{consultation.consulted_hospital} · {_('Version')} {conclusion.version}")
    heading(_("Patient"))
    paragraph(
        f"{patient.full_name}, {patient.birth_date:%d.%m.%Y}\n"
        f"{patient.hospital}, {_('record number')} {patient.record_number}"
        + (f", {_('SNILS')} {patient.snils_display}" if patient.snils else "")
    )
    heading(_("Request"))
    paragraph(
        f"{consultation.get_urgency_display()} · {consultation.specialty}\n"
        f"{_('Clinical question')}: {consultation.question}\n{_('Current condition')}: {consultation.condition}"
    )
    heading(_("Findings"))
    paragraph(conclusion.findings)
    heading(_("Diagnosis (ICD-10)"))
    paragraph(f"{conclusion.diagnosis_id} {conclusion.diagnosis.title_ru}\n{conclusion.diagnosis_text}")
    heading(_("Recommendation"))
    paragraph(f"{conclusion.get_recommendation_display()}\n{conclusion.plan}")
    if conclusion.follow_up:
        paragraph(f"{_('Follow-up date')}: {conclusion.follow_up:%d.%m.%Y}")
    signed_at = timezone.localtime(conclusion.signed_at)
    heading(_("Signed"))
    paragraph(
        f"{conclusion.signed_by.get_full_name()}, {consultation.consulted_hospital}\n"
        f"{signed_at:%d.%m.%Y %H:%M %Z} · {_('confirmed with a second factor')}"
    )
    return bytes(pdf.output())
