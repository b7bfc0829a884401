"""Twin-sync tests (a package, so helper imports never clash with other areas)."""
