"""Admin for streams: state at a glance, soft delete and purge as explicit actions."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from flunq_events.admin_input import RefuseUnreadableInput
from streams.models import Stream
from streams.services import delete_stream, purge_stream


@admin.register(Stream)
class StreamAdmin(RefuseUnreadableInput, admin.ModelAdmin):
    list_display = ("name", "category", "last_version", "events_link", "last_event_at", "deleted_at")
    list_filter = ("category", ("deleted_at", admin.EmptyFieldListFilter))
    search_fields = ("name",)
    readonly_fields = ("name", "category", "last_version", "last_position", "created_at",
                       "last_event_at", "deleted_at", "truncate_before")  # fmt: skip
    actions = ["soft_delete", "purge"]

    @admin.display(description="events")
    def events_link(self, obj: Stream):
        url = reverse("admin:events_event_changelist") + f"?stream={obj.name}"
        return format_html('<a href="{}">{}</a>', url, obj.event_count)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Soft-delete the selected streams")
    def soft_delete(self, request, queryset):
        for stream in queryset:
            delete_stream(stream.name)
        self.message_user(request, f"{queryset.count()} stream(s) deleted (events kept in the log)")

    @admin.action(description="Purge events of the selected deleted streams (irreversible)")
    def purge(self, request, queryset):
        for stream in queryset:
            if stream.deleted_at is None:
                self.message_user(request, f"{stream.name}: delete it first", messages.ERROR)
                continue
            removed = purge_stream(stream.name)
            self.message_user(request, f"{stream.name}: {removed} event(s) purged")
