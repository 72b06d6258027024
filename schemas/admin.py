"""Admin for the schema registry: subjects with their versions, settings, and a compatibility check.

Versions are immutable and shown read-only with their schema pretty-printed. A subject's
compatibility and validation switch are edited on its page; "Check compatibility" tries a
candidate schema against the subject (and can register it). The global compatibility is the single
"registry configuration" row. Every change goes through ``schemas.services``.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from flunq_events.admin_input import RefuseUnreadableInput
from flunq_events.errors import ServiceError
from flunq_events.jsonutil import JSONError, loads_strict
from schemas import services
from schemas.models import Compatibility, RegistryConfig, SchemaVersion, Subject


def pretty(document) -> str:
    return format_html("<pre style='margin:0'>{}</pre>", json.dumps(document, indent=2, ensure_ascii=False))


class SchemaVersionInline(admin.TabularInline):
    model = SchemaVersion
    extra = 0
    can_delete = False
    fields = ("version", "schema_id", "created_at", "deleted_at", "pretty_schema")
    readonly_fields = fields
    ordering = ("-version",)

    @admin.display(description="schema")
    def pretty_schema(self, obj: SchemaVersion) -> str:
        return pretty(obj.schema.document)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Subject)
class SubjectAdmin(RefuseUnreadableInput, admin.ModelAdmin):
    list_display = ("name", "latest", "effective_compatibility", "validate", "created_at")
    list_filter = ("validate", "compatibility")
    search_fields = ("name",)
    fields = ("name", "compatibility", "validate", "last_version", "created_at")
    readonly_fields = ("name", "last_version", "created_at")
    inlines = [SchemaVersionInline]
    actions = ["soft_delete", "delete_permanently"]
    change_form_template = "admin/schemas/subject/change_form.html"

    @admin.display(description="latest live version")
    def latest(self, obj: Subject):
        row = obj.versions.filter(deleted_at__isnull=True).order_by("-version").first()
        return row.version if row else "-"

    @admin.display(description="compatibility")
    def effective_compatibility(self, obj: Subject) -> str:
        mode = services.effective_compatibility(obj)
        return mode if obj.compatibility else f"{mode} (global)"

    def has_add_permission(self, request) -> bool:
        return False  # subjects come into being by registering a schema

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # two-step deletes: the actions below

    def save_model(self, request, obj: Subject, form, change) -> None:
        services.set_subject_config(obj.name, compatibility=obj.compatibility or None, validate=obj.validate)

    @admin.action(description="Soft-delete every version of the selected subjects")
    def soft_delete(self, request, queryset) -> None:
        self._each(request, queryset, lambda name: services.delete_subject(name), "soft deleted versions")

    @admin.action(description="Permanently delete the selected soft-deleted subjects")
    def delete_permanently(self, request, queryset) -> None:
        self._each(
            request, queryset, lambda name: services.delete_subject(name, permanent=True), "removed versions"
        )

    def _each(self, request, queryset, action, done: str) -> None:
        for subject in queryset:
            try:
                versions = action(subject.name)
            except ServiceError as exc:
                self.message_user(request, f"{subject.name}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{subject.name}: {done} {versions}")

    def get_urls(self):
        check = self.admin_site.admin_view(self.check_view)
        return [path("<int:object_id>/check/", check, name="schemas_subject_check"), *super().get_urls()]

    def check_view(self, request: HttpRequest, object_id: int):
        subject = get_object_or_404(Subject, pk=object_id)
        latest = subject.versions.filter(deleted_at__isnull=True).order_by("-version").first()
        text = json.dumps(latest.schema.document, indent=2) if latest else "{}"
        mode = ""
        verdict = error = None
        if request.method == "POST":
            if not self.has_change_permission(request, subject):
                return HttpResponseRedirect(reverse("admin:schemas_subject_change", args=[subject.pk]))
            text = request.POST.get("schema", "")
            mode = request.POST.get("mode", "")
            try:
                document = loads_strict(text, max_depth=64)
                if "register" in request.POST:
                    result = services.register(subject.name, document)
                    word = "registered as" if result.created else "already registered as"
                    self.message_user(request, f"{subject.name}: {word} version {result.version.version}")
                    return HttpResponseRedirect(reverse("admin:schemas_subject_change", args=[subject.pk]))
                verdict = services.check_compatibility(subject.name, document, mode=mode or None)
            except JSONError as exc:
                error = f"not JSON: {exc}"
            except ServiceError as exc:
                error = exc.message
                verdict = None
                if "differences" in exc.extra:
                    error += "".join(f"\n  version {d['version']} {d['pointer']}: {d['message']}"
                                     for d in exc.extra["differences"])  # fmt: skip
        context = {
            **self.admin_site.each_context(request),
            "title": f"Check compatibility: {subject.name}",
            "subject": subject,
            "opts": self.model._meta,
            "schema_text": text,
            "modes": Compatibility.values,
            "mode": mode,
            "effective": services.effective_compatibility(subject),
            "verdict": verdict,
            "error": error,
        }
        return TemplateResponse(request, "admin/schemas/subject/check.html", context)


@admin.register(RegistryConfig)
class RegistryConfigAdmin(RefuseUnreadableInput, admin.ModelAdmin):
    fields = ("compatibility",)

    def changelist_view(self, request, extra_context=None):
        row, _ = RegistryConfig.objects.get_or_create(pk=1)
        return HttpResponseRedirect(reverse("admin:schemas_registryconfig_change", args=[row.pk]))

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj: RegistryConfig, form, change) -> None:
        services.set_global_compatibility(obj.compatibility)
