"""Russian identifiers: SNILS (individual insurance account number) and the OMS policy number."""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

_NOT_DIGITS = re.compile(r"[\s-]")


def snils_digits(value: str) -> str:
    """'112-233-445 95' -> '11223344595' (spaces and hyphens are how people write it)."""
    return _NOT_DIGITS.sub("", value or "")


def snils_checksum(number: str) -> int:
    """The control number of the first nine digits, by the Pension Fund's rule."""
    total = sum(int(digit) * weight for digit, weight in zip(number[:9], range(9, 0, -1), strict=True))
    if total < 100:
        return total
    if total in (100, 101):
        return 0
    rest = total % 101
    return 0 if rest == 100 else rest


def validate_snils(value: str) -> None:
    digits = snils_digits(value)
    if not re.fullmatch(r"\d{11}", digits):
        raise ValidationError(_("SNILS has 11 digits, written like 112-233-445 95."), code="snils_format")
    # Numbers up to 001-001-998 were issued before the control number existed.
    if int(digits[:9]) > 1001998 and snils_checksum(digits) != int(digits[9:]):
        raise ValidationError(
            _("This SNILS fails its check digits: compare it with the patient's card, digit by digit."),
            code="snils_checksum",
        )


def format_snils(digits: str) -> str:
    return f"{digits[0:3]}-{digits[3:6]}-{digits[6:9]} {digits[9:11]}" if len(digits) == 11 else digits


def validate_oms_policy(value: str) -> None:
    if not re.fullmatch(r"\d{16}", value or ""):
        raise ValidationError(_("The OMS policy number has 16 digits."), code="oms_format")


def normalize_name(*parts: str) -> str:
    """Case- and ё/е-insensitive form of a name, for search and duplicate checks."""
    return " ".join(" ".join(parts).lower().replace("ё", "е").split())
