from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsultationsConfig(AppConfig):
    name = "consultations"
    verbose_name = _("Consultations")

    def ready(self) -> None:
        from consultations.selectors import patients_of_consultations
        from hospitals.scoping import patient_grant_register

        # A consultation addressed to a hospital lets its specialists see that patient.
        patient_grant_register(patients_of_consultations)
