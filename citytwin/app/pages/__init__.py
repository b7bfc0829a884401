"""The app's pages: City, Scenarios, Compare, Experiments."""
