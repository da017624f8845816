# Where no image registry can be reached: a stand-in for apache/airflow:<version>-python<python>, built on
# the Debian root that images.py makes (bookworm with the lane's lock installed in /home/airflow/.local). It
# has what the project's Dockerfile and docker-compose.yaml use of the official image, laid out the same way:
# the airflow user (uid 50000, gid 0) and /opt/airflow, python, pip and airflow on PATH, dumb-init and curl,
# and an entrypoint that runs the command it is given.
ARG BASE
FROM ${BASE}
ENV PATH=/home/airflow/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW_UID=50000 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY airflow-entrypoint /entrypoint
USER airflow
WORKDIR /opt/airflow
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/entrypoint"]
CMD []
