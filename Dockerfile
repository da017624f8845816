# The image of the docker compose stack (docker-compose.yaml): the official Airflow image at the latest lane's
# version with the lane's pinned packages (lock/latest.txt), so the containers run what `make run` runs.
# dags/, plugins/, config/ and local/ are mounted by docker-compose.yaml, not copied: edits need no rebuild.
# AIRFLOW_IMAGE names another base with the official image's layout (tests/compose builds one where no
# registry is reachable).
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
ARG AIRFLOW_IMAGE=apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}
FROM ${AIRFLOW_IMAGE}

COPY lock/latest.txt /requirements/latest.txt
RUN pip install --no-cache-dir -r /requirements/latest.txt

# AIRFLOW_HOME of the stack, a named volume; made here so that the volume belongs to the airflow user.
RUN mkdir -p /opt/airflow/home
