"""The control topic: requests to sources (sample faster for a while), from rules or operators.

Every process that runs cameras follows the topic from its end (no consumer group: each
process must see every request, and only the one running the camera acts on it). A
request for a source this process does not run is ignored; a malformed one is logged
with its reason and skipped (it is an instruction, not data to keep).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from citywatch.publisher import Publisher
from citywatch.topics import Topics
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
        name = topics.name("control")
        partitions = consumer.partitions_for_topic(name)
        while not partitions:  # the topic may not exist yet: look again until it does
            await consumer._client.force_metadata_update()  # aiokafka has no public call for this
            partitions = consumer.partitions_for_topic(name)
            if not partitions:
                await asyncio.sleep(TOPIC_RETRY_S)
        assigned = [TopicPartition(name, p) for p in partitions]
        consumer.assign(assigned)
        await consumer.seek_to_end(*assigned)
        async for message in consumer:
            apply_request(cameras, message.value or b"")
    finally:
        await consumer.stop()


async def request_sampling(publisher: Publisher, request: SamplingRequest) -> None:
    await publisher.send("control", request.source_id.encode(), request.to_json())
