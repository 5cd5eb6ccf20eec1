"""Stand-in for pytest-base-url (not installed here), for the tests of the ``--base-url`` alias."""
