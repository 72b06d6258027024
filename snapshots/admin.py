"""Admin for snapshots: browse them per stream (filter or search by stream), inspect the state."""

from __future__ import annotations

import json

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from flunq_events.admin_input import RefuseUnreadableInput
from snapshots.models import Snapshot


@admin.register(Snapshot)
class SnapshotAdmin(RefuseUnreadableInput, admin.ModelAdmin):
    list_display = ("stream_name", "version", "type", "created_at", "events_link")
    list_filter = ("type", "created_at")
    search_fields = ("=stream__name", "stream__name__startswith")
    ordering = ("stream", "-version")
    exclude = ("state",)
    readonly_fields = ("stream", "version", "type", "created_at", "pretty_state")
    list_select_related = ("stream",)

    @admin.display(description="stream", ordering="stream")
    def stream_name(self, obj: Snapshot) -> str:
        # Follows the link to the same list narrowed to this stream: snapshots per stream.
        url = reverse("admin:snapshots_snapshot_changelist") + f"?stream__name__exact={obj.stream_id}"
        return format_html('<a href="{}">{}</a>', url, obj.stream_id)

    @admin.display(description="events after it")
    def events_link(self, obj: Snapshot) -> str:
        url = reverse("admin:events_event_changelist") + f"?stream={obj.stream_id}&version__gt={obj.version}"
        return format_html('<a href="{}">{}</a>', url, max(0, obj.stream.last_version - obj.version))

    @admin.display(description="state")
    def pretty_state(self, obj: Snapshot) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.state, indent=2, ensure_ascii=False))

    def has_add_permission(self, request) -> bool:
        return False  # snapshots come from the aggregates' owners, through the API

    def has_change_permission(self, request, obj=None) -> bool:
        return False
