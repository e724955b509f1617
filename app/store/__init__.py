"""The local store: files kept byte-exact under the home, indexed in SQLite, and the one ingest
path every source uses."""
