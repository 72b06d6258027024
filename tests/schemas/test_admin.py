"""The admin pages of the registry: subjects with versions, settings, the compatibility check."""

from __future__ import annotations

import json

import pytest

from schemas import services
from schemas.models import Subject

pytestmark = pytest.mark.django_db

V1 = {"type": "object", "properties": {"name": {"type": "string"}}, "additionalProperties": False}
NEEDS_AGE = {**V1, "properties": {**V1["properties"], "age": {"type": "integer"}}, "required": ["age"]}


def test_subject_pages_show_versions_and_settings(admin_client):
    services.register("order.placed", V1)
    subject = Subject.objects.get(name="order.placed")
    listing = admin_client.get("/admin/schemas/subject/")
    assert (
        listing.status_code == 200
        and b"order.placed" in listing.content
        and b"BACKWARD (global)" in listing.content
    )
    page = admin_client.get(f"/admin/schemas/subject/{subject.pk}/change/")
    assert page.status_code == 200
    assert b"&quot;additionalProperties&quot;: false" in page.content  # pretty-printed schema
    assert b"Check compatibility" in page.content
    response = admin_client.post(
        f"/admin/schemas/subject/{subject.pk}/change/",
        {"compatibility": "FULL", "versions-TOTAL_FORMS": "1", "versions-INITIAL_FORMS": "1",
         "versions-MIN_NUM_FORMS": "0", "versions-MAX_NUM_FORMS": "1000",
         "versions-0-id": str(subject.versions.get().pk), "versions-0-subject": str(subject.pk)},
    )  # fmt: skip
    assert response.status_code == 302, response.content[:2000]
    subject.refresh_from_db()
    assert (subject.compatibility, subject.validate) == ("FULL", False)


def test_check_compatibility_form_and_register(admin_client):
    services.register("order.placed", V1)
    subject = Subject.objects.get(name="order.placed")
    url = f"/admin/schemas/subject/{subject.pk}/check/"
    page = admin_client.get(url)
    assert page.status_code == 200 and b"additionalProperties" in page.content
    checked = admin_client.post(url, {"schema": json.dumps(NEEDS_AGE), "mode": "", "check": "1"})
    assert b"Incompatible under BACKWARD" in checked.content and b"/properties/age" in checked.content
    checked = admin_client.post(url, {"schema": json.dumps(NEEDS_AGE), "mode": "NONE", "check": "1"})
    assert b"Compatible under NONE" in checked.content
    assert b"not JSON" in admin_client.post(url, {"schema": "{", "check": "1"}).content
    refused = admin_client.post(url, {"schema": json.dumps(NEEDS_AGE), "register": "1"})
    assert refused.status_code == 200 and b"incompatible" in refused.content
    registered = admin_client.post(url, {"schema": json.dumps({**V1, "title": "v2"}), "register": "1"})
    assert registered.status_code == 302
    assert services.get_version("order.placed", "latest").version == 2


def test_global_compatibility_page(admin_client):
    page = admin_client.get("/admin/schemas/registryconfig/", follow=True)
    assert page.status_code == 200 and b"BACKWARD" in page.content
    response = admin_client.post("/admin/schemas/registryconfig/1/change/", {"compatibility": "FORWARD"})
    assert response.status_code == 302
    assert services.global_compatibility() == "FORWARD"


def test_soft_then_permanent_delete_actions(admin_client):
    services.register("order.placed", V1)
    subject = Subject.objects.get(name="order.placed")
    data = {"_selected_action": [subject.pk], "action": "delete_permanently"}
    admin_client.post("/admin/schemas/subject/", data, follow=True)
    assert services.find_subject("order.placed") is not None  # must be soft deleted first
    admin_client.post("/admin/schemas/subject/", {**data, "action": "soft_delete"})
    admin_client.post("/admin/schemas/subject/", data)
    assert services.find_subject("order.placed") is None
