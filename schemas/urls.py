"""Routes of the schema registry: ours under /api/v1/schemas, Confluent's under /schema-registry/."""

from django.urls import path, re_path

from schemas import confluent, views

SUBJECT = "<str:subject>"

urlpatterns = [
    path("api/v1/schemas", views.SubjectsView.as_view(), name="schemas"),
    path(f"api/v1/schemas/{SUBJECT}", views.SubjectDetailView.as_view(), name="schema-subject"),
    path(f"api/v1/schemas/{SUBJECT}/versions", views.SubjectVersionsView.as_view(), name="schema-versions"),
    path(
        f"api/v1/schemas/{SUBJECT}/versions/<str:version>",
        views.VersionDetailView.as_view(),
        name="schema-version",
    ),
    path(
        f"api/v1/schemas/{SUBJECT}/compatibility",
        views.CompatibilityView.as_view(),
        name="schema-compatibility",
    ),
    path(f"api/v1/schemas/{SUBJECT}/config", views.ConfigView.as_view(), name="schema-config"),
]

registry = "schema-registry/"
urlpatterns += [
    path(registry.rstrip("/"), confluent.RootView.as_view()),
    path(registry, confluent.RootView.as_view()),
    path(f"{registry}subjects", confluent.SubjectsView.as_view()),
    path(f"{registry}subjects/{SUBJECT}", confluent.SubjectView.as_view()),
    path(f"{registry}subjects/{SUBJECT}/versions", confluent.SubjectVersionsView.as_view()),
    path(f"{registry}subjects/{SUBJECT}/versions/<str:version>", confluent.VersionView.as_view()),
    path(
        f"{registry}subjects/{SUBJECT}/versions/<str:version>/schema", confluent.VersionSchemaView.as_view()
    ),
    path(f"{registry}schemas/types", confluent.SchemaTypesView.as_view()),
    path(f"{registry}schemas/ids/<str:schema_id>", confluent.SchemaByIdView.as_view()),
    path(f"{registry}schemas/ids/<str:schema_id>/schema", confluent.SchemaByIdRawView.as_view()),
    path(f"{registry}schemas/ids/<str:schema_id>/subjects", confluent.SchemaSubjectsView.as_view()),
    path(f"{registry}schemas/ids/<str:schema_id>/versions", confluent.SchemaVersionsView.as_view()),
    path(f"{registry}compatibility/subjects/{SUBJECT}/versions", confluent.CompatibilityView.as_view()),
    path(
        f"{registry}compatibility/subjects/{SUBJECT}/versions/<str:version>",
        confluent.CompatibilityView.as_view(),
    ),
    path(f"{registry}config", confluent.GlobalConfigView.as_view()),
    path(f"{registry}config/{SUBJECT}", confluent.SubjectConfigView.as_view()),
    path(f"{registry}mode", confluent.ModeView.as_view()),
    path(f"{registry}mode/{SUBJECT}", confluent.ModeView.as_view()),
    re_path(r"^schema-registry/(?P<rest>.*)$", confluent.NoRouteView.as_view()),
]
