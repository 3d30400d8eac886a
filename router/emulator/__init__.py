"""A local stand-in for RealtimeKit: its recording and participant REST API, its signed
webhooks and its well-known public key, plus a control API to steer it from tests.

RTK API (at the root and under `/client/v4`, bearer token checked, RTK envelopes), under
`/accounts/{account_id}/realtime/kit/{app_id}`:

    POST /recordings                                  start (201; 409 if one is active)
    GET  /recordings/{id}                             one recording
    PUT  /recordings/{id}          {"action": ...}    stop | pause | resume
    GET  /recordings/active-recording/{meeting_id}    200, or 404 when none is active
    GET  /meetings/{meeting_id}/participants          ?page_no=1&per_page=20 (at most 100)
    GET  /meetings/{meeting_id}/active-session        the live session; 404 when none
    GET  /.well-known/webhooks.json                   {"success":true,"data":{"publicKey":PEM}}

Control API (no auth, plain JSON):

    GET    /_emulator                                 ids, webhook id and URL
    GET    /_emulator/calls                           API calls answered: method, path, call,
    DELETE /_emulator/calls                             status, at (monotonic), meeting_id
    POST   /_emulator/faults    {"status": 500|429|4xx, "count": N, "calls": [...]?,
                                 "meetings": [meeting ids]?,
                                 "retry_after": S?, "message": "..."?,
                                 "probability": P?, "seed": S?}          fail the next N calls
                                (with "probability" < 1, each matching call fails with that
                                chance and N counts the failed ones; "seed" repeats the draws)
    GET    /_emulator/faults, DELETE /_emulator/faults
    PUT    /_emulator/latency   {"ms": 250, "calls": [...]?}             delay API answers
    GET    /_emulator/meetings                        meetings, sessions, peers, participants
    POST   /_emulator/meetings/{meeting_id}/participants
                                {"participants": [{"custom_participant_id", "preset_name",
                                                   "name"?}]}            add or update
    POST   /_emulator/meetings/play                   a scripted meeting (see MeetingScript)
    GET    /_emulator/recordings[?meeting_id=...]     recordings with params and history
    POST   /_emulator/recordings/{id}/status  {"status": "ERRORED"}   force it, send webhook
    GET    /_emulator/webhooks                        deliveries: event, status, attempts
    POST   /_emulator/webhooks/drops  {"events": [...]?, "meetings": [...]?,
                                       "probability": P?, "count": N?, "seed": S?}
                                lose matching deliveries for good (never sent; logged with
                                the error "dropped"); also `drops:` in a seed file
    GET    /_emulator/webhooks/drops, DELETE /_emulator/webhooks/drops
    PUT    /_emulator/webhooks/url  {"url": "..."|null}
    POST   /_emulator/reset                           forget everything but key and seed

Call names (for `calls` filters and the log): start_recording, get_recording,
active_recording, stop_recording, pause_recording, resume_recording, participants,
active_session.
"""

from router.emulator.app import RunningEmulator, create_emulator_app, running_emulator
from router.emulator.config import EmulatorConfig, MeetingScript, ScriptStep, Seed, load_seed
from router.emulator.state import EMULATOR_STATE, EmulatorState

__all__ = [
    "EMULATOR_STATE",
    "EmulatorConfig",
    "EmulatorState",
    "MeetingScript",
    "RunningEmulator",
    "ScriptStep",
    "Seed",
    "create_emulator_app",
    "load_seed",
    "running_emulator",
]
