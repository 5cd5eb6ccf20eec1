"""The pytest skin: options, hooks and fixtures over the library objects."""
