"""The local curation web page (`ehr-r1 curate serve`): templates/ and static/ beside app.py."""
