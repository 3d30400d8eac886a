"""The `policy:` section of the configuration as pydantic models, validated down to the key.

`when` and `recording` are free-form in the schema and checked by our own walkers, because
pydantic would report a bad operator deep inside a union as a pile of alternatives with tags in
their locations. The walkers raise a `ValidationError` whose locations are relative to the
field; pydantic prefixes them with the rule's path, so every error points at the exact YAML key
that causes it (`rules.0.when.meeting.title`), which `check-config` turns into a line number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from router.core.policy.compiler import compile_when
from router.core.policy.language import Problem
from router.core.policy.templates import template_problems
from router.core.terms import Mode, RuleAction

Trigger = Literal["meeting.participantJoined", "meeting.participantLeft", "meeting.started"]

TRIGGERS: tuple[str, ...] = get_args(Trigger)
ALLOW_MULTIPLE = "allow_multiple_recordings"
# The router sets the meeting of a Start Recording call itself; a rule must not redirect it.
_RESERVED_RECORDING_KEYS = ("meeting_id",)


class Rule(BaseModel):
    """One rule: on which event, under which conditions, what to do."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    on: Trigger = "meeting.participantJoined"
    when: dict[str, Any] | None = None
    action: RuleAction
    recording: dict[str, Any] = Field(default_factory=dict)

    @field_validator("when", mode="before")
    @classmethod
    def _check_when(cls, value: Any) -> Any:
        _, problems = compile_when(value)
        if problems:
            raise _error(problems, "when")
        return value

    @field_validator("recording", mode="before")
    @classmethod
    def _check_recording(cls, value: Any) -> Any:
        if value is None:
            return {}  # `recording:` with nothing under it
        if not isinstance(value, dict):
            return value  # pydantic reports the type
        problems = template_problems(value)
        for key in _RESERVED_RECORDING_KEYS:
            if key in value:
                problems.append(Problem((key,), f"{key} is set by the router", value[key]))
        flag = value.get(ALLOW_MULTIPLE)
        if ALLOW_MULTIPLE in value and not isinstance(flag, bool):
            problems.append(Problem((ALLOW_MULTIPLE,), "expected true or false", flag))
        if problems:
            raise _error(problems, "recording")
        return value

    @model_validator(mode="after")
    def _recording_only_when_starting(self) -> Rule:
        if self.recording and self.action != "start_recording":
            message = f"recording options apply to start_recording, not {self.action}"
            raise _error([Problem(("recording",), message, self.recording)], "Rule")
        return self


class PolicyConfig(BaseModel):
    """`policy:`: the mode and the ordered rules (the first rule that matches decides)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = "enforce"
    rules: list[Rule] = Field(default_factory=list)

    @field_validator("rules", mode="before")
    @classmethod
    def _no_rules(cls, value: Any) -> Any:
        return [] if value is None else value  # `rules:` with nothing under it

    @model_validator(mode="wrap")
    @classmethod
    def _unique_names(
        cls, data: Any, handler: ModelWrapValidatorHandler[PolicyConfig]
    ) -> PolicyConfig:
        # Checked around the normal validation, not after it, so that a duplicate name is
        # reported together with every other problem of the file rather than on the next run.
        duplicates = _duplicate_names(data)
        if not duplicates:
            return handler(data)
        earlier: list[ErrorDetails] = []
        try:
            handler(data)
        except ValidationError as exc:
            earlier = exc.errors()
        raise _error(duplicates, "PolicyConfig", earlier)


def _duplicate_names(data: Any) -> list[Problem]:
    rules = data.get("rules") if isinstance(data, Mapping) else None
    if not isinstance(rules, list):
        return []
    first: dict[str, int] = {}
    problems = []
    for index, rule in enumerate(rules):
        name = rule.get("name") if isinstance(rule, Mapping) else getattr(rule, "name", None)
        if not isinstance(name, str):
            continue
        if name in first:
            message = f"duplicate rule name '{name}' (first at rules[{first[name]}])"
            problems.append(Problem(("rules", index, "name"), message, name))
        else:
            first[name] = index
    return problems


def _error(
    problems: Sequence[Problem], title: str, earlier: Sequence[ErrorDetails] = ()
) -> ValidationError:
    """The problems, after any `earlier` errors, as one `ValidationError` to raise.

    Raised inside a validator, its locations are taken as relative to the value validated.
    The message travels in the context so that braces in it are never read as placeholders.
    """
    errors = [_again(error) for error in earlier]
    errors += [
        InitErrorDetails(
            type=PydanticCustomError("policy", "{detail}", {"detail": problem.message}),
            loc=problem.loc,
            input=problem.value,
        )
        for problem in problems
    ]
    return ValidationError.from_exception_data(title, errors)


def _again(error: ErrorDetails) -> InitErrorDetails:
    """`error`, as reported by `ValidationError.errors()`, ready to be raised once more."""
    if error["type"] == "policy":
        kind = PydanticCustomError("policy", "{detail}", {"detail": error["msg"]})
        return InitErrorDetails(type=kind, loc=error["loc"], input=error["input"])
    again = InitErrorDetails(type=error["type"], loc=error["loc"], input=error["input"])
    if "ctx" in error:
        again["ctx"] = error["ctx"]
    return again
