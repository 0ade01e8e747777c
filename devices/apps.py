from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = _("Devices")

    def ready(self) -> None:
        from devices.demo import demo_devices_load
        from hospitals.demo import demo_loader_register

        # `load_demo` adds the demo ultrasound unit of Tula without hospitals importing this app.
        demo_loader_register(demo_devices_load)
