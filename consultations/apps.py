from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsultationsConfig(AppConfig):
    name = "consultations"
    verbose_name = _("Consultations")

    def ready(self) -> None:
        from consultations.events import lab_changed_many_forward, study_changed_forward
        from consultations.selectors import patients_of_consultations
        from diagnostics.events import (
            lab_changed_many_signal,
            lab_changed_signal,
            recording_changed_signal,
            study_changed_signal,
        )
        from hospitals.scoping import patient_grant_register

        # A consultation addressed to a hospital lets its specialists see that patient, and hear of their
        # results (images, recordings, lab results and critical-value alerts) as they arrive.
        patient_grant_register(patients_of_consultations)
        study_changed_signal.connect(study_changed_forward, dispatch_uid="consultations.study_changed_forward")
        recording_changed_signal.connect(study_changed_forward, dispatch_uid="consultations.recording_changed_forward")
        lab_changed_signal.connect(study_changed_forward, dispatch_uid="consultations.lab_changed_forward")
        lab_changed_many_signal.connect(lab_changed_many_forward, dispatch_uid="consultations.lab_changed_many_forward")
