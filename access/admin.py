from django.contrib import admin

from access.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "scopes", "tenant", "created_at", "revoked_at")
    readonly_fields = ("token_hash", "created_at")
    search_fields = ("name", "tenant")
