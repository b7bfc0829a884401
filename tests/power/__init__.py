"""Power-grid tests (a package, so helper imports never clash with other areas)."""
