from django.apps import AppConfig


class DiagnosticsConfig(AppConfig):
    name = "diagnostics"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from diagnostics.demo import demo_ai_model_load, demo_images_load, demo_labs_load
        from diagnostics.labs import reference_forget
        from diagnostics.models import LabTest, LabUnit, ReferenceRange
        from hospitals.demo import demo_loader_register

        demo_loader_register(demo_ai_model_load)  # before the images, so that it reads the demo CT
        demo_loader_register(demo_images_load)
        demo_loader_register(demo_labs_load)
        # An admin's edit of the lab reference tables applies in this process at once (in others within
        # labs.REFERENCE_TTL_SECONDS).
        for model in (LabTest, LabUnit, ReferenceRange):
            post_save.connect(reference_forget, sender=model, dispatch_uid=f"labs.forget.{model.__name__}.save")
            post_delete.connect(reference_forget, sender=model, dispatch_uid=f"labs.forget.{model.__name__}.delete")
