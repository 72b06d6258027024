"""Shapes of the snapshot endpoints for the OpenAPI schema; responses are built as dicts."""

from rest_framework import serializers

from flunq_events.openapi import StoredEventSerializer


class SnapshotSerializer(serializers.Serializer):
    stream = serializers.CharField()
    version = serializers.IntegerField(help_text="version of the last event the state includes")
    type = serializers.CharField(allow_null=True, help_text="label of the state's shape")
    state = serializers.JSONField()
    created_at = serializers.DateTimeField()


class SnapshotCreateSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=0)
    state = serializers.JSONField()
    type = serializers.CharField(required=False, allow_null=True, max_length=200)


class SnapshotListSerializer(serializers.Serializer):
    stream = serializers.CharField()
    snapshots = SnapshotSerializer(many=True)


class StreamStateSerializer(serializers.Serializer):
    stream = serializers.CharField()
    snapshot = SnapshotSerializer(allow_null=True)
    events = StoredEventSerializer(many=True, help_text="the events after the snapshot's version")
    last_version = serializers.IntegerField()
    next_version = serializers.IntegerField(allow_null=True, help_text="more events follow from here")
