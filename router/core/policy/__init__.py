"""The recording policy: which rule decides, for one participant or meeting event, whether to
start or stop a recording, and why. Pure: the worker hands in facts and the event's own time.

    config = PolicyConfig.model_validate(raw)        # errors carry the exact key path
    policy = Policy.from_config(config)
    if policy.applies_to(trigger):
        evaluation = policy.evaluate(PolicyInput(...))

Modules: `model` (the configuration), `language` and `compiler` (the `when` language),
`timewindow`, `templates`, `judge` (one condition tree against facts), `evaluate` (the policy),
`explain` (the text `router explain` prints).
"""

from router.core.policy.evaluate import (
    Evaluation,
    MeetingFacts,
    ParticipantFacts,
    Policy,
    PolicyInput,
    RuleTrace,
    policy_version,
)
from router.core.policy.explain import RuleJudgement, explanation, format_evaluation
from router.core.policy.language import FIELDS, OPERATORS
from router.core.policy.model import TRIGGERS, PolicyConfig, Rule
from router.core.policy.templates import PLACEHOLDERS

__all__ = [
    "FIELDS",
    "OPERATORS",
    "PLACEHOLDERS",
    "TRIGGERS",
    "Evaluation",
    "MeetingFacts",
    "ParticipantFacts",
    "Policy",
    "PolicyConfig",
    "PolicyInput",
    "Rule",
    "RuleJudgement",
    "RuleTrace",
    "explanation",
    "format_evaluation",
    "policy_version",
]
