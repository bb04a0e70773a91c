# plugin tests (placeholder, filled below)
