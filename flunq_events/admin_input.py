"""Admin input that Django passes on unread: a 4xx (or the admin's ``?e=1``), never a 500.

Django turns a changelist filter it cannot build into ``IncorrectLookupParameters`` (a redirect
to ``?e=1``), but some only fail when the query runs (``?types=x``: PostgreSQL reads no array in
"x"; ``?position__range=1``: a range with one bound; ``?data=x`` on a ``json`` column), and the
ids of an admin action go into the query as posted (``abc`` for a number). Every ``ModelAdmin`` of
the service takes ``RefuseUnreadableInput`` first. A NUL in the address is
``flunq_events.middleware.admin_refuses_nul``.
"""

from __future__ import annotations

from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.db import DataError, ProgrammingError, transaction
from django.http import HttpResponseBadRequest

# What running a changelist query raises for values its fields cannot hold (PostgreSQL's errors,
# the ORM's conversions, psycopg's adapters); a timeout or a lost connection stays a 500.
UNREADABLE = (DataError, ProgrammingError, ValueError, TypeError, IndexError, OverflowError)
_no_nul = ProhibitNullCharactersValidator()


class RefuseUnreadableInput:
    def get_changelist_instance(self, request):
        # The changelist counts its rows when it is built: a filter the database cannot read fails
        # here. The savepoint keeps an outer transaction usable after the failed query.
        try:
            with transaction.atomic():
                return super().get_changelist_instance(request)
        except UNREADABLE as exc:
            if not request.GET:
                raise  # no filter of the caller's: our fault, a 500
            raise IncorrectLookupParameters(exc) from exc

    def response_action(self, request, queryset):
        # The selected ids are read as get_object reads one from the address; one that is not a
        # key of this model refuses the whole action before it runs on any of them.
        key = self.model._meta.pk
        try:
            for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
                _no_nul(value)
                key.to_python(value)
        except (ValidationError, ValueError):
            return HttpResponseBadRequest("A selected id is not a key of this list: no action was run")
        return super().response_action(request, queryset)
