from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "patients"

    def ready(self) -> None:
        from hospitals.demo import demo_loader_register
        from patients.demo import demo_patients_load

        demo_loader_register(demo_patients_load)
