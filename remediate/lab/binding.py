"""PowerShell's parameter binding, as much of it as the lab's cmdlets need.

A cmdlet declares its parameters (``Param``); ``bind`` matches the names of a CommandCall
case-insensitively, by unique prefix or alias like PowerShell, binds positional values,
converts each value to the declared type and raises ``CmdletError`` with PowerShell's
messages and error ids (NamedParameterNotFound, AmbiguousParameter, ParameterAlreadyBound,
CannotConvertArgumentNoMessage, ...) when that fails. Common parameters (-Verbose,
-ErrorAction, ...) and, for cmdlets that change things, -WhatIf and -Confirm are added here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from remediate.lab.api import CmdletError, CommandCall, LabCredential

BINDING_EXCEPTION = "System.Management.Automation.ParameterBindingException"
VALIDATION_EXCEPTION = "System.Management.Automation.ParameterBindingValidationException"


class Kind(enum.Enum):
    STRING = "System.String"
    STRINGS = "System.String[]"
    BOOL = "System.Boolean"
    INT = "System.Int32"
    SWITCH = "System.Management.Automation.SwitchParameter"
    ENUM = "enum"
    ENUMS = "enum[]"
    CREDENTIAL = "System.Management.Automation.PSCredential"
    ANY = "System.Object"


@dataclass(frozen=True)
class Param:
    """``convert`` turns each string of a STRING/STRINGS value into its canonical form or
    raises ValueError with the .NET conversion error text; ``type_name`` names that type."""

    name: str
    kind: Kind
    type_name: str = ""
    choices: tuple[str, ...] = ()
    nullable: bool = False
    position: int | None = None
    aliases: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    convert: Callable[[str], str] | None = None
    numbers: tuple[tuple[int, str], ...] = ()  # enum values also given by number

    @property
    def net_type(self) -> str:
        return self.type_name or self.kind.value


_ACTION_PREFERENCE = (
    "SilentlyContinue",
    "Stop",
    "Continue",
    "Inquire",
    "Ignore",
    "Suspend",
    "Break",
)
_PREFERENCE_TYPE = "System.Management.Automation.ActionPreference"
COMMON = (
    Param("Verbose", Kind.SWITCH, aliases=("vb",)),
    Param("Debug", Kind.SWITCH, aliases=("db",)),
    Param("ErrorAction", Kind.ENUM, _PREFERENCE_TYPE, _ACTION_PREFERENCE, aliases=("ea",)),
    Param("WarningAction", Kind.ENUM, _PREFERENCE_TYPE, _ACTION_PREFERENCE, aliases=("wa",)),
    Param("InformationAction", Kind.ENUM, _PREFERENCE_TYPE, _ACTION_PREFERENCE, aliases=("infa",)),
    Param("ErrorVariable", Kind.STRING, aliases=("ev",)),
    Param("WarningVariable", Kind.STRING, aliases=("wv",)),
    Param("InformationVariable", Kind.STRING, aliases=("iv",)),
    Param("OutVariable", Kind.STRING, aliases=("ov",)),
    Param("OutBuffer", Kind.INT, aliases=("ob",), minimum=0),
    Param("PipelineVariable", Kind.STRING, aliases=("pv",)),
)
RISK = (
    Param("WhatIf", Kind.SWITCH, aliases=("wi",)),
    Param("Confirm", Kind.SWITCH, aliases=("cf",)),
)


@dataclass(frozen=True)
class Signature:
    """A cmdlet's name and its own parameters; ``changes`` adds -WhatIf and -Confirm."""

    name: str
    params: tuple[Param, ...]
    changes: bool = False

    @property
    def all_params(self) -> tuple[Param, ...]:
        return self.params + COMMON + (RISK if self.changes else ())


