#!/bin/sh
# The two PostgreSQL roles of docs/DEPLOYMENT.md and the database, for compose.yaml's PostgreSQL. The postgres image
# runs this once, on the first start with an empty data volume, as POSTGRES_USER (mounted in
# /docker-entrypoint-initdb.d). Tables are created later by `universe-mcp db upgrade` as the owner role.
#
# - UNIVERSE_OWNER_ROLE owns the database, the public schema and (after the migrations) every table: migrations,
#   workers and the scheduler connect as it.
# - UNIVERSE_APP_ROLE is what the servers connect as: no superuser, no BYPASSRLS, owns nothing, so row-level security
#   applies to it. The migrations grant it access to the tables.
#
# Also usable against any PostgreSQL: PGHOST/PGPORT, POSTGRES_USER (a superuser) and POSTGRES_DB (a database to
# connect to first) say where.
set -e  # no -u: the image may source this file into its entrypoint rather than run it

db="${UNIVERSE_DB:-universe}"
owner="${UNIVERSE_OWNER_ROLE:-universe_owner}"
app="${UNIVERSE_APP_ROLE:-universe_app}"
: "${UNIVERSE_OWNER_PASSWORD:?set UNIVERSE_OWNER_PASSWORD}" "${UNIVERSE_APP_PASSWORD:?set UNIVERSE_APP_PASSWORD}"

run_psql() {
  psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "${POSTGRES_USER:-postgres}" \
    -v db="$db" -v owner="$owner" -v app="$app" \
    -v owner_password="$UNIVERSE_OWNER_PASSWORD" -v app_password="$UNIVERSE_APP_PASSWORD" "$@"
}

run_psql --dbname "${POSTGRES_DB:-postgres}" <<'SQL'
CREATE ROLE :"owner" LOGIN PASSWORD :'owner_password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
CREATE ROLE :"app" LOGIN PASSWORD :'app_password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
CREATE DATABASE :"db" OWNER :"owner";
SQL

# Only the owner creates objects: PostgreSQL 14 and older let every role create tables in public, and a table the
# app role created would be its own, exempt from row-level security. The owner owning the schema can also grant the
# app role USAGE on it (the migrations do).
run_psql --dbname "$db" <<'SQL'
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO :"owner";
SQL
