"""Test helpers shared by the core, app and end-to-end tests (a package so spawned worker
processes can import the fakes by their module name, ``tests.helpers.runner_fakes``)."""
