"""What a run reports: figures, the verdict, failure text and where to look further."""