def bind(signature: Signature, call: CommandCall) -> dict[str, Any]:
    """Bound values by canonical parameter name (only the parameters given)."""
    bound: dict[str, Any] = {}
    positional = sorted(
        (p for p in signature.params if p.position is not None), key=lambda p: p.position or 0
    )
    for name, value in call.parameters:
        if name is None:
            param = next((p for p in positional if p.name not in bound), None)
            if param is None:
                raise _binding_error(
                    signature,
                    f"A positional parameter cannot be found that accepts argument "
                    f"'{_display(value)}'.",
                    "PositionalParameterNotFound",
                    category="InvalidArgument",
                )
        else:
            param = resolve(signature, name)
        if param.name in bound:
            raise _binding_error(
                signature,
                f"Cannot bind parameter because parameter '{param.name}' is specified more "
                "than once. To provide multiple values to parameters that can accept multiple "
                'values, use the array syntax. For example, "-parameter value1,value2,value3".',
                "ParameterAlreadyBound",
                category="InvalidArgument",
            )
        bound[param.name] = convert(signature, param, value)
    return bound


def resolve(signature: Signature, name: str) -> Param:
    """The parameter ``name`` designates: exact name or alias, else a unique prefix."""
    wanted = name.lstrip("-").lower()
    params = signature.all_params
    for param in params:
        if wanted == param.name.lower() or wanted in (a.lower() for a in param.aliases):
            return param
    matches = [p for p in params if p.name.lower().startswith(wanted)] if wanted else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        listed = " ".join(f"-{p.name}" for p in matches)
        raise _binding_error(
            signature,
            f"Parameter cannot be processed because the parameter name '{name}' is ambiguous. "
            f"Possible matches include: {listed}.",
            "AmbiguousParameter",
            category="InvalidArgument",
        )
    raise _binding_error(
        signature,
        f"A parameter cannot be found that matches parameter name '{name}'.",
        "NamedParameterNotFound",
        category="InvalidArgument",
    )


def convert(signature: Signature, param: Param, value: Any) -> Any:
    """``value`` as the parameter's type, or PowerShell's binding error."""
    if param.kind is Kind.SWITCH:
        if value is None or isinstance(value, bool | int):
            return True if value is None else bool(value)
        raise _cannot_convert(signature, param, value, "Only switch values are allowed.")
    if value is None:
        if param.nullable or param.kind is Kind.ANY:
            return [] if param.kind in (Kind.STRINGS, Kind.ENUMS) else None
        raise _binding_error(
            signature,
            f"Cannot validate argument on parameter '{param.name}'. The argument is null or "
            "empty. Provide an argument that is not null or empty, and then try the command "
            "again.",
            "ParameterArgumentValidationError",
            category="InvalidData",
            exception=VALIDATION_EXCEPTION,
        )
    converter = _CONVERTERS[param.kind]
    return converter(signature, param, value)


def _to_bool(signature: Signature, param: Param, value: Any) -> bool:
    if isinstance(value, bool | int):
        return bool(value)
    raise _binding_error(
        signature,
        f"Cannot process argument transformation on parameter '{param.name}'. Cannot convert "
        f'value "{_net_type_of(value)}" to type "System.Boolean". Boolean parameters accept '
        "only Boolean values and numbers, such as $True, $False, 1 or 0.",
        "ParameterArgumentTransformationError",
        category="InvalidData",
    )


def _to_int(signature: Signature, param: Param, value: Any) -> int:
    if isinstance(value, bool | int):
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        number = int(value.strip())
    else:
        raise _cannot_convert(signature, param, value, "Input string was not in a correct format.")
    if param.minimum is not None and number < param.minimum:
        raise _out_of_range(signature, param, number, "less than the minimum", param.minimum)
    if param.maximum is not None and number > param.maximum:
        raise _out_of_range(signature, param, number, "greater than the maximum", param.maximum)
    return number


def _to_enum(signature: Signature, param: Param, value: Any) -> str:
    text = str(value).strip()
    for number, choice in param.numbers:
        if not isinstance(value, bool) and text == str(number):
            return choice
    if isinstance(value, str):
        for choice in param.choices:
            if choice.lower() == value.strip().lower():
                return choice
    names = ", ".join(param.choices)
    raise _cannot_convert(
        signature,
        param,
        value,
        f"Unable to match the identifier name {_display(value)} to a valid enumerator name. "
        f"Specify one of the following enumerator names and try again:\n{names}",
    )


def _to_enums(signature: Signature, param: Param, value: Any) -> list[str]:
    return [_to_enum(signature, param, v) for v in _as_list(value)]


