"""Destinations: E.164 digits, checked against ``phonenumbers``' numbering plans.

A number is read as international whatever its form (E.164 is the only form
herald accepts, and SMPP carries TON=1 numbers without the ``+``), reduced to
its digits, and judged once per distinct number (the verdict is cached).

Then come the checks whose data change while herald runs
(:class:`DestinationRules`): the operator's numbering plan, which when loaded
decides what is assigned instead of ``phonenumbers`` (:mod:`._networks`), and
the route table. Both refusals happen here, at acceptance, rather than as a
failed message later.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import phonenumbers
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    NumberParseException,
    PhoneMetadata,
    PhoneNumber,
    ValidationResult,
)

from herald.intake._errors import IntakeError, InvalidDestination
from herald.intake._networks import EMPTY_INDEX, MAX_E164_DIGITS, NumberIndex
from herald.intake._policy import DEFAULT_POLICY, IntakePolicy

__all__ = [
    "MAX_NUMBER_INPUT_LENGTH",
    "NO_RULES",
    "NUMBER_CACHE_SIZE",
    "DestinationRules",
    "RouteCheck",
    "country_of",
    "e164",
    "normalize_destination",
    "strip_formatting",
]

#: Numbers whose verdict is remembered (about 200 octets each).
NUMBER_CACHE_SIZE: Final = 16_384
#: Raw number input looked at, formatting included (``"+1 (415) 555-2671"``);
#: anything longer is refused before ``phonenumbers`` parses it.
MAX_NUMBER_INPUT_LENGTH: Final = 32

_E164_DIGITS = re.compile(r"\+?[0-9]{1,15}")
_DIGITS = re.compile(r"\+?[0-9]+")
_NUMBER_FORMATTING = str.maketrans("", "", " -.()/")


def strip_formatting(value: str) -> str:
    """``value`` without the spaces, ``-``, ``.``, ``/`` and parentheses people write."""
    return value.translate(_NUMBER_FORMATTING)


_PARSE_ERRORS: Final = {
    NumberParseException.INVALID_COUNTRY_CODE: (
        "invalid_country_code", "has no valid country code",
    ),
    NumberParseException.TOO_SHORT_AFTER_IDD: ("too_short", "is too short to be a number"),
    NumberParseException.TOO_SHORT_NSN: ("too_short", "is too short to be a number"),
    NumberParseException.TOO_LONG: ("too_long", f"is longer than {MAX_E164_DIGITS} digits"),
}
_POSSIBLE_ERRORS: Final = {
    ValidationResult.INVALID_COUNTRY_CODE: ("invalid_country_code", "has no valid country code"),
    ValidationResult.TOO_SHORT: ("too_short", "is too short for its country"),
    ValidationResult.TOO_LONG: ("too_long", "is too long for its country"),
    ValidationResult.INVALID_LENGTH: ("not_possible", "has a length its country never uses"),
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: (
        "not_possible", "is only dialable locally, not an international number",
    ),
}


def e164(
    value: str, field: str, error: type[IntakeError], require_valid: bool
) -> str:
    """E.164 digits (no ``+``) of ``value``, or ``error`` naming why not."""
    if not isinstance(value, str) or not value:
        raise error(field, "is required", "required")
    if len(value) > MAX_NUMBER_INPUT_LENGTH:
        raise error(field, f"is longer than {MAX_NUMBER_INPUT_LENGTH} characters", "too_long")
    compact = value.translate(_NUMBER_FORMATTING)
    if not _E164_DIGITS.fullmatch(compact):
        if _DIGITS.fullmatch(compact):
            raise error(field, f"is longer than {MAX_E164_DIGITS} digits", "too_long")
        raise error(field, "is not a phone number (E.164: '+' and up to 15 digits)", "not_a_number")
    verdict = _judge_number(compact.lstrip("+"), require_valid)
    if isinstance(verdict, tuple):
        raise error(field, verdict[1], verdict[0])
    return verdict


@functools.lru_cache(maxsize=NUMBER_CACHE_SIZE)
def _judge_number(digits: str, require_valid: bool) -> str | tuple[str, str]:
    """The E.164 digits of an acceptable number, or (code, message) saying why not.

    Cached: ``phonenumbers`` takes tens of microseconds per number, and the
    same numbers come back (one-time codes, repeated campaigns). The result
    depends only on the arguments and the library's metadata.
    """
    number = _direct(digits)
    direct = number is not None
    if number is None:
        # A national (trunk) prefix may follow the country code, which the
        # parser strips ("+7 8 912..." is +7 912...): let it decide. Digits
        # without '+' are read as international too, as E.164 is the only form
        # herald accepts and SMPP carries TON=1 numbers without the '+'.
        try:
            number = phonenumbers.parse("+" + digits, None)
        except NumberParseException as exc:
            if exc.error_type == NumberParseException.NOT_A_NUMBER:
                # Only digits reach the parser: "not a number" means too few of them.
                return "too_short", "is too short to be a number"
            return _PARSE_ERRORS.get(exc.error_type, ("not_a_number", "is not a phone number"))
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != ValidationResult.IS_POSSIBLE:
        return _POSSIBLE_ERRORS.get(reason, ("not_possible", "is not a possible number"))
    if require_valid and not _is_valid(number):
        return "not_valid", "is not an assigned number in its country's numbering plan"
    if direct:  # built from these very digits: their E.164 form is themselves
        return digits
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


#: A number type's check: its possible national lengths (``None``: any) and its
#: national number pattern's ``fullmatch``.
_Check = tuple[frozenset[int] | None, Callable[[str], object]]

#: The number types whose match makes a number valid, in phonenumbers' order
#: (``_number_type_helper``); mobile is added by :func:`_plan` as the library does.
_TYPES: Final = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number",
                 "pager", "uan", "voicemail", "fixed_line")


def _check(desc: object) -> _Check | None:
    pattern = getattr(desc, "national_number_pattern", None)
    if desc is None or not pattern:
        return None  # the library's _match_national_number: never matches
    lengths = getattr(desc, "possible_length", ())
    return (frozenset(lengths) if lengths else None), re.compile(pattern).fullmatch


#: :func:`_plan` of each region met so far (metadata objects are not hashable).
_plans: dict[str, tuple[_Check | None, tuple[_Check, ...]]] = {}


def _plan(region: str, metadata: PhoneMetadata) -> tuple[_Check | None, tuple[_Check, ...]]:
    """A region's validity check, compiled once: its general description and the
    number types any of which makes a number valid (mobile first: SMS goes there).

    ``_number_type_helper(n, metadata) != UNKNOWN`` walks the same descriptions
    one by one, looking each pattern up in the ``re`` cache; valid means the
    general description matches and one type does. The library checks mobile
    only when its pattern differs from fixed line's, and so does this.
    """
    plan = _plans.get(region)
    if plan is None:
        kinds = [_check(getattr(metadata, name, None)) for name in _TYPES]
        if not metadata.same_mobile_and_fixed_line_pattern:
            kinds.insert(0, _check(metadata.mobile))
        plan = _check(metadata.general_desc), tuple(k for k in kinds if k is not None)
        _plans[region] = plan
    return plan


def _valid_in(national: str, region: str, metadata: PhoneMetadata) -> bool:
    """phonenumbers' ``_number_type_helper(national, metadata) != UNKNOWN``, compiled
    (:func:`_plan`; ``tests/test_intake.py`` compares them on every region's numbers)."""
    general, kinds = _plan(region, metadata)
    size = len(national)
    if general is None or (general[0] is not None and size not in general[0]):
        return False
    if not general[1](national):
        return False
    return any((lengths is None or size in lengths) and match(national)
               for lengths, match in kinds)


def _is_valid(number: PhoneNumber) -> bool:
    """``phonenumbers.is_valid_number``, with the numbering plans compiled once
    (:func:`_valid_in`) and one plan match instead of two for country codes that
    several regions share (+1, +7, +44, ...).

    The library finds the region by matching the number against each region's
    plan, then matches it again against the region it found. When the region
    was found by that match (it has no leading-digits rule) the second match
    can only agree, so it is skipped; otherwise this does what the library
    does. ``tests/test_intake.py`` compares the verdicts on every region's
    example numbers and near misses.
    """
    regions = COUNTRY_CODE_TO_REGION_CODE.get(number.country_code or 0, ())
    if not regions or regions[0] == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
        return bool(phonenumbers.is_valid_number(number))
    national = phonenumbers.national_significant_number(number)
    if len(regions) == 1:
        metadata = PhoneMetadata.metadata_for_region(regions[0])
        return metadata is not None and _valid_in(national, regions[0], metadata)
    for region in regions:
        metadata = PhoneMetadata.metadata_for_region(region)
        if metadata is None:
            continue
        if metadata.leading_digits is not None:
            if re.match(metadata.leading_digits, national):
                valid = _valid_in(national, region, metadata)
                if valid:
                    _found(f"{number.country_code}{national}", region)
                return valid
        elif _valid_in(national, region, metadata):
            _found(f"{number.country_code}{national}", region)
            return True
    return False


#: Regions :func:`_is_valid` found for numbers of shared country codes, by
#: E.164 digits: the very match :func:`country_of` would make again (the
#: library's region lookup walks the regions the same way), kept so a
#: destination checked against an account's country list costs no second one.
_shared_regions: dict[str, str] = {}


def _found(digits: str, region: str) -> None:
    if len(_shared_regions) >= NUMBER_CACHE_SIZE:
        _shared_regions.clear()  # rare, and only a shortcut is lost
    _shared_regions[digits] = region


def _direct(digits: str) -> PhoneNumber | None:
    """``digits`` as the parser would read ``+digits``, built without parsing, or
    ``None`` where the parser would do more than split off the country code.

    This halves the cost of a number (the parser normalises, tries formats
    and extensions first). It mirrors ``phonenumbers.parse`` exactly for
    E.164 digits: the country code is the first 1-3 digits that name one
    (ITU-T E.164 codes are prefix-free); the rest is the national
    significant number, leading zeros recorded as the parser records them.
    Anything else (no such code, too short, a national prefix the parser
    might strip) goes to the parser; ``tests/test_intake.py`` compares both
    on every region's example numbers.
    """
    if digits[0] == "0":
        return None
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[size:]
    if len(national) < 2:
        return None
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(
        code, phonenumbers.region_code_for_country_code(code)
    )
    if metadata is None:
        return None
    prefix = metadata.national_prefix_for_parsing
    if prefix and re.match(prefix, national):
        return None
    number = PhoneNumber(country_code=code, national_number=int(national))
    if national[0] == "0":  # as phonenumbers' _set_italian_leading_zeros_for_phone_number
        number.italian_leading_zero = True
        zeros = len(national) - len(national.lstrip("0"))
        zeros = min(zeros, len(national) - 1)  # an all-zero number keeps its last zero
        if zeros != 1:
            number.number_of_leading_zeros = zeros
    return number


#: Whether some route serves these E.164 digits.
RouteCheck = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class DestinationRules:
    """What a destination is checked against beyond its form, as it stands now.

    - ``index``: the operator's number tables. With a plan loaded, the plan
      decides whether a number is assigned (``phonenumbers`` then checks only
      that it is possible), and a number outside every plan range that is not
      ported either is refused (``unassigned``). Without a plan, the policy's
      ``require_valid_number`` applies, as ``phonenumbers`` sees it.
    - ``routable``: ``False`` for a destination no route serves (``unroutable``);
      ``None`` checks nothing.

    Immutable: whoever reloads the tables builds new rules and swaps them in.
    """

    index: NumberIndex = EMPTY_INDEX
    routable: RouteCheck | None = None


#: No tables, no route check: :func:`normalize_destination` as before tables existed.
NO_RULES: Final = DestinationRules()


def normalize_destination(
    value: str,
    *,
    field: str = "to",
    policy: IntakePolicy = DEFAULT_POLICY,
    rules: DestinationRules = NO_RULES,
) -> str:
    """The destination as E.164 digits without ``+`` (``"+1 415-555-2671"`` -> ``"14155552671"``).

    Spaces, ``-``, ``.``, ``/`` and parentheses are ignored; a leading ``+`` is
    optional (digits are always read as an international number). A national
    (trunk) prefix after the country code is dropped where ``phonenumbers``
    recognises one (``+7 8 912 345 67 89`` -> ``79123456789``). Raises
    :class:`InvalidDestination` with code ``required``, ``too_long``,
    ``not_a_number``, ``invalid_country_code``, ``too_short``, ``not_possible``
    or ``not_valid``; with ``rules``, also ``unassigned`` (no plan range covers
    it) and ``unroutable`` (no route serves it). A number of the policy's
    ``test_prefixes`` skips every numbering-plan check, not the route check.
    """
    if policy.test_prefixes and isinstance(value, str):
        compact = value.translate(_NUMBER_FORMATTING).lstrip("+")
        if compact.startswith(policy.test_prefixes) and _E164_DIGITS.fullmatch(compact):
            _check_route(compact, field, rules)
            return compact
    index = rules.index
    planned = index.plan is not None
    digits = e164(value, field, InvalidDestination, policy.require_valid_number and not planned)
    if planned and index.network_of(digits) is None:
        raise InvalidDestination(
            field, "is in no assigned number range of the operator's numbering plan", "unassigned"
        )
    _check_route(digits, field, rules)
    return digits


def _check_route(digits: str, field: str, rules: DestinationRules) -> None:
    if rules.routable is not None and not rules.routable(digits):
        raise InvalidDestination(field, "has no route: no connector serves it", "unroutable")


@functools.lru_cache(maxsize=NUMBER_CACHE_SIZE)
def country_of(digits: str) -> str | None:
    """The country (ISO 3166-1 alpha-2, as ``phonenumbers`` names regions) of
    E.164 digits, or ``None`` when no country's plan claims them (an
    unassigned country code, a test range). Cached as verdicts are: several
    countries share +1 and +7, and telling them apart takes a plan match."""
    if not _E164_DIGITS.fullmatch(digits):
        return None
    digits = digits.lstrip("+")
    for size in (1, 2, 3):  # E.164 country codes are prefix-free
        regions = COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:size]))
        if regions is not None:
            if len(regions) == 1:  # most codes: one country, no plan to match (4 us saved)
                return None if regions[0] == "001" else regions[0]
            break
    else:
        return None
    known = _shared_regions.get(digits)
    if known is not None:
        return known
    number = _direct(digits)
    if number is None:
        try:
            number = phonenumbers.parse("+" + digits, None)
        except NumberParseException:
            return None
    region = phonenumbers.region_code_for_number(number)
    if region == "001":  # a non-geographic code (+800, +882...): no country
        return None
    if region and region != phonenumbers.UNKNOWN_REGION:
        return str(region)
    # A number outside the library's ranges (a test range, a new range the
    # operator's plan admits): the main country of its country code.
    main = phonenumbers.region_code_for_country_code(number.country_code or 0)
    return str(main) if main not in (phonenumbers.UNKNOWN_REGION, "001") else None
