"""Kafka backend (kafka-python): idempotent producer, ``acks=all``, CloudEvents binary mode.

Features
    - Topic ``KAFKA_TOPIC`` (default ``flunq.events``), created at connect if missing with
      ``KAFKA_TOPIC_PARTITIONS`` partitions (the broker's default replication).
    - Key = the event's stream, so one stream stays on one partition and keeps its order.
    - Value = the data bytes as stored (JSON text, or the raw bytes of ``data_base64``); no value
      (null) when the event has no data.
    - Headers, binary content mode of the CloudEvents Kafka binding: ``ce_<attribute>`` for every
      attribute (``ce_id``, ``ce_source``, ``ce_type``, ..., and the server's ``ce_stream``,
      ``ce_version``, ``ce_position``, ``ce_recordedtime``), ``content-type`` = ``datacontenttype``.
    - ``enable_idempotence=True`` and ``acks=all``: the broker drops the producer's own retries, and
      a batch counts as sent only when every replica in sync has it. Re-sends after a relay crash
      are new records: consumers dedupe on ``ce_source`` + ``ce_id`` (or ``ce_position``).

Connection string
    ``KAFKA_BROKERS``: ``host:port[,host:port]``; TLS/SASL with ``KAFKA_SECURITY_PROTOCOL``,
    ``KAFKA_SASL_MECHANISM``, ``KAFKA_SASL_USERNAME``, ``KAFKA_SASL_PASSWORD``, ``KAFKA_SSL_CAFILE``.

Rejections
    A record the broker refuses for its size or content (``MessageSizeTooLarge``,
    ``RecordListTooLarge``, ``InvalidRecord``, ``CorruptRecord``) is dead-lettered; every other
    error is about the connection or the cluster and the batch is retried.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import kafka.errors as errors
from django.conf import settings
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from relay.backends.base import Backend, BrokerUnavailable, EventRejected
from relay.messages import RelayEvent

PERMANENT = (
    errors.MessageSizeTooLargeError,
    errors.RecordListTooLargeError,
    errors.InvalidRecordError,
    errors.CorruptRecordError,
)


def client_options() -> dict:
    """Connection and security options shared by the producer, the admin client and consumers."""
    options: dict = {
        "bootstrap_servers": settings.KAFKA_BROKERS,
        "security_protocol": settings.KAFKA_SECURITY_PROTOCOL,
    }
    if settings.KAFKA_SECURITY_PROTOCOL.startswith("SASL"):
        options.update(
            sasl_mechanism=settings.KAFKA_SASL_MECHANISM,
            sasl_plain_username=settings.KAFKA_SASL_USERNAME,
            sasl_plain_password=settings.KAFKA_SASL_PASSWORD,
        )
    if settings.KAFKA_SSL_CAFILE:
        options["ssl_cafile"] = settings.KAFKA_SSL_CAFILE
    return options


def headers(event: RelayEvent) -> list[tuple[str, bytes]]:
    out = []
    for name, value in event.attribute_pairs():
        if name == "datacontenttype":
            out.append(("content-type", value.encode()))
        else:
            out.append((f"ce_{name}", value.encode()))
    return out


class KafkaBackend(Backend):
    alias = "kafka"
    reads_structured = False

    def __init__(
        self,
        brokers: list[str] | str | None = None,
        topic: str | None = None,
        partitions: int | None = None,
        timeout: float | None = None,
        **producer_options,
    ) -> None:
        self.options = client_options()
        if brokers:
            self.options["bootstrap_servers"] = brokers
        self.topic = topic or settings.KAFKA_TOPIC
        self.partitions = partitions or settings.KAFKA_TOPIC_PARTITIONS
        self.timeout = timeout or settings.RELAY_ACK_TIMEOUT_SECONDS
        self.producer_options = producer_options
        self.producer: KafkaProducer | None = None

    def connect(self) -> None:
        if self.producer is not None:
            return
        timeout_ms = int(self.timeout * 1000)
        try:
            admin = KafkaAdminClient(**self.options, request_timeout_ms=timeout_ms)
            try:
                if self.topic not in admin.list_topics():
                    with contextlib.suppress(errors.TopicAlreadyExistsError):
                        admin.create_topics([NewTopic(self.topic, self.partitions, -1)])
            finally:
                admin.close()
            self.producer = KafkaProducer(
                **self.options,
                enable_idempotence=True,
                acks="all",
                linger_ms=2,
                max_in_flight_requests_per_connection=5,
                request_timeout_ms=timeout_ms,
                delivery_timeout_ms=timeout_ms + 1000,
                max_block_ms=timeout_ms,
                **self.producer_options,
            )
        except errors.KafkaError as exc:
            raise BrokerUnavailable(f"kafka: {exc!r}") from exc

    def publish(self, events: Sequence[RelayEvent]) -> list[EventRejected | None]:
        if self.producer is None:
            raise BrokerUnavailable("kafka: not connected")
        results: list[EventRejected | None] = []
        futures = []
        try:
            for event in events:
                try:
                    future = self.producer.send(
                        self.topic, key=event.stream.encode(), value=event.data, headers=headers(event)
                    )
                except PERMANENT as exc:  # raised before sending: too large for max_request_size
                    future = exc
                futures.append(future)
            self.producer.flush(timeout=self.timeout)
        except errors.KafkaError as exc:
            raise BrokerUnavailable(f"kafka: {exc!r}") from exc
        for future in futures:
            if isinstance(future, Exception):
                results.append(EventRejected(f"kafka: {future!r}"))
                continue
            if not future.is_done:
                raise BrokerUnavailable("kafka: no ack in time")
            if future.failed():
                if isinstance(future.exception, PERMANENT):
                    results.append(EventRejected(f"kafka: {future.exception!r}"))
                    continue
                raise BrokerUnavailable(f"kafka: {future.exception!r}")
            results.append(None)
        return results

    def close(self) -> None:
        if self.producer is not None:
            # Unsent records are dropped: the relay resends the batch, nothing depends on them.
            with contextlib.suppress(Exception):
                self.producer.close(timeout=0)
            self.producer = None

    def describe(self) -> dict[str, str]:
        return {"broker": "kafka", "topic": self.topic}
