"""The reliability suite: real processes killed and restarted, services stopped, hostile load.

Every test module here sets `pytestmark = pytest.mark.reliability`: `make test` leaves them out,
`make test-reliability` runs only them (`.ci/run` runs both). Each test builds its own `Stack`
(tests/reliability/stack.py) under its tmp_path and stops everything it started, whatever happens.
"""
