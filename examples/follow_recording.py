"""Follow a recording on the `rtk.recordings` topic until its file can be downloaded.

    python examples/follow_recording.py BOOTSTRAP_SERVERS ID [TIMEOUT_SECONDS] [--topic NAME]

ID is a recording id, or a meeting id (then the first recording of that meeting on the topic
is followed). The topic is read from the beginning, so a recording that finished before this
started is found too. Each status change is shown on stderr; once the recording is UPLOADED its
download URL is printed on stdout (exit 0). ERRORED exits 1, no UPLOADED in time exits 3.

Only aiokafka is needed. It reads without a consumer group and commits nothing, as suits a tool
that follows one recording; a service that handles every recording would join a group and
commit after handling each message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from aiokafka import AIOKafkaConsumer

TOPIC = "rtk.recordings"


async def follow(bootstrap_servers: str, wanted: str, timeout: float, topic: str = TOPIC) -> int:
    """Print the download URL of the recording `wanted` names; the exit status."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    following = None  # the recording id, once known
    try:
        async with asyncio.timeout(timeout):
            async for message in consumer:
                # Every message is keyed by its meeting and says what it is in `ce_type`.
                if dict(message.headers).get("ce_type") != b"recording.status_changed":
                    continue
                record = json.loads(message.value)
                if following is None and wanted in (record["recording_id"], record["meeting_id"]):
                    following = record["recording_id"]
                if record["recording_id"] != following:
                    continue
                print(
                    f"{following}: {record['previous_status']} -> {record['status']}",
                    file=sys.stderr,
                )
                if record["status"] == "ERRORED":
                    return 1
                if record["status"] == "UPLOADED":
                    if record["download_url"] is None:
                        print("uploaded to the recording's own storage only", file=sys.stderr)
                    else:
                        print(f"  until {record['download_url_expiry']}", file=sys.stderr)
                        print(record["download_url"])
                    return 0
    except TimeoutError:
        print(f"no UPLOADED for {wanted} within {timeout:g} s", file=sys.stderr)
        return 3
    finally:
        await consumer.stop()
    return 3  # not reached: the topic never ends


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bootstrap_servers", help='e.g. "localhost:9092"')
    parser.add_argument("id", help="a recording id, or a meeting id")
    parser.add_argument("timeout", nargs="?", type=float, default=600.0, help="seconds")
    parser.add_argument("--topic", default=TOPIC, help=f"the recordings topic ({TOPIC})")
    args = parser.parse_args()
    return asyncio.run(follow(args.bootstrap_servers, args.id, args.timeout, args.topic))


if __name__ == "__main__":
    sys.exit(main())