def _to_string(signature: Signature, param: Param, value: Any) -> str:
    if isinstance(value, list | dict | LabCredential):
        raise _binding_error(
            signature,
            f"Cannot convert '{_net_type_of(value)}' to the type '{param.net_type}' required "
            f"by parameter '{param.name}'. Specified method is not supported.",
            "CannotConvertArgument",
            category="InvalidArgument",
        )
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if param.convert is None:
        return text
    try:
        return param.convert(text)
    except ValueError as exc:
        raise _cannot_convert(signature, param, value, str(exc)) from None


def _to_strings(signature: Signature, param: Param, value: Any) -> list[str]:
    single = Param(param.name, Kind.STRING, param.type_name, convert=param.convert)
    return [_to_string(signature, single, v) for v in _as_list(value)]


def _to_credential(signature: Signature, param: Param, value: Any) -> LabCredential:
    if isinstance(value, LabCredential):
        return value
    raise _binding_error(
        signature,
        f"Cannot process argument transformation on parameter '{param.name}'. A command that "
        "prompts the user failed because the host program or the command type does not "
        "support user interaction. The host was attempting to request confirmation with the "
        "following message: Enter your credentials.",
        "ParameterArgumentTransformationError",
        category="InvalidData",
    )


def _to_any(signature: Signature, param: Param, value: Any) -> Any:
    return value


_CONVERTERS: dict[Kind, Callable[[Signature, Param, Any], Any]] = {
    Kind.BOOL: _to_bool,
    Kind.INT: _to_int,
    Kind.ENUM: _to_enum,
    Kind.ENUMS: _to_enums,
    Kind.STRING: _to_string,
    Kind.STRINGS: _to_strings,
    Kind.CREDENTIAL: _to_credential,
    Kind.ANY: _to_any,
}


def _as_list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else [value]


def _display(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "System.Object[]"
    if isinstance(value, LabCredential):
        return "System.Management.Automation.PSCredential"  # never the password
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _net_type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "System.Boolean"
    if isinstance(value, int):
        return "System.Int32"
    if isinstance(value, str):
        return "System.String"
    if isinstance(value, list | tuple):
        return "System.Object[]"
    if isinstance(value, LabCredential):
        return "System.Management.Automation.PSCredential"
    if isinstance(value, dict):
        return "System.Collections.Hashtable"
    return "System.Object"


def _cannot_convert(signature: Signature, param: Param, value: Any, reason: str) -> CmdletError:
    return _binding_error(
        signature,
        f"Cannot bind parameter '{param.name}'. Cannot convert value \"{_display(value)}\" to "
        f'type "{param.net_type}". Error: "{reason}"',
        "CannotConvertArgumentNoMessage",
        category="InvalidArgument",
    )


def _out_of_range(
    signature: Signature, param: Param, number: int, relation: str, limit: int
) -> CmdletError:
    supply = "greater than or equal to" if "less" in relation else "less than or equal to"
    return _binding_error(
        signature,
        f"Cannot validate argument on parameter '{param.name}'. The {number} argument is "
        f"{relation} allowed range of {limit}. Supply an argument that is {supply} {limit} "
        "and then try the command again.",
        "ParameterArgumentValidationError",
        category="InvalidData",
        exception=VALIDATION_EXCEPTION,
    )


def _binding_error(
    signature: Signature,
    message: str,
    error_id: str,
    *,
    category: str,
    exception: str = BINDING_EXCEPTION,
) -> CmdletError:
    return CmdletError(
        message=message,
        error_id=f"{error_id},{signature.name}",
        category=category,
        exception_type=exception,
    )


def missing_mandatory(signature: Signature, names: list[str]) -> CmdletError:
    return _binding_error(
        signature,
        "Cannot process command because of one or more missing mandatory parameters: "
        f"{' '.join(names)}.",
        "MissingMandatoryParameter",
        category="InvalidArgument",
    )


def ambiguous_parameter_set(signature: Signature) -> CmdletError:
    return _binding_error(
        signature,
        "Parameter set cannot be resolved using the specified named parameters.",
        "AmbiguousParameterSet",
        category="InvalidArgument",
    )
