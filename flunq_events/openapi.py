"""Shapes for the OpenAPI schema (drf-spectacular). Responses are built as dicts; these document them."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import serializers


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer <token>`` in the schema, so /api/docs/ can send a token."""

    target_class = "access.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "a token from `python manage.py create_token NAME --scope ...`",
        }


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="stable error code, e.g. wrong_expected_version")
    message = serializers.CharField(help_text="what is wrong, for a person")


class CloudEventSerializer(serializers.Serializer):
    specversion = serializers.CharField()
    id = serializers.CharField()
    source = serializers.CharField()
    type = serializers.CharField()
    subject = serializers.CharField(required=False)
    time = serializers.DateTimeField(required=False)
    datacontenttype = serializers.CharField(required=False)
    dataschema = serializers.CharField(required=False)
    tenantid = serializers.CharField(required=False)
    workflowid = serializers.CharField(required=False)
    executionid = serializers.CharField(required=False)
    taskid = serializers.CharField(required=False)
    correlationid = serializers.CharField(required=False)
    causationid = serializers.CharField(required=False)
    data = serializers.JSONField(required=False)
    data_base64 = serializers.CharField(required=False)


class StoredEventSerializer(CloudEventSerializer):
    stream = serializers.CharField()
    version = serializers.IntegerField()
    position = serializers.IntegerField()
    recordedtime = serializers.DateTimeField()


class EventBatchSerializer(serializers.Serializer):
    events = StoredEventSerializer(many=True)


class EventPageSerializer(serializers.Serializer):
    events = StoredEventSerializer(many=True)
    next_after = serializers.IntegerField(help_text="pass as ?after= for the next page")
    horizon = serializers.IntegerField(help_text="the safe horizon this page was read up to")
    next = serializers.CharField(help_text="URL of the next page")


class StreamSerializer(serializers.Serializer):
    name = serializers.CharField()
    category = serializers.CharField()
    last_version = serializers.IntegerField()
    event_count = serializers.IntegerField()
    last_position = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    last_event_at = serializers.DateTimeField(allow_null=True)
    deleted = serializers.BooleanField()
    deleted_at = serializers.DateTimeField(allow_null=True)
    max_age = serializers.IntegerField(allow_null=True)
    max_count = serializers.IntegerField(allow_null=True)
    metadata = serializers.DictField()


class StreamCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    max_age = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    max_count = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    metadata = serializers.DictField(required=False)


class StreamListSerializer(serializers.Serializer):
    streams = StreamSerializer(many=True)
    next_after = serializers.CharField(allow_null=True)


class StreamEventsSerializer(serializers.Serializer):
    stream = serializers.CharField()
    events = StoredEventSerializer(many=True)
    next_version = serializers.IntegerField(allow_null=True)
