"""Admin for the log: read-only, because events are never edited (the database refuses it too)."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from events.models import Event
from flunq_events.admin_input import RefuseUnreadableInput


@admin.register(Event)
class EventAdmin(RefuseUnreadableInput, admin.ModelAdmin):
    list_display = ("position", "type", "stream", "version", "event_id", "source", "recordedtime")
    list_filter = ("type", "recordedtime")
    search_fields = ("=event_id", "=stream", "=workflowid", "=executionid", "=correlationid")
    date_hierarchy = "recordedtime"
    ordering = ("-position",)
    show_full_result_count = False  # counting a large log on every page view is slow
    exclude = ("data", "xid", "data_base64")
    readonly_fields = ("pretty_data",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Event._meta.fields if f.name not in self.exclude] + ["pretty_data"]

    @admin.display(description="data")
    def pretty_data(self, obj: Event) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.data, indent=2, ensure_ascii=False))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
