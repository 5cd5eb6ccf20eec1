"""What our tests share: paths, process helpers, running the suite in a subprocess."""
