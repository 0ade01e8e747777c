from django.apps import AppConfig


class DiagnosticsConfig(AppConfig):
    name = "diagnostics"

    def ready(self) -> None:
        from diagnostics.demo import demo_images_load
        from hospitals.demo import demo_loader_register

        demo_loader_register(demo_images_load)
