"""Errors of the schema registry, each with the Confluent Schema Registry error code it maps to.

Our API renders them like every ``ServiceError`` (``{"error": code, "message": ...}``); the Confluent
API (``schemas/confluent.py``) renders ``{"error_code": registry_code, "message": ...}``.
"""

from __future__ import annotations

from flunq_events.errors import Conflict, NotFound, ServiceError


class SubjectNotFound(NotFound):
    code = "subject_not_found"
    registry_code = 40401


class VersionNotFound(NotFound):
    code = "version_not_found"
    registry_code = 40402


class SchemaNotFound(NotFound):
    code = "schema_not_found"
    registry_code = 40403


class SubjectSoftDeleted(NotFound):
    code = "subject_soft_deleted"
    registry_code = 40404


class SubjectNotSoftDeleted(NotFound):
    code = "subject_not_soft_deleted"
    registry_code = 40405


class VersionSoftDeleted(NotFound):
    code = "version_soft_deleted"
    registry_code = 40406


class VersionNotSoftDeleted(NotFound):
    code = "version_not_soft_deleted"
    registry_code = 40407


class SubjectConfigNotFound(NotFound):
    code = "subject_config_not_found"
    registry_code = 40408


class IncompatibleSchema(Conflict):
    code = "incompatible_schema"
    registry_code = 409


class InvalidSchema(ServiceError):
    code = "invalid_schema"
    http_status = 422
    registry_code = 42201


class InvalidVersion(ServiceError):
    code = "invalid_version"
    http_status = 422
    registry_code = 42202


class InvalidCompatibility(ServiceError):
    code = "invalid_compatibility"
    http_status = 422
    registry_code = 42203


class InvalidSubject(ServiceError):
    code = "invalid_subject"
    http_status = 422
    registry_code = 42208


class OperationNotPermitted(ServiceError):
    code = "operation_not_permitted"
    http_status = 422
    registry_code = 42205
