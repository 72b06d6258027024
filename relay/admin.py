"""Admin for the relay: each sink's checkpoint, lag and last error, a rewind action, dead letters."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect, render

from flunq_events.admin_input import RefuseUnreadableInput
from flunq_events.errors import ServiceError
from relay import status
from relay.models import Checkpoint, DeadLetter
from relay.services import parse_target, rewind


class RewindForm(forms.Form):
    target = forms.CharField(
        label="Publish again from",
        help_text="a position (e.g. 1200) or an RFC 3339 time (e.g. 2026-01-31T12:00:00Z)",
    )


@admin.register(Checkpoint)
class CheckpointAdmin(RefuseUnreadableInput, admin.ModelAdmin):
    list_display = ("sink", "position", "horizon", "lag_events", "lag_seconds", "last_error", "holder",
                    "heartbeat_at", "last_published_at")  # fmt: skip
    readonly_fields = ("sink", "position", "epoch", "horizon", "lag_events", "lag_seconds", "last_error",
                       "last_error_at", "holder", "heartbeat_at", "last_published_at", "updated_at")  # fmt: skip
    fields = readonly_fields
    actions = ["rewind_action"]

    def _status(self, obj: Checkpoint) -> status.SinkStatus:
        # One status per object per request; the changelist shows a handful of sinks at most.
        cache = self.__dict__.setdefault("_cache", {})
        key = (obj.sink, obj.position)
        if key not in cache:
            cache.clear()
            cache[key] = status.sink_status(obj.sink)
        return cache[key]

    @admin.display(description="horizon")
    def horizon(self, obj: Checkpoint) -> int:
        return self._status(obj).horizon

    @admin.display(description="lag (positions)")
    def lag_events(self, obj: Checkpoint) -> int:
        return self._status(obj).lag_events

    @admin.display(description="lag (seconds)")
    def lag_seconds(self, obj: Checkpoint) -> str:
        return f"{self._status(obj).lag_seconds:.1f}"

    @admin.action(description="Rewind: publish again from a position or time")
    def rewind_action(self, request, queryset):
        if "apply" in request.POST:
            form = RewindForm(request.POST)
            if form.is_valid():
                try:
                    target = parse_target(form.cleaned_data["target"])
                except ServiceError as exc:
                    self.message_user(request, exc.message, messages.ERROR)
                    return None
                # A target past the log's end stops there: say where each sink went.
                positions = sorted({rewind(checkpoint.sink, target).position for checkpoint in queryset})
                self.message_user(
                    request,
                    f"Rewound {queryset.count()} sink(s): publishing again after position "
                    f"{', '.join(map(str, positions))}.",
                )
                return redirect(request.get_full_path())
        else:
            form = RewindForm()
        return render(
            request,
            "admin/relay/rewind.html",
            {
                **self.admin_site.each_context(request),
                "form": form,
                "checkpoints": queryset,
                "action": "rewind_action",
                "title": "Rewind relay sinks",
            },
        )

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DeadLetter)
class DeadLetterAdmin(RefuseUnreadableInput, admin.ModelAdmin):
    list_display = ("sink", "position", "type", "stream", "event_id", "error", "created_at")
    list_filter = ("sink", "type")
    search_fields = ("=event_id", "=stream")
    readonly_fields = ("sink", "position", "event_id", "source", "type", "stream", "error", "created_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
