"""Air-quality readings over MQTT: subscribe, hand each message to the AirQualityReceiver.

Each subscription names its payload format. For the Sensor.Community format the device
id is the topic's last level (there is no X-Sensor header in MQTT). A lost broker
connection is retried with exponential backoff and jitter; messages the receiver
rejects are dead letters, as over HTTP. QoS 1, so the broker redelivers what we miss.
"""

from __future__ import annotations

import asyncio
import logging

import aiomqtt

from ingest.aq_formats import PUSH_FORMATS
from ingest.aq_receiver import AirQualityReceiver
from ingest.backoff import Backoff
from ingest.settings import MqttSettings
from ingest.settings_base import reveal

log = logging.getLogger(__name__)



class MqttAirQualitySource:
    def __init__(self, config: MqttSettings, receiver: AirQualityReceiver) -> None:
        self.config = config
        self.receiver = receiver
        self.connected = False
        self.messages = 0

    def _format_of(self, topic: aiomqtt.Topic) -> str:
        for subscription in self.config.subscriptions:
            if topic.matches(subscription.topic):
                return subscription.format
        return "generic"

    async def run(self) -> None:
        """Until cancelled; reconnects on its own."""
        cfg = self.config
        backoff = Backoff(1.0, cfg.reconnect_max_s)
        while True:
            try:
                async with aiomqtt.Client(cfg.host, cfg.port, username=cfg.username,
                                          password=reveal(cfg.password), identifier=cfg.client_id) as client:
                    for subscription in cfg.subscriptions:
                        await client.subscribe(subscription.topic, qos=1)
                    self.connected = True
                    backoff.reset()
                    log.info("MQTT connected to %s:%d", cfg.host, cfg.port)
                    async for message in client.messages:
                        await self._handle(message)
            except aiomqtt.MqttError as exc:
                self.connected = False
                delay = backoff.next_delay()
                log.warning("MQTT %s:%d: %s; reconnecting in %.1f s", cfg.host, cfg.port, exc, delay)
                await asyncio.sleep(delay)

    async def _handle(self, message: aiomqtt.Message) -> None:
        self.messages += 1
        raw = message.payload
        payload = raw if isinstance(raw, bytes | bytearray) else str(raw).encode()
        protocol = self._format_of(message.topic)
        device = message.topic.value.rsplit("/", 1)[-1] if PUSH_FORMATS[protocol].device_in_topic else None
        if device is not None and len(device) > 200:
            device = None
        status, reason = await self.receiver.receive(protocol, bytes(payload), device)
        if status >= 300:
            log.warning("MQTT message on %s rejected: %s", message.topic.value, reason)
