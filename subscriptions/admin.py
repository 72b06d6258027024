"""Admin for subscriptions: state and lag at a glance, pause/resume, dead letters, replays.

Every change goes through ``subscriptions.services`` (the same code the API uses): the actions
here, or ``PATCH /api/v1/subscriptions/{id}``. The change page only shows a subscription; a form
of its own would skip the API's checks (URLs, retry schedule, filters).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Sum
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from events import horizon
from flunq_events.admin_input import RefuseUnreadableInput
from flunq_events.errors import ServiceError
from flunq_events.numbers import is_digits
from subscriptions import inputs, services
from subscriptions.models import DeadLetter, ReplayJob, Subscription


class ReplayForm(forms.Form):
    start = forms.CharField(label="From", help_text="a position (inclusive) or an RFC 3339 time")
    until = forms.CharField(
        required=False, help_text="optional, exclusive: a position or a time; default: now"
    )
    types = forms.CharField(
        required=False, help_text="optional, comma-separated, e.g. task.*,workflow.created"
    )
    stream = forms.CharField(required=False)


@admin.register(Subscription)
class SubscriptionAdmin(RefuseUnreadableInput, admin.ModelAdmin):
    list_display = (
        "name",
        "kind",
        "state",
        "target",
        "checkpoint",
        "pending_count",
        "lag",
        "dead_letters_link",
    )
    list_filter = ("kind", "state")
    search_fields = ("name", "url", "tenantid")
    readonly_fields = (
        "id",
        "kind",
        "start",
        "checkpoint",
        "failing_since",
        "disabled_reason",
        "created_at",
        "updated_at",
    )
    exclude = ("secret",)
    actions = ["pause", "resume", "disable", "replay_from"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(pending_sum=Sum("streams__pending"))

    def has_add_permission(self, request) -> bool:
        return False  # created over the API, which checks the URL and returns the secret once

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name not in self.exclude]

    def save_model(self, request, obj, form, change) -> None:
        pass  # nothing on the change page is editable

    @admin.display(description="target")
    def target(self, obj: Subscription) -> str:
        return obj.url if obj.kind == Subscription.WEBHOOK else "pull"

    @admin.display(description="pending")
    def pending_count(self, obj: Subscription) -> int:
        return obj.pending_sum or 0

    @admin.display(description="lag")
    def lag(self, obj: Subscription) -> int:
        behind = max(horizon.current() - obj.checkpoint, 0)
        return (obj.pending_sum or 0) + behind

    @admin.display(description="dead letters")
    def dead_letters_link(self, obj: Subscription):
        url = reverse("admin:subscriptions_deadletter_changelist") + f"?subscription__id__exact={obj.id}"
        return format_html('<a href="{}">{}</a>', url, obj.dead_letters.count())

    def _set_state(self, request, queryset, state: str) -> None:
        for subscription in queryset:
            services.update_subscription(subscription, principal=None, state=state)
        self.message_user(request, f"{queryset.count()} subscription(s) now {state}")

    @admin.action(description="Pause the selected subscriptions")
    def pause(self, request, queryset):
        self._set_state(request, queryset, Subscription.PAUSED)

    @admin.action(description="Resume (activate) the selected subscriptions")
    def resume(self, request, queryset):
        self._set_state(request, queryset, Subscription.ACTIVE)

    @admin.action(description="Disable the selected subscriptions")
    def disable(self, request, queryset):
        self._set_state(request, queryset, Subscription.DISABLED)

    @admin.action(description="Replay from ... into the selected subscriptions")
    def replay_from(self, request, queryset):
        form = ReplayForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            try:
                start = inputs.position_or_time(_number_or_text(form.cleaned_data["start"]), "from")
                until_raw = form.cleaned_data["until"]
                until = inputs.position_or_time(_number_or_text(until_raw), "until") if until_raw else None
                types = inputs.types_list(
                    [t.strip() for t in form.cleaned_data["types"].split(",") if t.strip()], "types"
                )
                for subscription in queryset:
                    job = services.start_replay(
                        subscription,
                        start=start,
                        until=until,
                        types=types,
                        stream=form.cleaned_data["stream"] or None,
                        created_by=f"admin:{request.user}",
                        request={k: v for k, v in form.cleaned_data.items() if v},
                    )
                    self.message_user(request, f"{subscription.name}: replay job {job.id} started")
                return None
            except ServiceError as exc:
                self.message_user(request, exc.message, messages.ERROR)
        return TemplateResponse(
            request,
            "admin/subscriptions/replay.html",
            {
                **self.admin_site.each_context(request),
                "title": "Replay from ...",
                "form": form,
                "subscriptions": queryset,
                "opts": self.model._meta,
            },
        )


def _number_or_text(value: str):
    text = value.strip()
    return int(text) if is_digits(text, 19) else text


@admin.register(DeadLetter)
class DeadLetterAdmin(RefuseUnreadableInput, admin.ModelAdmin):
    list_display = (
        "id",
        "subscription",
        "stream",
        "position",
        "type",
        "reason",
        "attempts",
        "last_status",
        "created_at",
    )
    list_filter = ("reason", "subscription")
    search_fields = ("=stream", "=event_id", "type")
    actions = ["redrive", "discard"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in DeadLetter._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # "discard" does it through the service
        return actions

    @admin.action(description="Redrive the selected dead letters")
    def redrive(self, request, queryset):
        selected = queryset.count()
        count = services.redrive(queryset)
        message = f"{count} dead letter(s) redriven"
        if count < selected:  # see services.redrive
            message += f"; {selected - count} stay: their event is pending in the queue already"
        self.message_user(request, message)

    @admin.action(description="Discard the selected dead letters")
    def discard(self, request, queryset):
        self.message_user(request, f"{services.discard(queryset)} dead letter(s) discarded")


@admin.register(ReplayJob)
class ReplayJobAdmin(RefuseUnreadableInput, admin.ModelAdmin):
    list_display = (
        "id",
        "subscription",
        "state",
        "start_after",
        "end_position",
        "cursor",
        "enqueued",
        "delivered",
        "dead_lettered",
        "created_at",
        "finished_at",
    )
    list_filter = ("state",)
    actions = ["cancel"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in ReplayJob._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    # A job is not deleted on its own (its queued deliveries would go from under the streams'
    # pending counts): cancel it. has_delete_permission stays, so that deleting the subscription,
    # which removes its jobs with everything else, is allowed.
    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_view(self, request, object_id, extra_context=None):
        raise PermissionDenied("a replay job is canceled, not deleted")

    @admin.action(description="Cancel the selected running replays")
    def cancel(self, request, queryset):
        for job in queryset.filter(state=ReplayJob.RUNNING):
            services.cancel_replay(job)
            self.message_user(request, f"replay job {job.id} canceled")
