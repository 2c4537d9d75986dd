"""Admin registrations of the chain app."""

from __future__ import annotations

from chain.lane import admin as lane_admin  # noqa: F401 - registers the submission lane pages
from chain.listener import admin as listener_admin  # noqa: F401 - registers the listener pages
