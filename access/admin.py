from django.contrib import admin
from django.contrib.auth import admin as auth_admin
from django.contrib.auth.models import Group, User

from access.models import ApiToken
from flunq_events.admin_input import RefuseUnreadableInput


@admin.register(ApiToken)
class ApiTokenAdmin(RefuseUnreadableInput, admin.ModelAdmin):
    list_display = ("name", "scopes", "tenant", "created_at", "revoked_at")
    readonly_fields = ("token_hash", "created_at")
    search_fields = ("name", "tenant")


# Django's own pages for the admin's users and groups take the same bad input as ours.
admin.site.unregister([User, Group])


@admin.register(User)
class UserAdmin(RefuseUnreadableInput, auth_admin.UserAdmin):
    pass


@admin.register(Group)
class GroupAdmin(RefuseUnreadableInput, auth_admin.GroupAdmin):
    pass
