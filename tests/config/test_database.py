"""PostgreSQL is the database under test, with row locks and the configured lock timeout."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import OperationalError, connection, connections, transaction


@pytest.mark.django_db(transaction=True)
def test_select_for_update_blocks_a_second_locker_until_lock_timeout() -> None:
    # given a row locked by one transaction
    assert connection.vendor == "postgresql"
    user = get_user_model().objects.create_user(username="locked")
    locked = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        with transaction.atomic():
            get_user_model().objects.select_for_update().get(pk=user.pk)
            locked.set()
            release.wait(timeout=30)
        connections.close_all()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert locked.wait(timeout=10)
    try:
        # when another transaction asks for the same row, with a short lock timeout
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '300ms'")
            with pytest.raises(OperationalError, match="lock timeout"):
                get_user_model().objects.select_for_update().get(pk=user.pk)
        # then NOWAIT fails at once too, and an unlocked read still works
        with pytest.raises(OperationalError), transaction.atomic():
            get_user_model().objects.select_for_update(nowait=True).get(pk=user.pk)
        assert get_user_model().objects.get(pk=user.pk).username == "locked"
    finally:
        release.set()
        holder.join(timeout=10)
    # and once released, the lock is ours
    with transaction.atomic():
        assert get_user_model().objects.select_for_update(nowait=True).get(pk=user.pk).pk == user.pk


@pytest.mark.django_db
def test_connections_carry_statement_and_lock_timeouts() -> None:
    # when
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        statement_timeout = cursor.fetchone()
        cursor.execute("SHOW lock_timeout")
        lock_timeout = cursor.fetchone()
    # then
    assert statement_timeout == ("30s",)
    assert lock_timeout == ("5s",)
