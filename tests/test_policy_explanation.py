"""The `explanation` every decision carries (SPEC 9.1): the rules evaluated, in policy order,
up to and including the deciding one, each with the judgement `router explain` prints."""

from __future__ import annotations

from typing import Any

import pytest

from router.core.policy import RuleJudgement, explanation, format_evaluation
from tests.plugins.policy import LEFT, make_input, policy_of, rule

BIG = rule("big", when={"session.participants": {"gte": 2}})
BOARD = rule("board", when={"meeting.title": {"regex": "^Board"}, "session.participants": 1})
QUIET = rule("quiet", action="skip", when={"meeting.title": {"contains": "test"}})
LEAVE = rule("leave", on=LEFT, action="stop_recording")
EITHER = rule(
    "either",
    when={"any": [{"meeting.title": "x"}, {"session.participants": {"gt": 5}}]},
)
NOT_SYNC = rule("not-sync", when={"not": {"meeting.title": {"regex": "sync"}}})
EVERYONE = rule("everyone")

BIG_NO = RuleJudgement("big", False, "session.participants 1 >= 2: no")
BOARD_NO = RuleJudgement("board", False, "meeting.title 'Weekly sync' matches regex '^Board': no")


@pytest.mark.parametrize(
    ("rules", "changes", "expected"),
    [
        ((BIG, BOARD), {}, [BIG_NO, BOARD_NO]),
        (
            (BIG, LEAVE, BOARD, EVERYONE),
            {"title": "Board call"},
            [
                BIG_NO,
                RuleJudgement(
                    "board",
                    True,
                    "meeting.title 'Board call' matches regex '^Board': yes; "
                    "session.participants 1 == 1: yes",
                ),
            ],
        ),
        (
            (QUIET, EVERYONE),
            {"title": "a test"},
            [RuleJudgement("quiet", True, "meeting.title 'a test' contains 'test': yes")],
        ),
        (
            (BIG, EVERYONE, BOARD),
            {},
            [BIG_NO, RuleJudgement("everyone", True, "no conditions: matches every event")],
        ),
        (
            (EITHER, NOT_SYNC),
            {},
            [
                RuleJudgement("either", False, "any: 0 of 2 held: no"),
                RuleJudgement("not-sync", False, "not: nested conditions held: no"),
            ],
        ),
        ((LEAVE,), {}, []),
    ],
    ids=["no-match", "match-after-miss", "skip", "no-conditions", "nested", "not-for-trigger"],
)
def test_explanation(
    rules: tuple[dict[str, Any], ...], changes: dict[str, Any], expected: list[RuleJudgement]
) -> None:
    evaluation = policy_of(*rules).evaluate(make_input(**changes))
    judged = explanation(evaluation)
    assert list(judged) == expected
    # The same judgement `router explain` prints, one check per line there.
    text = format_evaluation(evaluation)
    for line in judged:
        for reason in line.why.split("; "):
            assert reason in text
