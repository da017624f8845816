"""From catalog to DAGs: the DAG factory, matrix fan-out, the DAG files' loader and ``render`` (what a
job's steps would send)."""
