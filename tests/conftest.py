"""Test-wide setup: the cloud guard is installed before any test module is imported."""

from tests import cloud_guard

cloud_guard.install()
