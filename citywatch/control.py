"""The control topic: requests to sources (sample faster for a while), from rules or operators.

Every process that runs cameras follows the topic from its end (no consumer group: each
process must see every request, and only the one running the camera acts on it). A
request for a source this process does not run is ignored; a malformed one is logged
with its reason and skipped (it is an instruction, not data to keep).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer

from citywatch.publisher import Publisher
from citywatch.topics import Topics, follow_from_end
from ingest.camera import CameraSource
from ingest.events import EventFormatError, SamplingRequest

log = logging.getLogger(__name__)
TOPIC_RETRY_S = 5.0


def apply_request(cameras: Mapping[str, CameraSource], raw: bytes) -> bool:
    """Apply one request; True when this process runs the camera it names."""
    try:
        request = SamplingRequest.from_json(raw)
    except EventFormatError as exc:
        log.warning("ignoring a malformed control message: %s", exc)
        return False
    camera = cameras.get(request.source_id)
    if camera is None:
        return False
    camera.rate.boost(time.monotonic(), request.boost_s)
    log.info("source %s samples at its active rate for %.0f s (%s)", request.source_id, request.boost_s,
             request.reason or "no reason given")
    return True


async def follow_control(bootstrap_servers: str, topics: Topics, cameras: Mapping[str, CameraSource]) -> None:
    """Until cancelled: apply every request published from now on."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        # the control topic may not exist yet: wait for it
        await follow_from_end(consumer, [topics.name("control")], wait_for_topics_s=TOPIC_RETRY_S)
        async for message in consumer:
            apply_request(cameras, message.value or b"")
    finally:
        await consumer.stop()


async def request_sampling(publisher: Publisher, request: SamplingRequest) -> None:
    await publisher.send("control", request.source_id.encode(), request.to_json())
