"""Django's JSON serialization with datetimes and times to the microsecond, for backups.

Django's own JSON encoder cuts them to milliseconds (as ECMAScript dates are), which a restore would turn
into other values: the audit trail's hash chain, which covers each entry's time, would no longer verify.
Registered as the "exactjson" format (settings.SERIALIZATION_MODULES); loads with Django's JSON reader.
"""

import datetime
from typing import Any

from django.core.serializers.json import Deserializer, DjangoJSONEncoder
from django.core.serializers.json import Serializer as JsonSerializer

__all__ = ["Deserializer", "Serializer"]


class ExactEncoder(DjangoJSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, datetime.datetime | datetime.time):
            return o.isoformat()
        return super().default(o)


class Serializer(JsonSerializer):
    def _init_options(self) -> None:
        self.options.setdefault("cls", ExactEncoder)
        super()._init_options()  # type: ignore[misc]  # not in django-stubs
