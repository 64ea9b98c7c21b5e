"""Reports: the typed schema, building, suites and paired tests, baseline, rendering and merging."""
