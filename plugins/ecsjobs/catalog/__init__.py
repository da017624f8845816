"""The job catalog: its models, the YAML files with their line numbers, schedules, the secrets check, the
prices and the JSON schema. Everything else reads jobs from here; this package imports no other stage."""
