# Where no image registry can be reached: a stand-in for postgres:16, Debian bookworm's PostgreSQL (15) on the
# Debian root that images.py makes, with the official image's interface as docker-compose.yaml uses it: a first
# start creates the cluster from POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB in
# /var/lib/postgresql/data, the server listens on every interface (on PGPORT when set), pg_isready on PATH.
ARG BASE
FROM ${BASE}
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/bin:/bin \
    PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint /usr/local/bin/docker-entrypoint.sh
RUN mkdir -p "$PGDATA" /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
    && chmod 700 "$PGDATA"
USER postgres
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
